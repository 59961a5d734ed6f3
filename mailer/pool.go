package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// ServerConfig is one SMTP server of a Pool.
type ServerConfig struct {
	// Name identifies the server in rate-limit keys, metrics and logs;
	// empty means host:port.
	Name string
	// Pool names the group of servers the server belongs to, which a
	// campaign may choose (AcquireIn); empty means none.
	Pool string
	Config
	// Weight shares the load between servers (default 1).
	Weight int
	// MaxConns bounds the connections open to this server (default 20).
	MaxConns int
	// Rate caps messages per second to this server across all workers;
	// 0 means no limit. The Pool does not enforce it: the caller's
	// distributed limiter reads it from Conn.Rate.
	Rate float64
	// MaxMessages recycles a connection after this many messages
	// (default 500): many relays cap messages per session.
	MaxMessages int
}

// Pool keeps long-lived SMTP connections to one or more servers. A caller
// (one worker goroutine) Acquires a Conn, sends any number of messages
// over it one transaction at a time, and Releases it; the live connection
// then waits for the next caller instead of being closed.
//
// Connections are dialed with go-mail (TLS policy, port, auth per server)
// and driven with its low-level SMTP client: no NOOP before and no RSET
// after each message, which go-mail's Client.Send would add (two round
// trips per message); RSET is sent only after a refused MAIL or RCPT.
type Pool struct {
	servers []*poolServer
	total   int
	freed   chan struct{}
}

type poolServer struct {
	cfg    ServerConfig
	client *mail.Client
	slots  chan struct{}    // one token per open or opening connection
	idle   chan smtpSession // live connections nobody holds
}

// NewPool returns a Pool over the given servers; nothing is dialed yet.
func NewPool(servers ...ServerConfig) (*Pool, error) {
	if len(servers) == 0 {
		return nil, errors.New("mailer: a pool needs at least one SMTP server")
	}
	p := &Pool{freed: make(chan struct{}, 1)}
	for _, sc := range servers {
		if sc.Weight <= 0 {
			sc.Weight = 1
		}
		if sc.MaxConns <= 0 {
			sc.MaxConns = 20
		}
		if sc.MaxMessages <= 0 {
			sc.MaxMessages = 500
		}
		if sc.Timeout <= 0 {
			sc.Timeout = 30 * time.Second
		}
		if sc.Name == "" {
			sc.Name = fmt.Sprintf("%s:%d", sc.Host, sc.Port)
		}
		s, err := NewSender(sc.Config)
		if err != nil {
			return nil, err
		}
		p.servers = append(p.servers, &poolServer{cfg: sc, client: s.client,
			slots: make(chan struct{}, sc.MaxConns), idle: make(chan smtpSession, sc.MaxConns)})
		p.total += sc.Weight
	}
	return p, nil
}

// Acquire returns a connection slot to one of the servers, picked by
// weight among those with a free slot, waiting until one is free or ctx
// ends. The connection itself is dialed on the first Send.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	return p.AcquireIn(ctx, "")
}

// ErrNoSuchPool means no server of the Pool belongs to the named pool.
var ErrNoSuchPool = errors.New("mailer: no SMTP server belongs to the pool")

