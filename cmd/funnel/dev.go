package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/admin"
	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/demo"
	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
)

// devCommand runs the whole product in one process with nothing installed:
// SQLite, an in-process Redis and an SMTP server that catches every
// message.
type devCommand struct{ env }

// devTokenName names the admin token that each start of funnel dev
// replaces.
const devTokenName = "funnel dev bootstrap"

func (c *devCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "dev", "dev [flags]",
		"Run the admin API, the worker and an SMTP catcher in one process, on a SQLite file and an in-process Redis.\n"+
			"Nothing leaves the machine: every message lands in the outbox (GET /api/v1/dev/outbox).")
	cfg.bind(fs, c.getenv, "127.0.0.1:8080")
	seed := fs.Bool("demo", false, "seed an empty database with 1,000 contacts, a sender, a template, a segment, a draft campaign and demo users")
	smtpAddr := fs.String("smtp-addr", "127.0.0.1:2525", "listen address of the SMTP catcher")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:funnel-dev.db"
	}
	if err := cfg.validate(needDatabase | needAddr); err != nil {
		return err
	}
	log := cfg.logger(c.stderr)

	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("FUNNEL_DATABASE_URL: %w", err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if cfg.Secret, err = devSecret(cfg); err != nil {
		return err
	}

	rdb, stopRedis, err := devRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer stopRedis()
	catcher, err := outbox.Listen(*smtpAddr, outbox.Options{})
	if err != nil {
		return fmt.Errorf("-smtp-addr: start SMTP catcher on %s: %w", *smtpAddr, err)
	}
	defer catcher.Close()

	if _, err := db.FailStaleImports(ctx, 0); err != nil {
		return err
	}
	token, err := devToken(ctx, db)
	if err != nil {
		return err
	}
	var demoUsers []string
	if *seed {
		res, err := demo.Seed(ctx, db, 1000)
		if err != nil {
			return err
		}
		log.Info("demo data", "contacts_added", res.Contacts, "templates_added", res.Templates,
			"segments_added", res.Segments, "campaigns_added", res.Campaigns)
		if demoUsers, err = createDemoUsers(ctx, db); err != nil {
			return err
		}
	}

	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	if cfg.SMTPURL == "" {
		cfg.SMTPURL = "smtp://" + catcher.Addr() + "?tls=none"
	}
	if err := cfg.validate(needPublicURL | needSMTP); err != nil {
		return err
	}
	mail, err := newTemplateMail(cfg)
	if err != nil {
		return err
	}
	sending, err := sendingSetup(cfg, mail, catcher.Addr())
	if err != nil {
		return err
	}
	scoreDelay, err := cfg.scoreDelay(c.getenv)
	if err != nil {
		return err
	}
	reg := ops.NewRegistry()
	// Webhooks may reach a local receiver. The send journal needs a Redis
	// that outlives this process: only one given by FUNNEL_REDIS_URL.
	_, stopSending, err := startSending(ctx, cfg, db, rdb, log, reg, sendingOptions{
		Concurrency: 10, Lease: 30 * time.Second, PrivateHooks: true, Journal: cfg.RedisURL != "", ScoreDelay: scoreDelay})
	if err != nil {
		return err
	}
	defer stopSending()
	stopEvents, err := startEventWriter(ctx, cfg, c.getenv, db, rdb, log)
	if err != nil {
		return err
	}
	defer stopEvents()
	monitor, stopMonitor := newMonitor(rdb)
	defer stopMonitor()
	api := admin.New(admin.Config{DB: db, Logger: log, Outbox: catcher, Mail: mail, PublicURL: cfg.PublicURL,
		Caught: caughtMessages(catcher), AllowPrivateWebhooks: true, Monitor: monitor, Sending: sending})
	defer api.Close()
	tr, err := startTracking(cfg, c.getenv, db, rdb, log, reg)
	if err != nil {
		return err
	}
	defer tr.Close()
	mux := publicMux(reg, readinessChecks(db, rdb), api, tr.handler)
	return serveHTTP(ctx, ln, mux, log, func(a net.Addr) {
		base := "http://" + a.String()
		fmt.Fprintf(c.stdout, "Funnel dev is running (Ctrl-C stops it).\n"+
			"  admin:     %s\n  API token: %s\n  database:  %s\n  SMTP:      %s (every message is caught: %s/api/v1/dev/outbox)\n"+
			"Try: curl -H 'Authorization: Bearer %s' %s/api/v1/contacts\n",
			base, token, cfg.DatabaseURL, catcher.Addr(), base, token, base)
		if len(demoUsers) > 0 {
			fmt.Fprintf(c.stdout, "Sign in at %s/login as %s, password %s\n", base, strings.Join(demoUsers, ", "), demoPassword)
		}
	})
}

