//! Raw HTTP/1.1 over a plain socket, for what a client library will not send
//! or would tidy up: no Content-Length, chunked or lying framing, odd methods
//! and heads, idle and slow connections. Shared by `bad_input`, `hostile` and
//! `overload`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long `send` waits for the server to answer and close.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// One answer as it came off the wire.
pub struct Reply {
    pub status: u16,
    /// The status line and the headers, lowercased.
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// How `send` ends its side of the connection after writing.
#[derive(Clone, Copy)]
pub enum After {
    /// Keep the writing side open: the request says `Connection: close`, and the
    /// server closes once it has answered.
    KeepOpen,
    /// Half-close at once (FIN): nothing more will come.
    HalfClose,
}

/// A request's text: the request line, one line per header, a blank line,
/// then `body` as it is (no Content-Length is added).
pub fn request(method: &str, path: &str, headers: &[&str], body: &str) -> String {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Sends `bytes` on a fresh connection and reads until the server closes it:
/// the final answer (interim 1xx answers, e.g. to `Expect: 100-continue`, are
/// skipped), or None when the server closed without answering.
pub async fn send(addr: SocketAddr, bytes: &[u8], after: After) -> Option<Reply> {
    let mut stream = connect(addr).await;
    // The server may answer and close before reading everything: not an error.
    let _ = stream.write_all(bytes).await;
    if let After::HalfClose = after {
        let _ = stream.shutdown().await;
    }
    let mut out = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "no answer and no close within {ANSWER_WITHIN:?}");
    final_answer(&out)
}

/// Sends `bytes` on a fresh connection and hangs up without reading.
pub async fn send_and_hang_up(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = connect(addr).await;
    stream.write_all(bytes).await.unwrap_or_else(|e| panic!("write: {e}"));
}

/// The last non-1xx answer in what a server wrote before closing.
fn final_answer(out: &[u8]) -> Option<Reply> {
    let mut at = 0;
    loop {
        let head_end = out[at..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(out.len(), |i| at + i + 4);
        let head = String::from_utf8_lossy(&out[at..head_end]).to_ascii_lowercase();
        let status: u16 = head.strip_prefix("http/1.1 ")?.get(..3)?.parse().ok()?;
        if (100..200).contains(&status) {
            at = head_end;
            continue;
        }
        return Some(Reply {
            status,
            head,
            body: out[head_end..].to_vec(),
        });
    }
}

/// One exchange on an open (kept-alive) connection: writes `request`, reads
/// the head and then as many body bytes as its Content-Length says.
pub async fn exchange(stream: &mut TcpStream, request: &str) -> std::io::Result<Reply> {
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Reply {
        status,
        head,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// Waits until the server closes `stream` (EOF or reset); how long it took.
pub async fn closed_by_server(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}
