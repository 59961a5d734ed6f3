package worker_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// funnel is the funnel binary the tests run as `funnel work` processes,
// built once per test binary by funnelBinary and removed by TestMain.
var funnel struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if funnel.dir != "" {
		os.RemoveAll(funnel.dir)
	}
	os.Exit(code)
}

// funnelBinary returns the path of the funnel binary built from this
// tree, building it on the first call.
func funnelBinary(t *testing.T) string {
	t.Helper()
	funnel.once.Do(func() {
		if funnel.dir, funnel.err = os.MkdirTemp("", "funnel-worker-test"); funnel.err != nil {
			return
		}
		funnel.path = filepath.Join(funnel.dir, "funnel")
		build := exec.Command("go", "build", "-o", funnel.path, "github.com/funnel-email/funnel/cmd/funnel")
		if out, err := build.CombinedOutput(); err != nil {
			funnel.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if funnel.err != nil {
		t.Fatal(funnel.err)
	}
	return funnel.path
}

// workEnv is the environment of a `funnel work` process on the given
// database, Redis (with its database number) and SMTP server (host:port,
// no TLS). The test's own FUNNEL_ variables are left out, so that only
// these settings and the flags apply.
func workEnv(databaseURL, redisURL, smtpAddr string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FUNNEL_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"FUNNEL_DATABASE_URL="+databaseURL, "FUNNEL_REDIS_URL="+redisURL,
		"FUNNEL_SMTP_URL=smtp://"+smtpAddr+"?tls=none", "FUNNEL_PUBLIC_URL=https://t.example.com",
		"FUNNEL_SECRET="+strings.Repeat("k", 40), "FUNNEL_LOG_LEVEL=info")
}

// workProcess is a `funnel work` process started by a test.
type workProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited, err set
	err  error
}

// startWork starts `funnel work` with env and flags (on a free port for
// its ops endpoints), its output appended to logs. The process is
// killed when the test ends if it still runs then.
func startWork(t *testing.T, env []string, logs *syncBuffer, flags ...string) *workProcess {
	t.Helper()
	p := &workProcess{cmd: exec.Command(funnelBinary(t), append([]string{"work", "-addr", "127.0.0.1:0"}, flags...)...),
		done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill SIGKILLs the process and waits for it to exit.
func (p *workProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process has exited, and how.
func (p *workProcess) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// terminate sends SIGTERM and waits up to timeout for the process to
// exit; it returns the process's exit error, or an error when the process
// is still running at the timeout (it is then killed).
func (p *workProcess) terminate(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		if done, exitErr := p.exited(); done {
			return fmt.Errorf("exited before SIGTERM: %v", exitErr)
		}
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("still running %s after SIGTERM", timeout)
	}
}

// syncBuffer collects the output of processes that write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logOnFailure prints logs when the test has failed, at its end.
func logOnFailure(t *testing.T, logs *syncBuffer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("funnel work logs:\n%s", logs.String())
		}
	})
}
