package main

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"
)

// newMonitor returns the asynq queue monitor over the Redis that rdb talks
// to, rooted at /monitoring and read-only: deleting or re-running tasks by
// hand would bypass the deliveries ledger. stop closes its Redis
// connections. For a cluster or failover client it returns a nil handler.
func newMonitor(rdb redis.UniversalClient) (h http.Handler, stop func()) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil, func() {}
	}
	o := c.Options()
	m := asynqmon.New(asynqmon.Options{
		RootPath: "/monitoring",
		ReadOnly: true,
		RedisConnOpt: asynq.RedisClientOpt{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig,
		},
	})
	return m, func() { m.Close() }
}
