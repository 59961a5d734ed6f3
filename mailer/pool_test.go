package mailer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
)

// proxy is a TCP proxy in front of a real SMTP server that counts the
// connections clients open and can cut them all, as a server that
// restarts or times out idle sessions does.
type proxy struct {
	ln      net.Listener
	backend string

	mu    sync.Mutex
	opens int
	live  map[net.Conn]net.Conn // client side -> server side
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: backend, live: map[net.Conn]net.Conn{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.opens++
		p.live[c] = s
		p.mu.Unlock()
		go func() {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
			wg.Wait()
			p.mu.Lock()
			delete(p.live, c)
			p.mu.Unlock()
		}()
	}
}

// connections is how many connections clients have opened so far.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opens
}

// cut closes every open connection without a word, both ways.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, s := range p.live {
		c.Close()
		s.Close()
	}
}

func (p *proxy) server(maxMessages int) mailer.ServerConfig {
	return serverAt(p.ln.Addr().String(), 1, 1, maxMessages)
}

func serverAt(addr string, weight, maxConns, maxMessages int) mailer.ServerConfig {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return mailer.ServerConfig{Name: addr, Config: mailer.Config{Host: host, Port: n, TLS: mailer.TLSNone, Timeout: 5 * time.Second},
		Weight: weight, MaxConns: maxConns, MaxMessages: maxMessages}
}

func startOutbox(t *testing.T, opts outbox.Options) *outbox.Server {
	t.Helper()
	opts.Keep = 1 << 16
	box, err := outbox.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	return box
}

func newPool(t *testing.T, servers ...mailer.ServerConfig) *mailer.Pool {
	t.Helper()
	p, err := mailer.NewPool(servers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func acquire(t *testing.T, p *mailer.Pool) *mailer.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// message is a small message to rcpt-i@example.com whose body has a line
// that needs dot-stuffing.
func message(i int) *mailer.Message {
	to := fmt.Sprintf("rcpt-%d@example.com", i)
	raw := fmt.Sprintf("From: news@acme.example\r\nTo: %s\r\nSubject: message %d\r\nMessage-ID: <%d@acme.example>\r\n\r\nHello\r\n.\r\n..and a dot\r\n", to, i, i)
	return &mailer.Message{Raw: []byte(raw), From: "bounce@bounces.example.com", To: []string{to}, MessageID: fmt.Sprintf("%d@acme.example", i)}
}

// sendRetryingTransport sends m as the worker would retry it: once more
// after a transport failure that happened before DATA (nothing can have
// been delivered, and the Conn promises to redial).
func sendRetryingTransport(t *testing.T, c *mailer.Conn, m *mailer.Message) {
	t.Helper()
	err := c.Send(context.Background(), m)
	var se *mailer.SendError
	if errors.As(err, &se) && se.Class() == mailer.Transport && se.Stage != "data" {
		t.Logf("send %s: %v; sending again", m.To[0], err)
		err = c.Send(context.Background(), m)
	}
	if err != nil {
		t.Fatalf("send %s: %v", m.To[0], err)
	}
}

// wantEachOnce checks that the server received exactly one message for
// each of recipients 0..n-1 and nothing else.
func wantEachOnce(t *testing.T, box *outbox.Server, n int) {
	t.Helper()
	want := map[string]int{}
	for i := range n {
		want[message(i).To[0]] = 1
	}
	if diff := cmp.Diff(want, box.Count()); diff != "" {
		t.Errorf("messages received per recipient (-want +got):\n%s", diff)
	}
}

func TestPoolRedialsAfterTheServerDropsAnIdleConnection(t *testing.T) {
	box := startOutbox(t, outbox.Options{})
	px := newProxy(t, box.Addr())
	p := newPool(t, px.server(0))

	c := acquire(t, p)
	if err := c.Send(context.Background(), message(0)); err != nil {
		t.Fatal(err)
	}
	c.Release()
	px.cut() // the idle connection dies in the pool

	c = acquire(t, p)
	defer c.Release()
	sendRetryingTransport(t, c, message(1))
	if err := c.Send(context.Background(), message(2)); err != nil {
		t.Fatalf("the connection after the redial: %v", err)
	}
	wantEachOnce(t, box, 3)
	if got := px.connections(); got != 2 {
		t.Errorf("%d connections, want 2 (one before the drop, one after)", got)
	}
	got := box.Messages()[0]
	if want := message(2).Raw; string(got.Raw) != string(want) {
		t.Errorf("server received\n%q\nwant\n%q", got.Raw, want)
	}
}

func TestPoolRecyclesAConnectionAfterMaxMessages(t *testing.T) {
	tests := []struct {
		name    string
		holds   []int // messages sent per Acquire/Release of the one slot
		max     int
		wantNew int // connections opened
	}{
		{"one hold", []int{7}, 3, 3},
		{"exactly the limit", []int{6}, 3, 2},
		{"no limit reached", []int{4}, 5, 1},
		// The limit is per SMTP session, not per Acquire: a relay that caps
		// messages per session does not care who held the connection.
		{"several holds", []int{2, 2, 2}, 3, 2},
		{"many short holds", []int{1, 1, 1, 1, 1, 1, 1}, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			box := startOutbox(t, outbox.Options{})
			px := newProxy(t, box.Addr())
			p := newPool(t, px.server(tt.max))
			n := 0
			for _, k := range tt.holds {
				c := acquire(t, p)
				for range k {
					if err := c.Send(context.Background(), message(n)); err != nil {
						t.Fatalf("message %d: %v", n, err)
					}
					n++
				}
				c.Release()
			}
			wantEachOnce(t, box, n)
			if got := px.connections(); got != tt.wantNew {
				t.Errorf("%d messages with at most %d per connection opened %d connections, want %d", n, tt.max, got, tt.wantNew)
			}
		})
	}
}

// scripted is an SMTP server in the test that answers MAIL, RCPT or DATA
// of chosen transactions with a chosen reply, and counts sessions.
type scripted struct {
	mu       sync.Mutex
	sessions int
	txn      int                                // MAIL commands seen
	replies  map[int]map[string]*smtp.SMTPError // transaction -> stage -> reply
	got      map[string]int
}

func startScripted(t *testing.T, replies map[int]map[string]*smtp.SMTPError) (*scripted, string) {
	t.Helper()
	s := &scripted{replies: replies, got: map[string]int{}}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s, ln.Addr().String()
}

func (s *scripted) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	return &scriptedSession{s: s}, nil
}

