//! What a service hands to whoever runs it, and how it is run.
//!
//! A service library builds a [`Component`]: its routes (documented for OpenAPI), its
//! background tasks (listeners, relay, pollers; each already holding the shutdown token), and
//! its readiness checks. The binary, or a test, merges components, binds a socket and calls
//! [`serve`]; `up` passes every component, `serve <name>` one.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    http::{self, ReadyCheck},
    session::SessionKeys,
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

/// Serves the app on `listener` and runs its tasks until `shutdown`; then stops taking
/// requests, lets in-flight requests and tasks finish, and returns. A task that fails stops
/// the whole process (an orchestrator restarts it).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: CancellationToken,
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
    let server = axum::serve(
        listener,
        app.router
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    // In-flight requests get the drain timeout too; a stalled client cannot hold shutdown.
    let stop = shutdown.clone();
    let served = tokio::select! {
        served = server => served.context("HTTP server failed"),
        _ = async move {
            stop.cancelled().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => {
            tracing::warn!("requests still open {DRAIN_TIMEOUT:?} after the shutdown signal; closing them");
            Ok(())
        }
    };
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
    served?;
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
