// Package campaign is Funnel's domain: contacts, segments, templates,
// campaigns, deliveries, events and leads, with their validation rules,
// allowed status transitions and domain errors.
//
// It imports only the standard library. Adapters (store, mailer, worker,
// admin, tracking) speak these types; cmd/funnel joins them.
package campaign
