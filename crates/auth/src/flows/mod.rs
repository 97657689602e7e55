//! Sign-up and sign-in: the decisions of the auth service.

use sqlx::PgPool;
use ticketing_common::error::is_unique_violation;
use uuid::Uuid;

use crate::{
    domain::{Email, Password, password},
    store::users,
};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("Email in use")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown e-mail or wrong password: deliberately one case.
    #[error("Invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// At most one password hash per core at a time. argon2id takes ~19 MiB and ~20 ms of CPU per
/// hash; unbounded, a sign-up storm would queue hundreds of blocking threads and gigabytes.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
});

/// Runs password work on the blocking pool, bounded by [`HASHING`].
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Registers a user. The unique index decides a race between two sign-ups with one e-mail.
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn sign_up(pool: &PgPool, email: Email, password: Password) -> Result<User, SignUpError> {
    let hash = hashing(move || password::hash(&password)).await??;
    let id = Uuid::now_v7();
    let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?;
    match users::insert(&mut conn, id, email.as_str(), &hash).await {
        Ok(()) => {
            tracing::Span::current().record("user_id", tracing::field::display(id));
            tracing::info!("user signed up");
            Ok(User {
                id,
                email: email.to_string(),
            })
        }
        Err(e) if is_unique_violation(&e, Some("users_email_key")) => Err(SignUpError::EmailTaken),
        Err(e) => Err(anyhow::Error::new(e).context("cannot insert user").into()),
    }
}

/// Checks credentials. An unknown e-mail costs the same hashing work as a wrong password.
#[tracing::instrument(skip_all)]
pub async fn sign_in(pool: &PgPool, email: Email, password: String) -> Result<User, SignInError> {
    let mut conn = pool.acquire().await.map_err(anyhow::Error::from)?;
    let found = users::find_by_email(&mut conn, email.as_str())
        .await
        .map_err(anyhow::Error::from)?;
    drop(conn);
    let stored = found.as_ref().map(|user| user.password_hash.clone());
    let matches = hashing(move || match stored {
        Some(stored) => password::verify(&password, &stored),
        None => password::verify_dummy(&password),
    })
    .await?;
    match found {
        Some(user) if matches => Ok(User {
            id: user.id,
            email: user.email,
        }),
        _ => Err(SignInError::InvalidCredentials),
    }
}