// AcquireIn is Acquire among the servers of the named pool (their pool=
// URL parameter); "" means every server. ErrNoSuchPool when none is in it.
func (p *Pool) AcquireIn(ctx context.Context, pool string) (*Conn, error) {
	servers, total := p.servers, p.total
	if pool != "" {
		servers, total = nil, 0
		for _, s := range p.servers {
			if s.cfg.Pool == pool {
				servers, total = append(servers, s), total+s.cfg.Weight
			}
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("%w %q", ErrNoSuchPool, pool)
		}
	}
	for {
		// Weighted order: start at a random point of the weight line.
		r := rand.IntN(total)
		start := 0
		for i, s := range servers {
			if r < s.cfg.Weight {
				start = i
				break
			}
			r -= s.cfg.Weight
		}
		for k := range servers {
			s := servers[(start+k)%len(servers)]
			select {
			case s.slots <- struct{}{}:
				c := &Conn{s: s, pool: p}
				select {
				case ss := <-s.idle:
					c.smtpSession = ss
				default:
				}
				return c, nil
			default:
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.freed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close closes the idle connections. Conns still held are closed by their
// Release.
func (p *Pool) Close() {
	for _, s := range p.servers {
		for {
			select {
			case ss := <-s.idle:
				_ = ss.sc.Quit()
				continue
			default:
			}
			break
		}
	}
}

// Conn is one SMTP connection held by one goroutine. It is not safe for
// concurrent use.
type Conn struct {
	s    *poolServer
	pool *Pool
	smtpSession
	once sync.Once
}

// smtpSession is one live SMTP session, held by a Conn or idle in the pool.
type smtpSession struct {
	sc   *smtp.Client
	sent int // messages accepted in this session, across holders
	// chunked is set when the server offers PIPELINING and CHUNKING: a
	// transaction is then one write and one wait (see sendChunked).
	chunked    bool
	mailParams string // appended to MAIL FROM in the chunked path
}

// Server names the server this Conn sends to.
func (c *Conn) Server() string { return c.s.cfg.Name }

// Rate is the server's configured messages per second (0: no limit).
func (c *Conn) Rate() float64 { return c.s.cfg.Rate }

// Send runs one SMTP transaction for m: MAIL FROM, RCPT TO, DATA. It
// dials first when the Conn has no live connection.
//
// nil means the server accepted the message (its reply to the end of
// DATA was 2xx): it is sent, whatever happens to the connection after.
// Any other result is a *SendError whose Stage says where it failed
// ("dial", "mail", "rcpt", "data") and whose Class says what to do: a
// Transport failure (no reply: dial, TLS, dropped connection, timeout)
// closes the connection, and the next Send redials. A dropped connection
// during DATA, before the final reply, is Transport: the server did not
// confirm the message, so it is retried (a server that accepted it but
// could not answer is the one case SMTP cannot tell apart).
//
// A reused connection that fails at MAIL before any reply, with an end
// of file or a reset, was closed by the server while it sat idle: Send
// then redials once and runs the transaction again, since nothing of
// this message can have been accepted.
func (c *Conn) Send(ctx context.Context, m *Message) error {
	reused := c.sc != nil
	err := c.send(ctx, m)
	if reused && closedWhileIdle(err) {
		err = c.send(ctx, m)
	}
	return err
}

// closedWhileIdle says whether err is a MAIL that got no reply because
// the connection was closed or reset by the peer.
func closedWhileIdle(err error) bool {
	var se *SendError
	if !errors.As(err, &se) || se.Stage != "mail" || se.Code != 0 {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *Conn) send(ctx context.Context, m *Message) error {
	if c.sc == nil {
		sc, err := c.s.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			return newSendError("dial", err)
		}
		c.sc, c.sent = sc, 0
		c.chunked, c.mailParams = chunking(sc)
		// A message and its commands then leave in one write (one
		// syscall, one wake-up of the server) instead of a first 4 KB
		// and the rest: the connection's own 4 KB buffer is passed
		// through whole, since a large write on an empty bufio.Writer
		// goes straight to the socket.
		sc.Text.W = bufio.NewWriterSize(flushThrough{sc.Text.W}, 32<<10)
	}
	if err := c.sc.UpdateDeadline(c.s.cfg.Timeout); err != nil {
		c.drop()
		return newSendError("dial", err)
	}
	if c.chunked && len(m.To) == 1 {
		return c.sendChunked(m)
	}
	if err := c.sc.Mail(m.From); err != nil {
		return c.fail("mail", err, true)
	}
	for _, to := range m.To {
		if err := c.sc.Rcpt(to); err != nil {
			return c.fail("rcpt", err, true)
		}
	}
	// DATA is sent by hand: go-mail's Data() leaves a textproto DotWriter
	// pending, which would append a stray "." before the next command.
	if err := c.data(); err != nil {
		return c.fail("data", err, true)
	}
	// Writing the dot-stuffed body ourselves, in large chunks, avoids
	// textproto's byte-at-a-time DotWriter: the message is already CRLF.
	if err := writeData(c.sc.Text.W, m.Raw); err != nil {
		return c.fail("data", err, false)
	}
	if _, _, err := c.sc.Text.ReadResponse(250); err != nil {
		return c.fail("data", err, false)
	}
	c.count()
	return nil
}

// count counts a message accepted on the connection and recycles it after
// MaxMessages.
func (c *Conn) count() {
	c.sent++
	if c.sent >= c.s.cfg.MaxMessages {
		_ = c.sc.Quit()
		c.sc = nil
	}
}

// chunking says whether sc's server takes pipelined BDAT (RFC 2920 and
// RFC 3030), and the MAIL FROM parameters go-mail's Mail would add.
func chunking(sc *smtp.Client) (bool, string) {
	pipelining, _ := sc.Extension("PIPELINING")
	chunks, _ := sc.Extension("CHUNKING")
	params := ""
	if ok, _ := sc.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := sc.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}
	return pipelining && chunks, params
}

// sendChunked runs a one-recipient transaction as a single pipelined
// write, MAIL FROM, RCPT TO and BDAT <size> LAST with the message as it
// is (no dot-stuffing), then reads the three replies. That is one round
// trip instead of four, and the server reads the body in bulk. The
// message is accepted only when the BDAT reply is 2xx; when MAIL or RCPT
// was refused, the server refuses the BDAT too and the first refusal is
// reported, as in the unpipelined path.
func (c *Conn) sendChunked(m *Message) error {
	if strings.ContainsAny(m.From, "\r\n") || strings.ContainsAny(m.To[0], "\r\n") {
		return newSendError("mail", errors.New("smtp: a line must not contain CR or LF"))
	}
	w := c.sc.Text.W
	w.WriteString("MAIL FROM:")
	w.WriteString(m.From)
	w.WriteString(c.mailParams)
	w.WriteString("\r\nRCPT TO:")
	w.WriteString(m.To[0])
	w.WriteString("\r\nBDAT ")
	w.WriteString(strconv.Itoa(len(m.Raw)))
	w.WriteString(" LAST\r\n")
	w.Write(m.Raw)
	if err := w.Flush(); err != nil {
		return c.fail("mail", err, false)
	}
	var (
		stage string
		first error
	)
	// reply reads one reply and keeps the first refusal; false means the
	// connection failed, so no further reply can be read.
	reply := func(st string, expect int) bool {
		_, _, err := c.sc.Text.ReadResponse(expect)
		if err == nil {
			return true
		}
		if first == nil {
			stage, first = st, err
		}
		var te *textproto.Error
		return errors.As(err, &te)
	}
	_ = reply("mail", 250) && reply("rcpt", 25) && reply("data", 250)
	if first != nil {
		return c.fail(stage, first, true)
	}
	c.count()
	return nil
}

func (c *Conn) data() error {
	id, err := c.sc.Text.Cmd("DATA")
	if err != nil {
		return err
	}
	c.sc.Text.StartResponse(id)
	defer c.sc.Text.EndResponse(id)
	_, _, err = c.sc.Text.ReadResponse(354)
	return err
}

// fail turns err into a *SendError and leaves the connection ready for the
// next transaction: closed after a transport failure or a 421 (the server
// is closing it), reset after a refused MAIL or RCPT.
func (c *Conn) fail(stage string, err error, reset bool) error {
	se := newSendError(stage, err)
	switch {
	case se.Class() == Transport || se.Code == 421:
		c.drop()
	case reset:
		if c.sc.Reset() != nil {
			c.drop()
		}
	}
	return se
}

func (c *Conn) drop() {
	if c.sc != nil {
		_ = c.sc.Close()
		c.sc = nil
	}
}

// Release returns the connection to the pool for the next caller. The
// Conn must not be used after.
func (c *Conn) Release() {
	c.once.Do(func() {
		if c.sc != nil {
			select {
			case c.s.idle <- c.smtpSession:
			default:
				_ = c.sc.Quit()
			}
			c.sc = nil
		}
		<-c.s.slots
		select {
		case c.pool.freed <- struct{}{}:
		default:
		}
	})
}

// flushThrough writes to w and flushes it at once: an outer, larger
// buffer decides when bytes reach the socket.
type flushThrough struct{ w *bufio.Writer }

func (f flushThrough) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

var crlfDot = []byte("\n.")

// writeData writes raw as the content of DATA: a dot doubled at the start
// of each line, a final CRLF if missing, and the terminating ".".
func writeData(w *bufio.Writer, raw []byte) error {
	if len(raw) > 0 && raw[0] == '.' {
		w.WriteByte('.')
	}
	for {
		i := bytes.Index(raw, crlfDot)
		if i < 0 {
			break
		}
		w.Write(raw[:i+2])
		w.WriteByte('.')
		raw = raw[i+2:]
	}
	w.Write(raw)
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		w.WriteString("\r\n")
	}
	w.WriteString(".\r\n")
	return w.Flush()
}
