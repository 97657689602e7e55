//! What a service hands to whoever runs it, and how it is run.
//!
//! A service library builds a [`Component`]: its routes (documented for OpenAPI), its
//! background tasks (listeners, relay, pollers; each already holding the shutdown token), and
//! its readiness checks. The binary, or a test, merges components, binds a socket and calls
//! [`serve`]; `up` passes every component, `serve <name>` one.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    admin::{self, ActionLog, Operations},
    bus::{
        Bus,
        listener::{self, Subscription},
        outbox,
        parked::Parking,
    },
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

impl Component {
    /// A service that owns a PostgreSQL database and speaks through events: its routes, its
    /// outbox relay, a listener per subscription (parking what it cannot apply in its own
    /// database), its operators' routes under `prefix` (see [`Component::with_operations`]),
    /// and readiness of its database and of NATS. The service adds its own tasks and checks
    /// to what this returns.
    pub fn with_database(
        name: &'static str,
        prefix: &str,
        router: OpenApiRouter,
        pool: &sqlx::PgPool,
        bus: &Bus,
        subscriptions: Vec<Subscription>,
    ) -> Component {
        let relay = outbox::Relay::new(pool.clone(), bus.clone(), name);
        let events = Events {
            parking: Parking::Postgres(pool.clone()),
            subscriptions,
        };
        let mut tasks = vec![Task::new(format!("{name}-outbox-relay"), move |stop| {
            relay.run(stop)
        })];
        tasks.extend(events.tasks(bus, name));
        Component {
            name,
            router,
            tasks,
            checks: vec![
                ReadyCheck::postgres(format!("postgres:{name}"), pool.clone()),
                ReadyCheck::nats(bus.clone()),
            ],
            events: Some(events),
        }
        .with_operations(
            prefix,
            Some(bus),
            Some(pool.clone()),
            ActionLog::Postgres(pool.clone()),
        )
    }
}

impl Component {
    /// Adds the operators' routes under `prefix` (`/api/orders/admin/...`, see [`admin`]),
    /// over the component's events; `outbox` is its database when it has an outbox, `actions`
    /// where operator actions are recorded.
    pub fn with_operations(
        mut self,
        prefix: &str,
        bus: Option<&Bus>,
        outbox: Option<sqlx::PgPool>,
        actions: ActionLog,
    ) -> Component {
        let (parking, subscriptions) = match &self.events {
            Some(events) => (Some(events.parking.clone()), events.subscriptions.clone()),
            None => (None, Vec::new()),
        };
        let operations = Operations {
            service: self.name,
            bus: bus.cloned(),
            outbox,
            parking,
            subscriptions,
            actions,
        };
        self.router = self.router.merge(admin::routes(prefix, operations));
        self
    }
}

/// A service's event handling: its subscriptions and where it parks.
#[derive(Debug, Clone)]
pub struct Events {
    pub parking: Parking,
    pub subscriptions: Vec<Subscription>,
}

impl Events {
    /// The tasks that run the subscriptions, one per subject (`<service>-<subject>`).
    pub fn tasks(&self, bus: &Bus, service: &str) -> Vec<Task> {
        listener::tasks(bus, service, &self.parking, &self.subscriptions)
    }
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

/// How long background tasks may take to stop after the shutdown signal.
const DRAIN_TIMEOUT: Duration = crate::server::DRAIN_TIMEOUT;

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
    crate::server::serve_connections(listener, app.router, shutdown.clone(), settings).await;
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