func (s *scripted) reply(txn int, stage string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.replies[txn][stage]; e != nil {
		return e
	}
	return nil
}

type scriptedSession struct {
	s   *scripted
	txn int
	to  []string
}

func (x *scriptedSession) Mail(string, *smtp.MailOptions) error {
	x.s.mu.Lock()
	x.s.txn++
	x.txn = x.s.txn
	x.s.mu.Unlock()
	return x.s.reply(x.txn, "mail")
}

func (x *scriptedSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.s.reply(x.txn, "rcpt"); err != nil {
		return err
	}
	x.to = append(x.to, to)
	return nil
}

func (x *scriptedSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if err := x.s.reply(x.txn, "data"); err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	for _, to := range x.to {
		x.s.got[to]++
	}
	return nil
}

func (x *scriptedSession) Reset()        { x.to = nil }
func (x *scriptedSession) Logout() error { return nil }

func TestPoolClassifiesRepliesAndKeepsTheConnectionUsable(t *testing.T) {
	reply := func(code int, e1, e2, e3 int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: "scripted"}
	}
	tests := []struct {
		name  string
		stage string
		reply *smtp.SMTPError
		want  mailer.Class
		// sessions after the failed message and one more: 2 when the
		// failure must end the session (421: the server is closing it).
		sessions int
	}{
		{"421 on MAIL", "mail", reply(421, 4, 7, 0), mailer.Temporary, 2},
		{"451 on MAIL", "mail", reply(451, 4, 3, 0), mailer.Temporary, 1},
		{"550 5.1.1 on RCPT", "rcpt", reply(550, 5, 1, 1), mailer.Permanent, 1},
		{"452 on RCPT", "rcpt", reply(452, 4, 2, 2), mailer.Temporary, 1},
		{"554 after DATA", "data", reply(554, 5, 7, 1), mailer.Permanent, 1},
		{"451 after DATA", "data", reply(451, 4, 3, 0), mailer.Temporary, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startScripted(t, map[int]map[string]*smtp.SMTPError{1: {tt.stage: tt.reply}})
			p := newPool(t, serverAt(addr, 1, 1, 0))
			c := acquire(t, p)
			defer c.Release()
			err := c.Send(context.Background(), message(0))
			var se *mailer.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SendError", err)
			}
			got := [3]any{se.Stage, se.Code, se.Class()}
			if want := [3]any{tt.stage, tt.reply.Code, tt.want}; got != want {
				t.Errorf("stage, code, class = %v, want %v", got, want)
			}
			if err := c.Send(context.Background(), message(1)); err != nil {
				t.Fatalf("the next message after a %d: %v", tt.reply.Code, err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if diff := cmp.Diff(map[string]int{message(1).To[0]: 1}, srv.got); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
			if srv.sessions != tt.sessions {
				t.Errorf("%d SMTP sessions, want %d", srv.sessions, tt.sessions)
			}
		})
	}
}

