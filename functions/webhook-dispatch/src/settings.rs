//! What the function reads from its environment, once, at start-up: the
//! reader it shares with the other webhook worker.

pub use adapters::settings::WebhookWorker as Settings;
