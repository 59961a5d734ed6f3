// Package tracking serves Funnel's public tracking endpoints and judges
// every open and click: human or machine, and why.
//
// # Endpoints
//
//	GET      /t/o/{token}  open pixel: a 1x1 GIF that is never cached
//	GET/HEAD /t/c/{token}  click: 302 to the link's recorded destination
//	GET      /u/{token}    unsubscribe page; changes nothing (scanners fetch every link)
//	POST     /u/{token}    RFC 8058 one-click (List-Unsubscribe=One-Click) or the
//	                       page's button: the contact is unsubscribed before the answer
//	GET      /v/{token}    view in browser: the delivery's message HTML, rendered
//	                       again from the campaign's template for its contact
//
// A token that does not verify (forged, edited, truncated, another kind),
// names a delivery that does not exist, or a link index the delivery
// never had, gets a 404 page: a click never redirects anywhere but to an
// http(s) URL recorded for that delivery when its message was rendered
// (store.Links). Preview and test tokens (delivery 0) record nothing.
//
// # View in browser
//
// GET /v/ renders the delivery's HTML part again, as the sender did: the
// campaign's template (its current version: a template edited after the
// send shows the edit), the contact as it is now, the sender settings,
// the time the message was accepted as .Now, and the delivery's tokens,
// so its links and pixel are the delivery's. It is served with a CSP that
// allows no script, X-Frame-Options DENY and no-store. The page records
// nothing itself; its open pixel records the open as a mail client's
// would. A deleted contact or delivery gets the 404 page; a template that
// no longer renders gets a 500 page without details (logged). funnel
// track without FUNNEL_PUBLIC_URL answers 404 "not available".
//
// # Recording
//
// Each accepted request becomes a Hit, queued in Redis (Queue) before the
// answer is sent; when Redis refuses it the hit is written to the
// database directly (Recorder). The worker's event writer reads the queue
// in order, in batches, and gives them to Recorder.Record, which judges
// them (Classifier) and writes each batch with one multi-row INSERT.
//
// # The events contract
//
// Every accepted open, click and unsubscribe becomes exactly one row in
// the events table (kinds opened, clicked, unsubscribed), carrying its
// delivery, contact, campaign, link URL, time, client address (per
// IPMode), user agent, verdict (human) and reason. Replays of the queue
// insert nothing twice (events.hit_id is unique). When later events
// change the judgment of an earlier one (a honeypot click turns clicks
// within seconds before it into machine clicks; a human click makes the
// machine open before it human), the earlier row is UPDATEd in place:
// no row is ever added or deleted to change a verdict.
//
// # Rules
//
// Per request: a honeypot click, a HEAD request, a prefetch header
// (Purpose, Sec-Purpose, X-Moz, X-Purpose) and a missing User-Agent are
// machines; scanners by User-Agent or network (Safe Links, Mimecast,
// Proofpoint, Barracuda, scripts such as curl and python-requests) are
// machines with reason "scanner:<name>"; opens through Apple Mail Privacy
// Protection are machine opens (reason apple-mpp), opens through webmail
// image proxies such as Google's are human opens (reason proxy: those
// proxies fetch when the reader opens the message); a click sooner than
// click_min_delay (5 s) after the SMTP server accepted the message is a
// machine click (too-soon).
//
// Per delivery: clicks within honeypot_window (10 s) of a honeypot click
// are machine clicks (honeypot-window); burst_links (3) distinct links
// clicked within burst_window (2 s) are machine clicks (burst); a human
// click with no human open before it makes the latest machine open
// before it human (confirmed-by-click). The lists and limits live in
// classifier.json, which FUNNEL_CLASSIFIER_FILE replaces.
//
// # Verdicts and scoring
//
// A click judged human when it is written is not final: for
// Rules.Settle (the longer of honeypot_window and burst_window) a later
// hit of its delivery can still make it a machine click, which is what a
// scanner that follows the real links first and the honeypot last looks
// like. Scoring therefore takes a human click only once it is older than
// that plus the event writer's lag (worker.Scorer.Settle,
// FUNNEL_SCORE_DELAY, 30 s by default), so a scanner's clicks earn no
// points, stage, lead or webhook. When a verdict turns to machine after
// its click was scored anyway, scoring takes back what the click earned
// with a ledger row "reversed:<reason>", withdraws the contact's lead if
// sales has not touched it and the score fell below the threshold, and
// otherwise leaves the lead to sales (store.ScoreSettled).
package tracking
