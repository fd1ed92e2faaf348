//! The accept loop: hyper's HTTP/1 connection driver under our own loop, so
//! that what clients can hold is bounded. (`warp::serve` accepts without
//! limit and never times out a client that stops sending.)
//!
//! - At most `max_connections` connections are served at once: each holds a
//!   semaphore slot until it closes. Past the cap a few more connections are
//!   still answered, `503 SERVICE_OVERLOADED` with `Retry-After`, and closed;
//!   beyond those they are closed at once. Nothing queues in this process.
//! - A request head must arrive within `header_timeout` (hyper's header read
//!   timer). The timer also runs while a kept-alive connection sits idle, so
//!   a slow-header client or an idle one gives its slot back.
//! - A request head is at most `MAX_HEAD_BYTES` (hyper's read buffer cap);
//!   bodies are capped by the routes (`max_body_bytes`).
//!
//! Graceful stop: stop accepting, ask every connection to finish the request
//! it is on and close, and wait (at most `DRAIN_GRACE`) until all have.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::Http;
use hyper::service::service_fn;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use warp::{Filter, Reply};

use super::error::ApiError;
use crate::engine::Error;

/// What the server lets clients hold (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Connections past the cap that still get a 503 before being closed. Each
/// costs a task and a socket for at most `OVERFLOW_TIMEOUT`, so bounded too.
const OVERFLOW_ANSWERS: usize = 64;
/// How long an over-the-cap client may take to send the request we refuse.
const OVERFLOW_TIMEOUT: Duration = Duration::from_secs(1);
/// Request line + headers. Real clients send well under 8 KiB; hyper's
/// default (~400 KiB per connection) times thousands of connections is
/// memory an attacker could pin.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a graceful stop waits for in-flight requests.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// Pause after a failed accept (typically out of file descriptors), so a
/// full descriptor table does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `routes` on `listener` until `stop` resolves, then drains.
pub async fn serve<F>(listener: TcpListener, routes: F, limits: Limits, stop: impl Future<Output = ()>)
where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: Reply,
    F::Future: Send,
{
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_ANSWERS));
    let mut http = Http::new();
    http.http1_only(true)
        // A client may shut its sending side once the request is out; it
        // still gets its answer (by default hyper would drop the connection,
        // and a write it had already made would go unanswered).
        .http1_half_close(true)
        .http1_header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut refuse = http.clone();
    refuse
        .http1_keep_alive(false)
        .http1_header_read_timeout(limits.header_timeout.min(OVERFLOW_TIMEOUT));
    let (http, refuse) = (Arc::new(http), Arc::new(refuse));
    let (draining_tx, draining) = watch::channel(false);
    let service = warp::service(routes);

    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // Replies are small and written whole: do not let Nagle hold them.
        let _ = stream.set_nodelay(true);
        if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            let conn = http.serve_connection(stream, service.clone());
            let draining = draining.clone();
            tokio::spawn(async move {
                // The connection (and the routes it holds, hence the engine
                // and the store) is dropped before its slot is given back:
                // once every slot is back, nothing here still holds the store,
                // so a restart in the same process can take the data dir's lock.
                let ended = {
                    tokio::pin!(conn);
                    tokio::select! {
                        ended = conn.as_mut() => ended,
                        () = until_set(draining) => {
                            // Finish the request in flight (if any), then close.
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    }
                };
                if let Err(e) = ended {
                    // Clients hanging up and slow clients being cut are routine.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(slot);
            });
        } else if let Ok(slot) = Arc::clone(&overflow).try_acquire_owned() {
            tokio::spawn(answer_overloaded(stream, Arc::clone(&refuse), slot));
        } else {
            drop(stream);
        }
    }
    drop(listener);
    let _ = draining_tx.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN_GRACE:?} after the stop; closing them");
    }
}

/// A connection past the cap: read its request, answer 503, close.
async fn answer_overloaded(stream: TcpStream, http: Arc<Http>, _slot: OwnedSemaphorePermit) {
    let reply = service_fn(|_| async { Ok::<_, Infallible>(super::error::reply(&ApiError::from(Error::Overloaded))) });
    let _ = http.serve_connection(stream, reply).await;
}

/// Resolves once the flag is set (or its sender is gone: the server is stopping).
async fn until_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}
