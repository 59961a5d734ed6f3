package tracking

import (
	"errors"
	"sync"
)

// errClosed is returned by calls made after a batcher was closed.
var errClosed = errors.New("tracking: shut down")

// call is one request to a batcher and, once done is closed, its result.
type call[A, R any] struct {
	arg  A
	res  R
	err  error
	done chan struct{}
}

// batcher gathers concurrent calls into batches without waiting for a
// batch to fill: each worker takes whatever has queued up while it was
// busy (group commit). Under load batches grow by themselves; an idle
// system answers one call at a time with no added latency.
type batcher[A, R any] struct {
	in  chan *call[A, R]
	fn  func(batch []*call[A, R]) // sets res and err of every call
	max int

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

func newBatcher[A, R any](workers, max int, fn func([]*call[A, R])) *batcher[A, R] {
	b := &batcher[A, R]{in: make(chan *call[A, R], workers*max), fn: fn, max: max}
	b.wg.Add(workers)
	for range workers {
		go b.work()
	}
	return b
}

// do submits arg and waits for its batch to be processed.
func (b *batcher[A, R]) do(arg A) (R, error) {
	c := &call[A, R]{arg: arg, done: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		var zero R
		return zero, errClosed
	}
	b.in <- c
	b.mu.RUnlock()
	<-c.done
	return c.res, c.err
}

func (b *batcher[A, R]) work() {
	defer b.wg.Done()
	batch := make([]*call[A, R], 0, b.max)
	for c := range b.in {
		batch = append(batch[:0], c)
	fill:
		for len(batch) < b.max {
			select {
			case c, ok := <-b.in:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		b.fn(batch)
		for _, c := range batch {
			close(c.done)
		}
		clear(batch)
	}
}

// close processes the calls already submitted, refuses new ones and
// returns when the workers have stopped.
func (b *batcher[A, R]) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
	b.mu.Unlock()
	b.wg.Wait()
}
