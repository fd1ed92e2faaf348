//! The accept loop: hyper's HTTP/1 connection driver under our own loop, so
//! that what clients can hold is bounded. (`warp::serve` accepts without
//! limit and never times out a client that stops sending.)
//!
//! - At most `max_connections` connections are served at once: each holds a
//!   semaphore slot until it closes. Past the cap a few more connections are
//!   still answered, `503 SERVICE_OVERLOADED` with `Retry-After`, and closed;
//!   beyond those they are closed at once. Nothing queues in this process.
//! - A request head must arrive within `header_timeout` (hyper's header read
//!   timer). It starts when a connection is accepted and, on a kept-alive
//!   one, only when the next request's first byte arrives: it never cuts a
//!   connection that stays silent after an answer.
//! - So a kept-alive connection with no request in flight is closed once it
//!   has been silent for `idle_timeout` after its last answer (`idle_for`).
//! - A request body must have arrived within `body_timeout` of its head
//!   (`BodyWithin`); past it the route reading it gets an error (answered
//!   400), and hyper closes the connection, the body being unread. So a
//!   stalled body neither holds a slot nor delays a graceful stop for long.
//! - A request with a chunked body is answered and its connection closed
//!   (`guarded`). RFC 9112 §6.1 asks that of a request with both
//!   `Transfer-Encoding` and `Content-Length` (a proxy in front may have
//!   framed it by the length, and the rest of the body would be read here as
//!   a next request); hyper drops a `Content-Length` that follows the
//!   `Transfer-Encoding`, so every chunked request is treated so.
//! - A request head (request line and headers) of more than `MAX_HEAD_BYTES`
//!   is refused: hyper answers 431 and closes. Bodies are capped by the
//!   routes (`max_body_bytes`).
//!
//! Graceful stop: stop accepting, ask every connection to finish the request
//! it is on and close, and wait (at most `DRAIN_GRACE`) until all have.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::HttpBody;
use hyper::server::conn::Http;
use hyper::service::{service_fn, Service};
use hyper::{header, Body, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::engine::Error;

/// What the server lets clients hold (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long a kept-alive connection may stay silent after an answer.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive after its head.
    pub body_timeout: Duration,
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
/// The most one read hands hyper (`ReadChunks`). hyper compares its buffer
/// with its limit only between reads, and one read could otherwise take in
/// as much again as the limit: with `max_buf_size` at 64 KiB, heads of up to
/// ~120 KiB got through. With reads this size and hyper's limit one chunk
/// under `MAX_HEAD_BYTES`, every head over `MAX_HEAD_BYTES` is refused, every
/// head of up to `MAX_HEAD_BYTES - READ_CHUNK` is served, and a head between
/// the two is served when it arrives whole.
const READ_CHUNK: usize = 8 * 1024;
/// How long a graceful stop waits for in-flight requests.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// Pause after a failed accept (typically out of file descriptors), so a
/// full descriptor table does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What becomes of the listening socket once `serve` stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Closed before the drain: new connections are refused.
    Close,
    /// Handed back (the same process serves again on it: new connections
    /// wait in its backlog meanwhile).
    Keep,
}

/// Serves `router` on `listener` until `stop` resolves, then drains; the
/// listener comes back if `stop` said `Then::Keep`.
pub async fn serve(
    listener: TcpListener,
    router: super::Router,
    limits: Limits,
    stop: impl Future<Output = Then>,
) -> Option<TcpListener> {
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
        .max_buf_size(MAX_HEAD_BYTES - READ_CHUNK + 1);
    let mut refuse = http.clone();
    refuse
        .http1_keep_alive(false)
        .http1_header_read_timeout(limits.header_timeout.min(OVERFLOW_TIMEOUT));
    let (http, refuse) = (Arc::new(http), Arc::new(refuse));
    let (draining_tx, draining) = watch::channel(false);
    let service = service_fn(move |req| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.handle(req).await) }
    });

    tokio::pin!(stop);
    let then = loop {
        let accepted = tokio::select! {
            then = &mut stop => break then,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    then = &mut stop => break then,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // Replies are small and written whole: do not let Nagle hold them.
        let _ = stream.set_nodelay(true);
        if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            let (idle_since, idle) = watch::channel(None);
            let conn = http.serve_connection(
                ReadChunks(stream),
                guarded(service.clone(), idle_since, limits.body_timeout),
            );
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
                        () = idle_for(idle, limits.idle_timeout) => {
                            // Nothing in flight: hyper closes at once. (Had
                            // a request just begun, it would be answered first.)
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
    };
    let kept = match then {
        Then::Keep => Some(listener),
        Then::Close => {
            drop(listener);
            None
        }
    };
    let _ = draining_tx.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN_GRACE:?} after the stop; closing them");
    }
    kept
}

