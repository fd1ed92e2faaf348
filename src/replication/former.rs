//! What a former primary does when it becomes a standby (restarted, or
//! deposed while running): its own changes must be on the stream, and
//! taken there, before it may follow or lead again (`check_own_changes`);
//! if the stream refused one (see `diverge`), its store is rebuilt from the
//! stream (`rebuild`).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use tokio::sync::watch;

use crate::store::Store;

use super::diverge::first_refused;
use super::{Standing, Status};

/// What a store that may have been primary finds when it becomes a standby.
pub enum OwnChanges {
    /// Its changes are all on the stream, taken: it may follow.
    Taken,
    /// The stream refused one of its changes (this sequence).
    Refused(u64),
    Stopped,
}

/// A store that was primary (its feed mark says so) waits until its outbox
/// is on the stream, then checks that the stream took every change of its
/// own past what it last applied (`diverge`). Once clean, the mark forgets
/// it was primary, and later starts skip this.
pub async fn check_own_changes(
    store: &Arc<Store>,
    status: &Status,
    stream: &Stream,
    prefix: &str,
    ours: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<OwnChanges, String> {
    let mark = store.feed_mark().map_err(|e| e.to_string())?;
    if !mark.primary {
        status.standing.send_if_modified(|s| {
            let settling = *s == Standing::Settling;
            if settling {
                *s = Standing::Standby { primary: None };
            }
            settling
        });
        return Ok(OwnChanges::Taken);
    }
    status.standing.send_replace(Standing::Settling);
    let mut said = false;
    while store.outbox_depth() > 0 {
        if !said {
            tracing::info!(
                depth = store.outbox_depth(),
                "a former primary: publishing its outbox before following"
            );
            said = true;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => return Ok(OwnChanges::Stopped),
        }
    }
    loop {
        match first_refused(stream, prefix, mark.applied + 1, mark.epoch, ours).await {
            Ok(Some(seq)) => return Ok(OwnChanges::Refused(seq)),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stream to check this former primary's changes; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return Ok(OwnChanges::Stopped),
                }
            }
        }
    }
    let mut mark = store.feed_mark().map_err(|e| e.to_string())?;
    mark.primary = false;
    store.set_feed_mark(&mark).map_err(|e| e.to_string())?;
    status.standing.send_replace(Standing::Standby { primary: None });
    Ok(OwnChanges::Taken)
}

/// This store left the stream's history (`diverge`): the process rebuilds
/// it from the stream (`Status::rebuild`; the data dir is set aside, not
/// deleted), which needs the stream to hold every change from its first.
/// If it does not, this instance stays a standby that neither follows nor
/// leads, and says what to do.
pub async fn rebuild(
    stream: &Stream,
    status: &Arc<Status>,
    seq: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let first = loop {
        match stream.clone().info().await {
            Ok(info) => break info.state.first_sequence,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stream's first sequence; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
        }
    };
    let why = format!(
        "the stream refused this store's own change at sequence {seq} (a newer primary took over first): \
         this store holds changes no other copy has"
    );
    // Nothing of this store's is shown meanwhile: a rebuild takes it back.
    status.standing.send_replace(Standing::Settling);
    if first <= 1 {
        tracing::error!(reason = %why, "rebuilding this store from the stream");
        status.rebuild.send_replace(Some(why));
        return Ok(());
    }
    tracing::error!(
        reason = %why,
        first_sequence = first,
        "this store cannot follow the stream again, and the stream no longer holds its first changes to \
         rebuild from: it answers no API request; stop it and start it on a copy of the primary's data dir \
         taken while the primary was stopped"
    );
    let _ = stop.changed().await;
    Ok(())
}
