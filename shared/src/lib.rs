//! The core: the order model and rules shared by the Lambda functions, with no
//! AWS SDK, Lambda runtime, HTTP client or server in its dependencies
//! (`make core-deps` checks). The `adapters` crate implements [`ports`] over
//! AWS; the functions (`functions/*`) map what the use cases return to HTTP.
//!
//! # Where to change what
//!
//! | to change… | look in |
//! | --- | --- |
//! | a value type (order number, money, platform, status, ISO codes, the order as sent, an API key record) | [`domain`] (`domain/*.rs`) |
//! | what an order body must contain (400), size caps | [`intake`] (`intake/parse.rs`: [`intake::parse_order`]), [`limits`] |
//! | data-quality findings (422 / `status_message`) | `intake/findings.rs` |
//! | accepting an order, replays, number collisions, inline labels | `intake/mod.rs`, `intake/label.rs` |
//! | the JSON reader that lists every problem (caps counted, not read) | `reader.rs` |
//! | how many problems an answer lists, and how long they may be | [`problems`] |
//! | what is stored about an order, what an event makes due | [`record`] (`record/mod.rs`) |
//! | which event moves which status (the state machine) | [`record::progress`]; event types [`record::event`] |
//! | the callback's state and delivery protocol (generation, claim, lease, settle, replay) | [`record::callback`] |
//! | reading a warehouse event, cancel or callback-fields body | [`lifecycle::requests`] (`lifecycle/event.rs`, `callback_fields.rs`) |
//! | applying an event, cancel, callback fields, replay, label link | [`lifecycle`] (`service.rs`, `label.rs`) |
//! | the stored order read back (no intake rules: trusted text) | `Order::from_stored` (`domain/order.rs`) |
//! | what redaction replaces and keeps, when an order is final | `record/personal_data.rs` |
//! | erasure on request, the scheduled redaction sweep, its index | `lifecycle/personal_data.rs` (docs/personal-data.md) |
//! | the spec-001 body: field mapping, platform requirements, caps, idempotency key | [`callback::body`] (`build.rs`, `document.rs`, `idempotency.rs`) |
//! | the partner's OAuth2 token refresh (cache, fleet-wide lock, rotation) over its vault, lock and endpoint ports | [`token_refresh`] |
//! | retry schedule, circuit breaker | [`callback::retry`], [`callback::breaker`] |
//! | one delivery of a queue message end to end, in steps (admission → claim → build → post → settle) | [`dispatch`] (`dispatch/*.rs`) |
//! | what a partner's answer means (delivered, failed, retried and why) | [`dispatch::answer`] |
//! | the breaker as a delivery meets it (post, probe, hold; the 429 throttle), a warm instance's copy of it | [`dispatch::admission`], [`dispatch::breaker_cache`] |
//! | read-modify-write with optimistic concurrency | [`update`] |
//! | ERP polling (change feed, sharded index keys) | [`polling`] |
//! | the order as the API shows it | [`view`] |
//! | API keys, signatures (and accepting a signed request once), who may see which order | [`auth`] (`key.rs`, `signature.rs`, `mod.rs`); the tenant rule of every read: `domain::Scope::may_read`, [`domain::Access`] |
//! | a trait the core needs from outside (store, labels, partner, tokens, keys, breaker, callback queue, metrics, clock) | [`ports`]; the in-memory fakes: `memory.rs` (feature `memory`) |
//! | what the core counts (metrics as data; `adapters::emf` writes them) | [`metrics`] |
//! | an error and its variants | [`error`] (HTTP status codes: the `adapters` crate's `api`) |
//! | the warehouses configuration, a setting's problem (the functions read their settings with `adapters::settings`) | [`config`] |
//!
//! # Layers
//!
//! No top-level module uses one that uses it back (`layout.rs` tests it):
//! [`domain`] and [`error`] at the bottom, then [`record`] (the order's state
//! and its rules), [`ports`], and the use cases on top ([`intake`],
//! [`lifecycle`], [`dispatch`], [`polling`]).
//!
//! # Edges
//!
//! A request body becomes a typed request at the edge: the handler calls
//! [`intake::parse_order`] or a [`lifecycle::requests`] reader first (size,
//! then every problem listed), and the use cases take what they return,
//! never bytes. The parsers stay here, beside the types whose rules they
//! are, so the rules have one home the functions, tools and tests share;
//! they use no HTTP type. The other way in, stored JSON, becomes an
//! [`domain::Order`] only through `Order::from_stored`.
//!
//! # Results
//!
//! One vocabulary along an order's flow: a `…Outcome` is what a step did
//! ([`record::EventOutcome`] with its [`record::progress::EventEffect`],
//! [`ports::ClaimOutcome`], [`record::callback::AttemptOutcome`],
//! [`dispatch::DeliveryOutcome`], [`callback::breaker::PostOutcome`]); a
//! `…Result` is what a call to the outside gave ([`dispatch::PostResult`]); a
//! [`dispatch::QueueAction`] is what the queue is told; a `…Error` is why a
//! request was refused or failed.

pub mod auth;
pub mod callback;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod hex;
pub mod intake;
#[cfg(test)]
mod layout;
pub mod lifecycle;
pub mod limits;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod polling;
pub mod ports;
pub mod problems;
pub mod random;
mod reader;
pub mod record;
pub mod token_refresh;
pub mod update;
pub mod view;
pub mod webhook;
