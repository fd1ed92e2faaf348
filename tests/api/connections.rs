//! What one connection may hold, over raw sockets: how long it may stay
//! silent after an answer, how long its request body may take, how large its
//! request head may be, and when it must be closed after an answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::helpers::*;
use super::overload::{exchange, HEALTH};

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
