//! The leadership lease.
use super::Status;
use crate::config::ReplicationSettings;
use crate::engine::Engine;
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(
    _settings: ReplicationSettings,
    _engine: Arc<Engine>,
    _advertise: String,
    _status: Arc<Status>,
    _stop: watch::Receiver<bool>,
) {
}