/// A connection past the cap: read its request, answer 503, close.
async fn answer_overloaded(stream: TcpStream, http: Arc<Http>, _slot: OwnedSemaphorePermit) {
    let reply = service_fn(|_| async { Ok::<_, Infallible>(super::error::reply(&ApiError::from(Error::Overloaded))) });
    let _ = http.serve_connection(stream, reply).await;
}

/// When a connection last went idle: `None` while a request is being
/// answered, and before its first answer (the header timeout governs then).
type IdleSince = watch::Sender<Option<Instant>>;

/// `service`, marking the connection busy while each request is answered,
/// with a deadline on each request's body, and closing the connection after
/// a request with a `Transfer-Encoding`.
fn guarded<S>(
    mut service: S,
    idle_since: IdleSince,
    body_timeout: Duration,
) -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    let idle_since = Arc::new(idle_since);
    service_fn(move |req: Request<Body>| {
        let busy = Busy::start(Arc::clone(&idle_since));
        let last = req.headers().contains_key(header::TRANSFER_ENCODING);
        let answer = service.call(BodyWithin::deadline(req, body_timeout));
        async move {
            let mut answered = answer.await;
            drop(busy);
            if last {
                if let Ok(response) = &mut answered {
                    // hyper closes the connection once this answer is written.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                }
            }
            answered
        }
    })
}

/// A request being answered. Dropped (answered, or abandoned because the
/// connection failed) it marks the connection idle from that instant.
struct Busy(Arc<IdleSince>);

impl Busy {
    fn start(idle_since: Arc<IdleSince>) -> Busy {
        idle_since.send_replace(None);
        Busy(idle_since)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_replace(Some(Instant::now()));
    }
}

/// Resolves once the connection has been idle for `limit` since its last
/// answer; never while a request is being answered.
async fn idle_for(mut idle_since: watch::Receiver<Option<Instant>>, limit: Duration) {
    loop {
        let since = *idle_since.borrow_and_update();
        let changed = match since {
            None => idle_since.changed().await,
            Some(at) => tokio::select! {
                // A request that began as the deadline passed wins: it is answered.
                biased;
                changed = idle_since.changed() => changed,
                () = tokio::time::sleep_until((at + limit).into()) => return,
            },
        };
        if changed.is_err() {
            // The connection is gone; its task ends with it.
            return std::future::pending().await;
        }
    }
}

/// A request body that must have arrived by a deadline. Past it, the route
/// reading it gets an error instead of waiting on: the route reports it as an
/// unreadable body (400), and hyper, the body unread, closes the connection.
struct BodyWithin {
    body: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
struct BodyTimeout(Duration);

impl BodyWithin {
    /// `req` with its body bounded by `limit` from now (no body: unchanged).
    fn deadline(req: Request<Body>, limit: Duration) -> Request<Body> {
        if req.body().is_end_stream() {
            return req;
        }
        req.map(|body| {
            Body::wrap_stream(BodyWithin {
                body,
                deadline: Box::pin(tokio::time::sleep(limit)),
                limit,
            })
        })
    }
}

impl futures_util::Stream for BodyWithin {
    type Item = Result<hyper::body::Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Poll::Ready(chunk) = Pin::new(&mut this.body).poll_data(cx) {
            return Poll::Ready(chunk.map(|c| c.map_err(Into::into)));
        }
        ready!(this.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimeout(this.limit).into())))
    }
}

/// A client's socket that hands hyper at most `READ_CHUNK` bytes per read
/// (so that hyper's head limit is exact to within one read).
struct ReadChunks(TcpStream);

impl AsyncRead for ReadChunks {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let stream = Pin::new(&mut self.get_mut().0);
        if buf.remaining() <= READ_CHUNK {
            return stream.poll_read(cx, buf);
        }
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(READ_CHUNK));
        ready!(stream.poll_read(cx, &mut part))?;
        let read = part.filled().len();
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ReadChunks {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Resolves once the flag is set (or its sender is gone: the server is stopping).
async fn until_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}
