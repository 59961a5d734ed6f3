// Package worker runs Funnel's background tasks on asynq: the task types,
// their handlers and the server that executes them. Tasks carry IDs only;
// the database, not the queue, is the truth about what is done.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Queues and their weights: campaign sending is served before tracking
// writes, which are served before maintenance.
var queues = map[string]int{
	QueueCampaign:    6,
	QueueTracking:    3,
	QueueMaintenance: 1,
}

// Queue names.
const (
	QueueCampaign    = "campaign"
	QueueTracking    = "tracking"
	QueueMaintenance = "maintenance"
)

// Config configures a Server.
type Config struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Concurrency is how many tasks run at once (default 20).
	Concurrency int
	// ShutdownTimeout is how long running tasks get to finish at shutdown
	// (default 25 s) before asynq puts them back in the queue.
	ShutdownTimeout time.Duration
}

// Server executes tasks until Shutdown.
type Server struct {
	srv      *asynq.Server
	mux      *asynq.ServeMux
	log      *slog.Logger
	stopping chan struct{}
	stopOnce sync.Once
}

// NewServer returns a server over cfg.Redis. Handlers are registered with
// Handle before Start.
func NewServer(cfg Config) *Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 25 * time.Second
	}
	log := cfg.Logger
	srv := asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:     cfg.Concurrency,
		Queues:          queues,
		ShutdownTimeout: cfg.ShutdownTimeout,
		// Pick-up latency matters for pause and for tracking writes; the
		// default one-second poll is too slow.
		TaskCheckInterval: 100 * time.Millisecond,
		// Waiting (for send_at, deferred deliveries, a shutdown hand-over)
		// is a retry at the asked time that uses up no retry.
		RetryDelayFunc: retryDelay,
		IsFailure:      isFailure,
		Logger:         slogAdapter{log},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if isFailure(err) {
				log.WarnContext(ctx, "task failed", "type", t.Type(), "err", err)
			}
		}),
	})
	return &Server{srv: srv, mux: asynq.NewServeMux(), log: log, stopping: make(chan struct{})}
}

// Handle registers the handler for a task type.
func (s *Server) Handle(taskType string, h asynq.Handler) { s.mux.Handle(taskType, h) }

// Start starts processing in the background.
func (s *Server) Start() error {
	if err := s.srv.Start(s.mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	return nil
}

// Stopping is closed when Shutdown begins: handlers finish the SMTP
// transaction in flight, record it, hand the rest of their work back and
// return, well before asynq's shutdown timeout would abandon them.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// Shutdown stops taking tasks, signals Stopping, waits for running ones up
// to the shutdown timeout, and returns.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.srv.Shutdown()
}

// slogAdapter routes asynq's log lines into slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
