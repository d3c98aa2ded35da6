//! The listener's limits on raw TCP connections: a header-read timeout that closes idle and
//! half-sent connections, and a cap on connections served at once.

use std::time::{Duration, Instant};

use lrlab::app::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{spawn_app_configured, TestApp};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.app.addr).await.expect("connect")
}

fn health_request(app: &TestApp) -> String {
    format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.app.addr)
}

/// Reads until the response's headers are complete; returns its status line.
async fn read_status_line(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await.expect("read");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    text.lines().next().unwrap_or_default().to_string()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Instant) {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the connection open for {within:?}"));
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

#[tokio::test]
async fn connections_that_do_not_finish_their_headers_are_closed_after_the_timeout() {
    let timeout = Duration::from_secs(1);
    let app = spawn_app_configured(0, |config| {
        config.limits = ConnectionLimits {
            header_read_timeout: timeout,
            ..ConnectionLimits::default()
        };
    })
    .await;
    let margin = Duration::from_secs(10);

    // Silent from the start.
    let mut silent = connect(&app).await;
    let opened = Instant::now();
    // Half a request line and header.
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0")
        .await
        .unwrap();
    let half_opened = Instant::now();
    // Idle after one request (keep-alive).
    let mut idle = connect(&app).await;
    idle.write_all(health_request(&app).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_status_line(&mut idle).await, "HTTP/1.1 200 OK");
    let idle_since = Instant::now();

    for (what, stream, since) in [
        ("silent", &mut silent, opened),
        ("half-sent", &mut half, half_opened),
        ("idle", &mut idle, idle_since),
    ] {
        let (sent, closed) = read_until_closed(stream, timeout + margin).await;
        let held = closed - since;
        assert!(held >= timeout / 2, "{what}: closed after only {held:?}");
        // Nothing (or a 408) is sent, never a response to half a request.
        assert!(
            sent.is_empty() || sent.starts_with("HTTP/1.1 408"),
            "{what}: {sent:?}"
        );
    }
    // The server still serves new connections.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn with_max_connections_two_a_third_connection_waits_until_one_closes() {
    let app = spawn_app_configured(0, |config| {
        config.limits = ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        };
    })
    .await;
    let request = health_request(&app);
    // Two connections served and kept open (keep-alive).
    let mut first = connect(&app).await;
    first.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_status_line(&mut first).await, "HTTP/1.1 200 OK");
    let mut second = connect(&app).await;
    second.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_status_line(&mut second).await, "HTTP/1.1 200 OK");

    // The third is connected by the kernel but not served while both are open. (A server
    // without the cap answers in milliseconds; this can only pass wrongly on a stalled one.)
    let mut third = connect(&app).await;
    third.write_all(request.as_bytes()).await.unwrap();
    let early =
        tokio::time::timeout(Duration::from_millis(500), read_status_line(&mut third)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(10), read_status_line(&mut third))
        .await
        .expect("the third connection should be served once one closes");
    assert_eq!(served, "HTTP/1.1 200 OK");
    drop(second);
    drop(third);
    app.shutdown().await;
}
