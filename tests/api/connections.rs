//! What one connection may hold, over raw sockets: how long it may stay
//! silent after an answer, how long its request body may take, how large its
//! request head may be, and when it must be closed after an answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::helpers::*;
use super::overload::HEALTH;
use super::raw;

/// One exchange on a kept-alive connection: status, head (lowercased), JSON body.
async fn exchange(stream: &mut TcpStream, request: &str) -> std::io::Result<(u16, String, Value)> {
    let reply = raw::exchange(stream, request).await?;
    let body = reply.json().unwrap_or(Value::Null);
    Ok((reply.status, reply.head, body))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Waits (at most `within`) for the server to close `stream` cleanly, reading
/// nothing more from it; how long that took.
async fn eof_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0)) => started.elapsed(),
        Ok(Ok(n)) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&buf[..n])),
        Ok(Err(e)) => panic!("expected EOF, got {e}"),
        Err(_) => panic!("the server kept the connection open for {within:?}"),
    }
}

// ---- idle kept-alive connections ----------------------------------------------

#[tokio::test]
async fn silent_kept_alive_connections_are_closed_and_give_their_slots_back() {
    let app = TestApp::spawn_with(|s| {
        s.max_connections = 8;
        s.header_timeout_ms = 2_000;
        s.idle_timeout_ms = 2_000;
    })
    .await;
    // Eight clients ask once, read the answer and stay silent: every slot is held.
    let mut silent = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(app.addr).await;
        let (status, head, _) = exchange(&mut stream, HEALTH).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{head}");
        assert!(!head.contains("connection: close"), "not kept alive: {head}");
        silent.push((stream, Instant::now()));
    }
    let mut ninth = connect(app.addr).await;
    let (status, _, body) = exchange(&mut ninth, HEALTH).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status, body["error_code"].clone()), (503, json!("SERVICE_OVERLOADED")));
    // The idle timeout closes them (EOF, not a reset), not before it is due...
    for (stream, answered) in &mut silent {
        eof_within(stream, Duration::from_secs(15)).await;
        let idle = answered.elapsed();
        assert!(idle >= Duration::from_millis(1_500), "closed after {idle:?} of silence");
    }
    // ...and their slots are free again.
    let mut fresh = connect(app.addr).await;
    let (status, _, body) = exchange(&mut fresh, HEALTH).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status, body), (200, json!({"status": "healthy"})));
}

#[tokio::test]
async fn a_connection_that_keeps_asking_within_the_idle_timeout_is_kept() {
    let app = TestApp::spawn_with(|s| s.idle_timeout_ms = 2_000).await;
    let mut stream = connect(app.addr).await;
    for i in 0..4 {
        if i > 0 {
            // A quarter of the idle timeout between requests.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (status, head, _) = exchange(&mut stream, HEALTH)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(status, 200, "request {i}: {head}");
    }
}

// ---- request bodies that stall ------------------------------------------------

const STALLED_LENGTH: &str = "POST /api/v1/seats/purchase HTTP/1.1\r\nHost: t\r\nX-User-ID: slow\r\n\
    Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
const STALLED_CHUNKED: &str = "POST /api/v1/seats/purchase HTTP/1.1\r\nHost: t\r\nX-User-ID: slow\r\n\
    Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";

#[tokio::test]
async fn a_stalled_body_is_answered_and_its_connection_closed_within_the_body_timeout() {
    let app = TestApp::spawn_with(|s| {
        s.max_connections = 4;
        s.body_timeout_ms = 1_000;
    })
    .await;
    // Every slot is taken by a request whose body stops coming.
    let stalled = [STALLED_LENGTH, STALLED_CHUNKED, STALLED_LENGTH, STALLED_CHUNKED].map(|request| {
        let addr = app.addr;
        tokio::spawn(async move {
            let mut stream = connect(addr).await;
            let started = Instant::now();
            let answer = tokio::time::timeout(Duration::from_secs(15), exchange(&mut stream, request)).await;
            let (status, head, body) = answer
                .unwrap_or_else(|_| panic!("no answer within 15 s"))
                .unwrap_or_else(|e| panic!("{e}"));
            let answered = started.elapsed();
            eof_within(&mut stream, Duration::from_secs(5)).await;
            (status, head, body, answered)
        })
    });
    for task in stalled {
        let (status, head, body, answered) = task.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (status, body["error_code"].clone()),
            (400, json!("MALFORMED_JSON")),
            "{head}{body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("did not arrive within 1000 ms"), "{detail}");
        assert!(answered >= Duration::from_millis(900), "answered after {answered:?}");
    }
    // The slots came back.
    let mut fresh = connect(app.addr).await;
    let (status, _, body) = exchange(&mut fresh, HEALTH).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status, body), (200, json!({"status": "healthy"})));
}

