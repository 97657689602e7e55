//! The HTTP server loop every process runs: hyper's HTTP/1 connections with a timer, so that
//! a client cannot hold the process with slow or idle connections.
//!
//! - A connection whose request headers have not arrived within the header timeout is
//!   closed; the same timer runs while a kept-alive connection waits for its next request.
//! - A write blocked for longer than the request timeout (a client that does not read its
//!   answers) closes the connection.
//! - Every request carries its [`RequestDeadline`]; [`crate::http::observe`] answers 503 (or
//!   408 while the request's own body is still arriving) once it passes.
//! - At most `http_max_connections` connections are open; further clients wait in the
//!   kernel's accept queue.
//! - On shutdown: stop accepting, let open requests finish for at most the drain timeout,
//!   then close what is left.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::Semaphore,
    task::JoinSet,
    time::Sleep,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::settings::HttpSettings;

/// How long in-flight requests may take to finish after the shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The time a request has to be answered in, set on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Duration);

/// Accepts connections until `shutdown`, serves each until it ends, then drains.
pub async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    settings: &HttpSettings,
) {
    let places = Arc::new(Semaphore::new(
        usize::try_from(settings.http_max_connections).unwrap_or(usize::MAX),
    ));
    let request_timeout = Duration::from_secs(settings.http_request_timeout_seconds);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.http_header_timeout_seconds))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        // Finished connections leave the set as we go.
        while connections.try_join_next().is_some() {}
        // A free place first: at the cap, clients wait in the accept queue.
        let permit = tokio::select! {
            permit = places.clone().acquire_owned() => permit.expect("never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
                .extensions_mut()
                .insert(RequestDeadline(request_timeout));
            router.clone().oneshot(request)
        });
        let io = TokioIo::new(WriteTimeout::new(stream, request_timeout));
        let connection = graceful.watch(http.serve_connection(io, service));
        connections.spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts, resets and malformed requests: the client's business.
                tracing::debug!(%error, %peer, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    // In-flight requests get the drain timeout; a stalled client cannot hold shutdown.
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "requests still open {DRAIN_TIMEOUT:?} after the shutdown signal; closing them"
        );
    }
    connections.shutdown().await;
}

/// A socket whose writes fail once one has been blocked for longer than `timeout`: a client
/// that stops reading its answers loses its connection instead of holding it for ever.
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write is blocked.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            blocked: None,
        }
    }

    /// What to answer for a write that is not ready: still waiting, or given up.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client has not read for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.blocked = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}
