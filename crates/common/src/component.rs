//! What a service hands to whoever runs it, and how it is run.
//!
//! A service library builds a [`Component`]: its routes (documented for OpenAPI), its
//! background tasks (listeners, relay, pollers; each already holding the shutdown token), and
//! its readiness checks. The binary, or a test, merges components, binds a socket and calls
//! [`serve`]; `up` passes every component, `serve <name>` one.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::extract::{ConnectInfo, Request};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    bus::{listener::Subscription, parked::Parking},
    http::{self, ReadyCheck},
    session::SessionKeys,
    settings::HttpSettings,
};

type StartTask =
    Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// A long-running background task, started by whoever runs the component with the process's
/// shutdown token; it returns once the token is cancelled and its work is at a safe point.
pub struct Task {
    pub name: String,
    start: StartTask,
}

impl Task {
    pub fn new<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Task {
            name: name.into(),
            start: Box::new(move |shutdown| Box::pin(start(shutdown))),
        }
    }

    /// Starts the task's future.
    pub fn start(self, shutdown: CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> {
        (self.start)(shutdown)
    }
}

/// One service, ready to be served.
pub struct Component {
    pub name: &'static str,
    pub router: OpenApiRouter,
    pub tasks: Vec<Task>,
    pub checks: Vec<ReadyCheck>,
    /// The events it handles and where it parks what it cannot apply (`None`: it reads
    /// none); its listener tasks run these, and operators replay parked events through them.
    pub events: Option<Events>,
}

/// A service's event handling: its subscriptions and where it parks.
#[derive(Debug, Clone)]
pub struct Events {
    pub parking: Parking,
    pub subscriptions: Vec<Subscription>,
}

/// Components merged into one router plus the tasks to run beside it.
pub struct App {
    pub router: axum::Router,
    pub tasks: Vec<Task>,
}

/// Merges components and adds the operational routes.
pub fn compose(components: Vec<Component>, keys: Arc<SessionKeys>) -> App {
    let mut api = OpenApiRouter::new();
    let mut tasks = Vec::new();
    let mut checks = Vec::new();
    for component in components {
        api = api.merge(component.router);
        tasks.extend(component.tasks);
        checks.extend(component.checks);
    }
    let (router, openapi) = api.split_for_parts();
    App {
        router: http::finish(router, openapi, checks, keys),
        tasks,
    }
}

/// How long in-flight work may take to finish after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves the app on `listener` with the default [`HttpSettings`] (tests).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(listener, app, shutdown, &HttpSettings::default()).await
}

/// Serves the app on `listener` and runs its tasks until `shutdown`; then stops taking
/// requests, lets in-flight requests and tasks finish, and returns. A task that fails stops
/// the whole process (an orchestrator restarts it).
///
/// The server protects itself: a connection whose request headers do not arrive within the
/// header timeout (also the idle keep-alive timeout) is closed, a request not answered
/// within the request timeout gets a 503, and at most `http_max_connections` connections
/// are open at once.
pub async fn serve_with(
    listener: TcpListener,
    app: App,
    shutdown: CancellationToken,
    settings: &HttpSettings,
) -> anyhow::Result<()> {
    let mut set = JoinSet::new();
    for task in app.tasks {
        let name = task.name.clone();
        let stop = shutdown.clone();
        let future = task.start(shutdown.clone());
        set.spawn(async move {
            let result = future.await;
            if let Err(error) = &result {
                tracing::error!(task = %name, error = format!("{error:#}"), "background task failed; shutting down");
                stop.cancel();
            }
            result.with_context(|| format!("task {name} failed"))
        });
    }
    let request_timeout = Duration::from_secs(settings.http_request_timeout_seconds);
    let router = app
        .router
        .layer(axum::middleware::from_fn(move |request, next| {
            http::within(request_timeout, request, next)
        }));
    serve_connections(listener, router, shutdown.clone(), settings).await;
    shutdown.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => first_error = first_error.or(Some(error)),
                Err(error) => first_error = first_error.or(Some(anyhow::Error::new(error))),
            }
        }
        first_error
    })
    .await;
    match drained {
        Ok(None) => Ok(()),
        Ok(Some(error)) => Err(error),
        Err(_) => {
            tracing::warn!(
                "background tasks did not stop within {DRAIN_TIMEOUT:?}; exiting anyway"
            );
            Ok(())
        }
    }
}

/// Accepts connections until `shutdown`, each served by hyper with the header timeout, then
/// lets open connections finish their requests (for at most [`DRAIN_TIMEOUT`]).
async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    settings: &HttpSettings,
) {
    let connections = Arc::new(Semaphore::new(
        usize::try_from(settings.http_max_connections).unwrap_or(usize::MAX),
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.http_header_timeout_seconds))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        // A free place first: at the cap, clients wait in the accept queue.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("never closed"),
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
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
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
            "requests still open {DRAIN_TIMEOUT:?} after the shutdown signal; closing them"
        );
    }
}