/// SIGTERM while a request waits for a body that never comes: the stop waits
/// for the body timeout, not for the whole 30 s grace.
#[tokio::test]
async fn a_stalled_body_does_not_hold_up_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("body.toml");
    std::fs::write(&config, "body_timeout_ms = 1000\n").unwrap_or_else(|e| panic!("{e}"));
    let config_arg = config.display().to_string();
    let mut server = super::process::Server::start_with(&dir.path().join("data"), &["--config", &config_arg], &[]);
    let mut stream = connect(server.addr()).await;
    // With `Expect: 100-continue` the server says when the route is waiting
    // for the body: the request is surely in flight before the signal.
    let head = "POST /api/v1/seats/purchase HTTP/1.1\r\nHost: t\r\nX-User-ID: slow\r\n\
        Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut interim))
        .await
        .unwrap_or_else(|_| panic!("no 100 Continue"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"{")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let signalled = Instant::now();
    server.sigterm();
    assert_eq!(
        server.exit_code(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        server.stderr()
    );
    let stopped = signalled.elapsed();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(stopped < Duration::from_secs(10), "the stop took {stopped:?}");
}

// ---- request head size ----------------------------------------------------------

/// Sends a `GET /health` whose head is exactly `size` bytes, all at once;
/// the status answered, or None if the connection was closed without one.
async fn head_of(app: &TestApp, size: usize) -> Option<u16> {
    let start = "GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let head = format!("{start}{}{end}", "a".repeat(size - start.len() - end.len()));
    assert_eq!(head.len(), size);
    let mut stream = connect(app.addr).await;
    // A refusal may come (and the socket close) before the head is all sent.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Err(_) => panic!("a {size}-byte head: no answer and no close within 10 s"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn request_heads_over_64_kib_are_refused_with_431() {
    let app = TestApp::spawn().await;
    const KIB: usize = 1024;
    for size in [8 * KIB, 32 * KIB, 56 * KIB] {
        assert_eq!(head_of(&app, size).await, Some(200), "a {size}-byte head");
    }
    // Between 56 and 64 KiB a head is served when it arrives whole, as here;
    // it may be refused if it trickles in. Never anything else.
    for size in [60 * KIB, 64 * KIB] {
        let status = head_of(&app, size).await;
        assert!(matches!(status, Some(200 | 431)), "a {size}-byte head: {status:?}");
    }
    for size in [64 * KIB + 1, 65 * KIB, 100 * KIB, 119 * KIB, 200 * KIB] {
        assert_eq!(head_of(&app, size).await, Some(431), "a {size}-byte head");
    }
    assert!(app.healthy().await);
}

// ---- Content-Length with Transfer-Encoding ------------------------------------

#[tokio::test]
async fn a_request_with_content_length_and_transfer_encoding_is_answered_and_its_connection_closed() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Framed Twice"}).to_string();
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    // What a proxy framing by the length would take for a next request.
    let smuggled = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    for framing in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
    ] {
        let request = format!(
            "POST /api/v1/district HTTP/1.1\r\nHost: t\r\nX-User-ID: {ADMIN}\r\n\
             Content-Type: application/json\r\n{framing}\r\n\r\n{chunked}{smuggled}"
        );
        let mut stream = connect(app.addr).await;
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut answer = Vec::new();
        // Read to the close; a reset after the answer (the smuggled bytes
        // left unread) ends it too.
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
                Err(_) => panic!("{framing:?}: the connection was kept open"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            }
        }
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert_eq!(answer.matches("http/1.1 ").count(), 1, "{framing:?}: {answer}");
        assert!(answer.starts_with("http/1.1 201"), "{framing:?}: {answer}");
        assert!(answer.contains("connection: close"), "{framing:?}: {answer}");
    }
}