// devRedis connects to FUNNEL_REDIS_URL when set, else starts an
// in-process Redis. Its TTL clock must follow real time, or asynq's unique
// locks and bookkeeping keys would never expire.
func devRedis(ctx context.Context, redisURL string) (redis.UniversalClient, func(), error) {
	if redisURL != "" {
		rdb, err := connectRedis(ctx, redisURL)
		if err != nil {
			return nil, nil, err
		}
		return rdb, func() { rdb.Close() }, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, nil, fmt.Errorf("start in-process Redis: %w", err)
	}
	m.ClockTTL(true)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return rdb, func() { rdb.Close(); m.Close() }, nil
}

// devUserEmail is the admin user that owns funnel dev's API token. The
// .invalid domain is reserved: no message to it can ever be delivered.
const devUserEmail = "dev@funnel.invalid"

// devToken replaces the previous start's bootstrap token with a new token
// of the admin user devUserEmail (created on the first start, with a
// random password nobody knows: it signs in only through the token) and
// returns its secret. It is a normal user token: listed, revocable, and
// showing when it was last used.
func devToken(ctx context.Context, db *store.DB) (string, error) {
	u, err := devUser(ctx, db)
	if err != nil {
		return "", err
	}
	tokens, err := db.ListUserTokens(ctx, 0)
	if err != nil {
		return "", err
	}
	for _, t := range tokens {
		// Earlier versions made the token without a user.
		if t.Name == devTokenName && (t.UserID == u.ID || t.UserID == 0) {
			if err := db.RevokeUserToken(ctx, t.ID, 0); err != nil {
				return "", err
			}
		}
	}
	_, secret, err := db.CreateUserToken(ctx, u.ID, devTokenName)
	return secret, err
}

// devUser finds or creates the admin user devUserEmail.
func devUser(ctx context.Context, db *store.DB) (*campaign.User, error) {
	admins, err := db.ListUsers(ctx, campaign.RoleAdmin)
	if err != nil {
		return nil, err
	}
	for _, u := range admins {
		if u.Email == devUserEmail && u.DisabledAt == nil {
			return u, nil
		}
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	u := &campaign.User{Email: devUserEmail, Name: "funnel dev", Role: campaign.RoleAdmin}
	err = db.CreateUser(ctx, u, base64.RawURLEncoding.EncodeToString(raw[:]))
	if campaign.ErrorCode(err) == campaign.ECONFLICT {
		return nil, fmt.Errorf("the admin user %s, which owns funnel dev's API token, is disabled or not an admin: enable it as an admin to use this database with funnel dev", devUserEmail)
	}
	if err != nil {
		return nil, fmt.Errorf("create the funnel dev admin user: %w", err)
	}
	return u, nil
}

// devSecret returns FUNNEL_SECRET when set; otherwise a secret kept in a
// file beside the SQLite database, so that links in messages caught in one
// run still verify in the next.
func devSecret(cfg Config) (string, error) {
	if cfg.Secret != "" {
		if len(cfg.Secret) < minSecretLength {
			return "", fmt.Errorf("FUNNEL_SECRET: must be at least %d characters", minSecretLength)
		}
		return cfg.Secret, nil
	}
	path := "funnel-dev.secret"
	if rest, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:"); ok {
		path = strings.TrimPrefix(rest, "//") + ".secret"
	}
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= minSecretLength {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev secret: %w", err)
	}
	var raw [48]byte
	_, _ = rand.Read(raw[:])
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write dev secret: %w", err)
	}
	return secret, nil
}

// demoPassword is the password of the demo users: funnel dev runs on a
// laptop, and --demo is for trying the UI.
const demoPassword = "funnel-demo-password"

// createDemoUsers makes admin@, marketer@ and sales@example.com with
// demoPassword, skipping those that exist, and returns their emails.
func createDemoUsers(ctx context.Context, db *store.DB) ([]string, error) {
	var emails []string
	for _, r := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
		u := &campaign.User{Email: string(r) + "@example.com", Name: "Demo " + string(r), Role: r}
		if err := db.CreateUser(ctx, u, demoPassword); err != nil && campaign.ErrorCode(err) != campaign.ECONFLICT {
			return nil, fmt.Errorf("create demo user %s: %w", u.Email, err)
		}
		emails = append(emails, u.Email)
	}
	return emails, nil
}

// caughtMessages lists the catcher's messages for the UI's outbox pages.
func caughtMessages(s *outbox.Server) func() []ui.Message {
	return func() []ui.Message {
		msgs := s.Messages()
		out := make([]ui.Message, len(msgs))
		for i, m := range msgs {
			out[i] = ui.Message{ID: m.ID, From: m.From, To: m.To, Subject: m.Subject, ReceivedAt: m.ReceivedAt, Raw: m.Raw}
		}
		return out
	}
}
