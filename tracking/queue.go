package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultQueueKey is the Redis list that holds hits waiting to be written.
const DefaultQueueKey = "funnel:tracking:hits"

// QueueConfig configures a Queue.
type QueueConfig struct {
	Redis redis.UniversalClient
	// Key is the Redis list of queued hits (default DefaultQueueKey); the
	// consumer's lock is Key+":lock". Tests give each its own key.
	Key string
	// Fallback writes hits directly when Redis cannot take them (normally
	// (*Recorder).Record). Without it, such hits fail.
	Fallback func(ctx context.Context, hits []Hit) error
	// Timeout bounds one push to Redis before the fallback is used
	// (default 1 s).
	Timeout time.Duration
	// Pushers is how many pushes may be in flight at once (default 4);
	// MaxBatch bounds the hits of one push (default 512).
	Pushers, MaxBatch int
	Logger            *slog.Logger
	Metrics           *Metrics
}

// Queue is the durable buffer between the tracking endpoints and the
// event writer: a Redis list of encoded hits.
//
// Push returns only once its hit is in Redis or, when Redis fails, written
// to the database by the fallback: a hit whose Push returned nil is never
// lost. Concurrent pushes are sent together in one RPUSH (group commit),
// so the cost per request is a small share of one Redis round trip.
//
// The consumer side (Peek, Ack, Lock) reads hits from the head in order
// and removes them only after they are written; a hit may therefore be
// read twice (after a crash between writing and Ack) and the writer
// deduplicates by HitID.
type Queue struct {
	cfg QueueConfig
	b   *batcher[*Hit, struct{}]
}

// NewQueue returns a Queue and starts its pushers; Close stops them.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Key == "" {
		cfg.Key = DefaultQueueKey
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Pushers <= 0 {
		cfg.Pushers = 4
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	q := &Queue{cfg: cfg}
	q.b = newBatcher(cfg.Pushers, cfg.MaxBatch, q.push)
	return q
}

// Push queues h durably; see Queue. An error means the hit could be
// stored neither in Redis nor by the fallback.
func (q *Queue) Push(h *Hit) error {
	_, err := q.b.do(h)
	return err
}

// Close waits for pushes in flight and stops the pushers. Later pushes
// fail.
func (q *Queue) Close() { q.b.close() }

func (q *Queue) push(batch []*call[*Hit, struct{}]) {
	args := make([]any, 0, len(batch))
	buf := make([]byte, 0, 128*len(batch))
	var encErr error
	for _, c := range batch {
		start := len(buf)
		var err error
		if buf, err = c.arg.AppendBinary(buf); err != nil {
			c.err, encErr = err, err
			continue
		}
		args = append(args, buf[start:len(buf):len(buf)])
	}
	if len(args) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.Timeout)
	err := q.cfg.Redis.RPush(ctx, q.cfg.Key, args...).Err()
	cancel()
	if err == nil {
		return
	}
	q.cfg.Metrics.fallbacks.Add(float64(len(args)))
	hits := make([]Hit, 0, len(batch))
	for _, c := range batch {
		if c.err == nil {
			hits = append(hits, *c.arg)
		}
	}
	if q.cfg.Fallback != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ferr := q.cfg.Fallback(ctx, hits)
		cancel()
		if ferr == nil {
			q.cfg.Logger.Warn("Redis refused tracking hits; wrote them directly", "hits", len(hits), "err", err)
			return
		}
		err = errors.Join(err, fmt.Errorf("direct write: %w", ferr))
	}
	q.cfg.Logger.Error("tracking hits lost", "hits", len(hits), "err", err, "encode_err", encErr)
	for _, c := range batch {
		if c.err == nil {
			c.err = err
		}
	}
}

// Len returns how many hits wait in Redis.
func (q *Queue) Len(ctx context.Context) (int64, error) {
	return q.cfg.Redis.LLen(ctx, q.cfg.Key).Result()
}

// Peek returns up to n hits from the head of the queue, without removing
// them, and their encodings for Ack. Hits that do not decode are returned
// as nil entries in hits so that Ack still removes them.
func (q *Queue) Peek(ctx context.Context, n int) ([]*Hit, []string, error) {
	raw, err := q.cfg.Redis.LRange(ctx, q.cfg.Key, 0, int64(n-1)).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read tracking queue: %w", err)
	}
	hits := make([]*Hit, len(raw))
	for i, s := range raw {
		h := new(Hit)
		if h.UnmarshalBinary([]byte(s)) == nil {
			hits[i] = h
		}
	}
	return hits, raw, nil
}

// ackScript removes the first n entries only if the head is still the
// entry the caller read: a consumer whose lock expired meanwhile cannot
// remove hits it did not write.
var ackScript = redis.NewScript(`
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
	redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
	return 1
end
return 0`)

// Ack removes the entries returned by Peek (raw) from the head. It
// reports false when another consumer removed them first.
func (q *Queue) Ack(ctx context.Context, raw []string) (bool, error) {
	if len(raw) == 0 {
		return true, nil
	}
	n, err := ackScript.Run(ctx, q.cfg.Redis, []string{q.cfg.Key}, raw[0], len(raw)).Int()
	if err != nil {
		return false, fmt.Errorf("acknowledge tracking hits: %w", err)
	}
	return n == 1, nil
}

var (
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// Lock takes or extends the consumer lock for owner for ttl and reports
// whether owner holds it. One consumer at a time writes hits, in queue
// order, which the classifier's view of a delivery's history relies on.
func (q *Queue) Lock(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	key := q.cfg.Key + ":lock"
	ok, err := q.cfg.Redis.SetNX(ctx, key, owner, ttl).Result()
	if err != nil || ok {
		return ok, err
	}
	n, err := extendScript.Run(ctx, q.cfg.Redis, []string{key}, owner, ttl.Milliseconds()).Int()
	return n == 1, err
}

// Unlock releases owner's consumer lock.
func (q *Queue) Unlock(ctx context.Context, owner string) error {
	return unlockScript.Run(ctx, q.cfg.Redis, []string{q.cfg.Key + ":lock"}, owner).Err()
}
