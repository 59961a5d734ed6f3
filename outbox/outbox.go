// Package outbox is an SMTP server that accepts every message and keeps
// the most recent ones in memory. `funnel dev` uses it as its mail server
// so that nothing leaves the machine, and shows what it caught; tests use
// it as a real SMTP peer that can inject faults.
package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one caught message.
type Message struct {
	ID      int64    `json:"id"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	// StartedAt is when its transaction began (MAIL FROM); ReceivedAt
	// when its data was complete.
	StartedAt  time.Time `json:"started_at"`
	ReceivedAt time.Time `json:"received_at"`
	Raw        []byte    `json:"-"`
}

// Fault decides how the server answers one transaction. A nil Fault, or
// one returning nil, accepts the message. Returning an *smtp.SMTPError
// answers with its code; returning ErrDrop closes the connection without
// an answer.
type Fault func(from string, to []string, data []byte) error

// ErrDrop makes the server drop the connection after DATA, without a reply.
var ErrDrop = errors.New("outbox: drop connection")

// ErrAcceptDrop makes the server accept the message (it is stored and
// answered 250) and then drop the connection when the client sends its
// next command: the case where a client must not send the message again.
var ErrAcceptDrop = errors.New("outbox: accept, then drop connection")

// Server is a running catcher.
type Server struct {
	srv     *smtp.Server
	ln      net.Listener
	keep    int
	fault   Fault
	rcpt    func(string) error
	discard bool

	mu       sync.Mutex
	nextID   int64
	messages []Message // newest last, at most keep
	accepted int64
}

// Options configure a Server.
type Options struct {
	// Keep is how many messages are kept for viewing (default 500); older
	// ones are forgotten, so memory stays bounded.
	Keep int
	// Fault, when set, can refuse or drop transactions.
	Fault Fault
	// MaxMessageBytes bounds one message (default 25 MiB).
	MaxMessageBytes int64
	// Rcpt, when set, can refuse a recipient (return an *smtp.SMTPError,
	// such as 550 5.1.1 for an unknown user).
	Rcpt func(to string) error
	// Discard counts accepted messages without keeping or parsing them:
	// a sink for benchmarks.
	Discard bool
}

// Listen starts a server on addr (such as "127.0.0.1:0").
func Listen(addr string, opts Options) (*Server, error) {
	if opts.Keep <= 0 {
		opts.Keep = 500
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 25 << 20
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, keep: opts.Keep, fault: opts.Fault, rcpt: opts.Rcpt, discard: opts.Discard}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = opts.MaxMessageBytes
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	go s.srv.Serve(ln) //nolint:errcheck // returns when Close is called
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes open connections.
func (s *Server) Close() error { return s.srv.Close() }

// Accepted returns how many messages were accepted since start.
func (s *Server) Accepted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Messages returns the kept messages, newest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[len(s.messages)-1-i] = m
	}
	return out
}

func (s *Server) store(from string, to []string, data []byte, startedAt time.Time) {
	if s.discard {
		s.mu.Lock()
		s.accepted++
		s.mu.Unlock()
		return
	}
	subject := ""
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.accepted++
	s.messages = append(s.messages, Message{ID: s.nextID, From: from, To: to, Subject: subject, StartedAt: startedAt, ReceivedAt: time.Now().UTC(), Raw: data})
	if len(s.messages) > s.keep {
		s.messages = append(s.messages[:0], s.messages[len(s.messages)-s.keep:]...)
	}
}

// ServeHTTP lists the kept messages as JSON, newest first. With ?id=N it
// answers that message's raw RFC 5322 text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages()
	if raw := r.URL.Query().Get("id"); raw != "" {
		id, _ := strconv.ParseInt(raw, 10, 64)
		for _, m := range msgs {
			if m.ID == id {
				w.Header().Set("Content-Type", "message/rfc822")
				w.Write(m.Raw)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"no caught message with that id"}}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"messages": msgs, "accepted": s.Accepted()})
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *Server
	conn *smtp.Conn
	from string
	to   []string
	// mailAt is when the transaction began.
	mailAt time.Time
	// dropNext closes the connection at the next command (ErrAcceptDrop).
	dropNext bool
	buf      bytes.Buffer
}

var errDropped = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection dropped"}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.dropNext {
		x.conn.Conn().Close()
		return errDropped
	}
	x.from, x.mailAt = from, time.Now().UTC()
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.rcpt != nil {
		if err := x.s.rcpt(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	x.buf.Reset()
	if _, err := x.buf.ReadFrom(r); err != nil {
		return err
	}
	data := x.buf.Bytes()
	if !x.s.discard {
		data = bytes.Clone(data)
	}
	if x.s.fault != nil {
		if err := x.s.fault(x.from, x.to, data); err != nil {
			if errors.Is(err, ErrAcceptDrop) {
				x.s.store(x.from, x.to, data, x.mailAt)
				x.dropNext = true
				return nil
			}
			if errors.Is(err, ErrDrop) {
				// Closing the socket before the reply is what a crashing or
				// overloaded server does mid-DATA.
				x.conn.Conn().Close()
			}
			return err
		}
	}
	x.s.store(x.from, x.to, data, x.mailAt)
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

// Count returns how many kept messages were sent to each recipient.
func (s *Server) Count() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, m := range s.messages {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}
