//! One PostgreSQL database per service, created on first start.
//!
//! In the all-in-one mode every service's database lives on the `DATABASE_URL` server under
//! `<namespace>_<service>`; in separate deployment `<SERVICE>_DATABASE_URL` names it directly.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    Connection, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};

use crate::secret::redact_url;

/// How long to wait for the server before saying it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where one service's database is.
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    /// The server URL as configured, for messages (rendered without its password).
    pub url: String,
    pub options: PgConnectOptions,
}

impl DatabaseTarget {
    /// `explicit` (a `<SERVICE>_DATABASE_URL`) when given, otherwise database `name` on the
    /// server of `server_url`.
    pub fn resolve(server_url: &str, explicit: Option<&str>, name: &str) -> anyhow::Result<Self> {
        let (url, options) = match explicit {
            Some(url) => (url, PgConnectOptions::from_str(url)),
            None => (
                server_url,
                PgConnectOptions::from_str(server_url).map(|o| o.database(name)),
            ),
        };
        let options =
            options.with_context(|| format!("invalid database URL {}", redact_url(url)))?;
        Ok(DatabaseTarget {
            url: redact_url(url),
            options,
        })
    }

    pub fn database(&self) -> &str {
        self.options.get_database().unwrap_or("postgres")
    }

    /// Creates the database if it does not exist. Safe to race: a concurrent creator wins and
    /// this call still succeeds.
    pub async fn create_if_missing(&self) -> anyhow::Result<()> {
        let name = self.database().to_owned();
        let admin = self.options.clone().database("postgres");
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&admin))
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {CONNECT_TIMEOUT:?}"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| unreachable_message(&self.url))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            match sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
            {
                Ok(_) => tracing::info!(database = %name, "created database"),
                // 42P04 duplicate_database, 23505 when two creators race on the catalog.
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
            }
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// Creates the database if needed and opens a pool on it.
    pub async fn connect(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        self.create_if_missing().await?;
        self.open(max_connections).await
    }

    /// Opens a pool on the database as it is, creating nothing; a database that does not
    /// exist is an error naming it.
    pub async fn open(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(self.options.clone())
            .await
            .with_context(|| format!("cannot open database {} on {}", self.database(), self.url))
    }
}

/// The one line a user sees when PostgreSQL is not there.
pub fn unreachable_message(url: &str) -> String {
    format!(
        "PostgreSQL is not reachable at {url}: start it (scripts/services.sh starts a local one) or set DATABASE_URL"
    )
}

/// Drops a database, for tests that made their own.
pub async fn drop_database(target: &DatabaseTarget) -> anyhow::Result<()> {
    let admin = target.options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&admin).await?;
    let statement = format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        target.database().replace('"', "\"\"")
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Opens one service's database: `explicit` (its `<SERVICE>_DATABASE_URL`) when given,
/// otherwise `<namespace>_<service>` on the `DATABASE_URL` server; created if missing.
pub async fn open_service(
    common: &crate::settings::CommonSettings,
    explicit: Option<&crate::Secret<String>>,
    service: &str,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    DatabaseTarget::resolve(
        common.database_url.expose(),
        explicit.map(|url| url.expose().as_str()),
        &common.namespace.database(service),
    )?
    .connect(common.database_pool_size.unwrap_or(max_connections))
    .await
}

/// Opens one service's database as it is (for tools that only read what a service left):
/// nothing is created or migrated, and a database that does not exist is an error.
pub async fn open_existing_service(
    common: &crate::settings::CommonSettings,
    explicit: Option<&crate::Secret<String>>,
    service: &str,
) -> anyhow::Result<PgPool> {
    DatabaseTarget::resolve(
        common.database_url.expose(),
        explicit.map(|url| url.expose().as_str()),
        &common.namespace.database(service),
    )?
    .open(2)
    .await
}

/// Takes the transaction-scoped lock under which `common`'s own tables (outbox, parked
/// events, operator actions) are made.
pub(crate) const SCHEMA_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('ticketing.outbox.schema'))";

/// Brings a service's database up to date: the outbox tables first when the service
/// publishes or consumes events, the operator actions table, then its own migrations.
pub async fn migrate_service(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
    service: &str,
    with_outbox: bool,
) -> anyhow::Result<()> {
    if with_outbox {
        crate::bus::outbox::install_schema(pool).await?;
    }
    // Replicas starting together run this at once, and concurrent `CREATE ... IF NOT
    // EXISTS` can still collide: the same advisory lock as the outbox schema serialises them.
    let mut tx = pool.begin().await?;
    sqlx::query(SCHEMA_LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(crate::admin::SCHEMA)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("cannot make the {service} database's operator actions table"))?;
    tx.commit().await?;
    migrator
        .run(pool)
        .await
        .with_context(|| format!("cannot migrate the {service} database"))
}

/// A statement whose answer is whether it changed exactly one row: an insert that met no
/// conflict (`ON CONFLICT DO NOTHING`), an update whose condition held (a version check, a
/// state it may leave).
pub trait ChangesOne {
    fn changed_one(self, conn: &mut PgConnection) -> impl Future<Output = sqlx::Result<bool>>;
}

impl<'q> ChangesOne for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    async fn changed_one(self, conn: &mut PgConnection) -> sqlx::Result<bool> {
        Ok(self.execute(conn).await?.rows_affected() == 1)
    }
}
