//! Limits on the endpoint's connections: at most [`MAX_CONNECTIONS`] at
//! once, and none may sit more than [`IDLE_TIMEOUT`] without a byte moving
//! either way.
//!
//! axum's own server has neither (hyper enforces header timeouts only with
//! a timer, which `axum::serve` does not set), so a client that connects
//! and sends nothing, or stops half-way through a request, would hold a
//! connection and its task for ever — and delay shutdown. The limits live
//! in the listener and its streams, below HTTP, so they also cover idle
//! keep-alive connections.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may go without reading or writing a byte.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP listener whose connections count against a limit and time out
/// when idle.
pub struct GuardedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl GuardedListener {
    pub fn new(listener: TcpListener, max_connections: usize, idle: Duration) -> GuardedListener {
        GuardedListener {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            idle,
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // axum's accept retries (with a pause) on errors such as EMFILE.
        let (stream, peer) = axum::serve::Listener::accept(&mut self.listener).await;
        let stream = GuardedStream {
            stream,
            _slot: slot,
            idle: self.idle,
            read_deadline: None,
            write_deadline: None,
        };
        (stream, peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection holding one slot until dropped; a read or write that
/// waits longer than the idle timeout fails with `TimedOut`.
pub struct GuardedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    read_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
}

/// Turns a pending I/O poll into a timeout once `deadline` (started at the
/// first pending poll) passes; any progress clears it.
fn with_deadline<T>(
    polled: Poll<io::Result<T>>,
    deadline: &mut Option<Pin<Box<Sleep>>>,
    idle: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    if polled.is_ready() {
        *deadline = None;
        return polled;
    }
    let timer = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
    match timer.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "HTTP connection idle for too long",
        ))),
        Poll::Pending => Poll::Pending,
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        with_deadline(polled, &mut this.read_deadline, this.idle, cx)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        with_deadline(polled, &mut this.write_deadline, this.idle, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        with_deadline(polled, &mut this.write_deadline, this.idle, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Instant;

    /// Serves a one-route app on a guarded listener; returns its port.
    fn serve(runtime: &tokio::runtime::Runtime, max: usize, idle: Duration) -> u16 {
        runtime.block_on(async {
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = tcp.local_addr().unwrap().port();
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
            tokio::spawn(async move {
                axum::serve(GuardedListener::new(tcp, max, idle), app)
                    .await
                    .unwrap()
            });
            port
        })
    }

    fn get(port: u16) -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }

    #[test]
    fn a_silent_client_is_disconnected_and_others_are_served() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let port = serve(&runtime, 1, Duration::from_millis(300));
        let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Half a request, then nothing.
        silent.write_all(b"GET / HT").unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = silent.read_to_end(&mut rest);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
            "closed after {waited:?}"
        );
        // The only slot is free again.
        assert!(get(port).ends_with("hello"));
    }

    #[test]
    fn connections_beyond_the_limit_wait_for_a_slot() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let port = serve(&runtime, 1, Duration::from_millis(500));
        let holder = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        // Answered only once the holder's slot times out.
        assert!(get(port).ends_with("hello"));
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(holder);
    }
}
