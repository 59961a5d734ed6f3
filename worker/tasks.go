package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
)

// Task types.
const (
	// TypeStartCampaign starts a scheduled campaign at its send_at: it moves
	// it to sending, draws the audience and enqueues the batches. On a
	// campaign already sending (a resume, a re-run) it only enqueues.
	TypeStartCampaign = "campaign:start"
	// TypeSendBatch sends the deliveries of one campaign whose IDs fall in
	// one bucket (a fixed range of delivery IDs).
	TypeSendBatch = "campaign:send-batch"
)

// DefaultBucketSize is how many delivery IDs one batch task covers.
const DefaultBucketSize = 1000

// StartPayload is the payload of TypeStartCampaign.
type StartPayload struct {
	CampaignID int64 `json:"campaign_id"`
	// Version is the schedule version the task was enqueued for; a task of
	// an older schedule does nothing.
	Version int64 `json:"version"`
}

// BatchPayload is the payload of TypeSendBatch: deliveries of CampaignID
// with IDs from Bucket*Size to Bucket*Size+Size-1.
type BatchPayload struct {
	CampaignID int64 `json:"campaign_id"`
	Bucket     int64 `json:"bucket"`
	Size       int64 `json:"size"`
}

func (p BatchPayload) bounds() (lo, hi int64) { return p.Bucket * p.Size, p.Bucket*p.Size + p.Size - 1 }

// retryAfter is a handler result that is not a failure: the task runs
// again after the delay without using up a retry (waiting for send_at, for
// deferred deliveries, or handing the batch to another worker at
// shutdown).
type retryAfter struct {
	d   time.Duration
	why string
}

func (e *retryAfter) Error() string {
	return fmt.Sprintf("run again in %s: %s", e.d.Round(time.Millisecond), e.why)
}

// retryDelay is the server's RetryDelayFunc: the asked delay for
// retryAfter, asynq's default backoff otherwise.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	var ra *retryAfter
	if errors.As(err, &ra) {
		return max(ra.d, 0)
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

func isFailure(err error) bool {
	var ra *retryAfter
	return !errors.As(err, &ra)
}

// Client enqueues campaign tasks. Every task ID is derived from the
// campaign (and schedule version or bucket), so enqueueing the same work
// twice, from the API, a reconciler on every worker, or after a Redis
// flush, is harmless: asynq refuses the duplicate while the first is
// queued, and the ledger stops a second execution from sending again.
type Client struct {
	c          *asynq.Client
	BucketSize int64
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// NewClient returns a Client over rdb.
func NewClient(rdb redis.UniversalClient) *Client {
	return &Client{c: asynq.NewClientFromRedisClient(rdb), BucketSize: DefaultBucketSize, Now: time.Now}
}

// DispatchCampaign enqueues what c's status calls for: the start task of a
// scheduled campaign at its send_at, or, for a sending campaign (just
// resumed), a start task now that enqueues its batches. Other statuses
// need nothing. An error is worth logging but not failing a request on:
// the reconciler enqueues the same task within its tick.
func (cl *Client) DispatchCampaign(ctx context.Context, c *campaign.Campaign) error {
	switch c.Status {
	case campaign.StatusScheduled:
		at := cl.Now()
		if c.SendAt != nil {
			at = *c.SendAt
		}
		return cl.enqueueStart(ctx, c.ID, c.ScheduleVersion, at, "")
	case campaign.StatusSending:
		return cl.enqueueStart(ctx, c.ID, c.ScheduleVersion, cl.Now(), fmt.Sprintf(":resume:%d", c.UpdatedAt.UnixNano()))
	}
	return nil
}

func (cl *Client) enqueueStart(ctx context.Context, id, version int64, at time.Time, suffix string) error {
	payload, _ := json.Marshal(StartPayload{CampaignID: id, Version: version})
	_, err := cl.c.EnqueueContext(ctx, asynq.NewTask(TypeStartCampaign, payload),
		asynq.Queue(QueueCampaign), asynq.TaskID(fmt.Sprintf("start:%d:%d%s", id, version, suffix)),
		asynq.ProcessAt(at), asynq.MaxRetry(100), asynq.Timeout(time.Hour))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue start of campaign %d: %w", id, err)
	}
	return nil
}

// enqueueBatches enqueues one batch task per bucket. suffix distinguishes
// a recovery wave from the batches of the start, whose IDs asynq may
// still hold for a task that died with its worker.
func (cl *Client) enqueueBatches(ctx context.Context, id int64, buckets []int64, suffix string) error {
	for _, b := range buckets {
		payload, _ := json.Marshal(BatchPayload{CampaignID: id, Bucket: b, Size: cl.BucketSize})
		_, err := cl.c.EnqueueContext(ctx, asynq.NewTask(TypeSendBatch, payload),
			asynq.Queue(QueueCampaign), asynq.TaskID(fmt.Sprintf("batch:%d:%d:%d%s", id, cl.BucketSize, b, suffix)),
			asynq.MaxRetry(100), asynq.Timeout(6*time.Hour))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue batch %d of campaign %d: %w", b, id, err)
		}
	}
	return nil
}

// Close closes the client's connection to Redis when it owns one.
func (cl *Client) Close() error { return cl.c.Close() }