func TestPoolBounceFromOutboxIsPermanentAtRCPT(t *testing.T) {
	unknown := message(0).To[0]
	box := startOutbox(t, outbox.Options{Rcpt: func(to string) error {
		if to == unknown {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	p := newPool(t, serverAt(box.Addr(), 1, 1, 0))
	c := acquire(t, p)
	defer c.Release()
	err := c.Send(context.Background(), message(0))
	var se *mailer.SendError
	if !errors.As(err, &se) || se.Stage != "rcpt" || se.Code != 550 || se.Class() != mailer.Permanent {
		t.Fatalf("err = %#v, want a permanent 550 at rcpt", err)
	}
	if err := c.Send(context.Background(), message(1)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{message(1).To[0]: 1}, box.Count()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

func TestPoolDropsDuringAndAfterDATA(t *testing.T) {
	tests := []struct {
		name  string
		fault error
		// sent: the first message counts as sent (nil from Send).
		sent bool
	}{
		// The server stored it and answered 250, then dropped the link:
		// sent, and must not be sent again.
		{"accepted then dropped", outbox.ErrAcceptDrop, true},
		// The server dropped the link before its reply to the end of DATA:
		// not confirmed, a transport failure to retry.
		{"dropped before the reply", outbox.ErrDrop, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var once sync.Once
			box := startOutbox(t, outbox.Options{Fault: func(string, []string, []byte) error {
				var err error
				once.Do(func() { err = tt.fault })
				return err
			}})
			px := newProxy(t, box.Addr())
			p := newPool(t, px.server(0))
			c := acquire(t, p)
			defer c.Release()
			err := c.Send(context.Background(), message(0))
			if tt.sent {
				if err != nil {
					t.Fatalf("an accepted message: err = %v, want nil (sent)", err)
				}
			} else {
				var se *mailer.SendError
				if !errors.As(err, &se) || se.Class() != mailer.Transport || se.Stage != "data" {
					t.Fatalf("err = %#v, want a transport failure at data", err)
				}
				if err := c.Send(context.Background(), message(0)); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			sendRetryingTransport(t, c, message(1))
			wantEachOnce(t, box, 2)
			if got := px.connections(); got != 2 {
				t.Errorf("%d connections, want 2", got)
			}
		})
	}
}

func TestPoolSharesMessagesByWeight(t *testing.T) {
	heavy := startOutbox(t, outbox.Options{Discard: true})
	light := startOutbox(t, outbox.Options{Discard: true})
	p := newPool(t, serverAt(heavy.Addr(), 3, 4, 0), serverAt(light.Addr(), 1, 4, 0))
	const n = 2000
	for i := range n {
		c := acquire(t, p)
		if err := c.Send(context.Background(), message(i)); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	// Acquire draws the server at random by weight: 3/4 of n is 1500 with
	// a standard deviation of about 19; 6 of them make a false failure
	// practically impossible while a pool that ignores weights (1000) or
	// inverts them (500) fails by far.
	h, l := heavy.Accepted(), light.Accepted()
	if h+l != n || h < 1385 || h > 1615 {
		t.Errorf("weights 3:1 over %d messages: %d and %d, want about 1500 and 500", n, h, l)
	}
}

func TestPoolHonoursMaxConnsAndFallsBackToTheOtherServer(t *testing.T) {
	a := serverAt("127.0.0.1:1", 100, 2, 0) // nothing is dialed: Acquire only takes slots
	b := serverAt("127.0.0.1:2", 1, 1, 0)
	p := newPool(t, a, b)
	var held []*mailer.Conn
	per := map[string]int{}
	for range 3 {
		c := acquire(t, p)
		held = append(held, c)
		per[c.Server()]++
	}
	if diff := cmp.Diff(map[string]int{a.Name: 2, b.Name: 1}, per); diff != "" {
		t.Errorf("with every slot taken (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if c, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire beyond MaxConns = %v, %v; want it to wait until ctx ends", c, err)
	}
	got := make(chan *mailer.Conn)
	go func() {
		c, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	for _, c := range held {
		if c.Server() == b.Name {
			c.Release()
		}
	}
	c := <-got
	if c.Server() != b.Name {
		t.Errorf("the waiter got %s, want the slot released on %s", c.Server(), b.Name)
	}
	c.Release()
	for _, c := range held {
		c.Release() // a second Release of the same Conn does nothing
	}
}
