//! Sign-up and sign-in: the decisions of the auth service.

use std::sync::{Arc, LazyLock};

use sqlx::PgPool;
use ticketing_common::{error::is_unique_violation, session::Session};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    app::Auth,
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
    /// Too many failed sign-ins for this e-mail lately, whether or not an account has it.
    #[error("Too many failed sign-ins for this e-mail; try again later")]
    TooManyFailures { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// At most one password hash per core at a time. argon2id takes ~19 MiB and ~20 ms of CPU per
/// hash; unbounded, a sign-up storm would queue hundreds of blocking threads and gigabytes.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, usize::from),
    ))
});

/// Runs password work on the blocking pool, bounded by [`HASHING`]. The permit travels into
/// the blocking closure and is released when the hash is done, not when the request's future
/// is: a client that hangs up mid-hash cannot start more hashes than there are cores.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let permit = HASHING.clone().acquire_owned().await?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?)
}

/// Registers a user. The unique index decides a race between two sign-ups with one e-mail.
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn sign_up(auth: &Auth, email: Email, password: Password) -> Result<User, SignUpError> {
    let hash = hashing(move || password::hash(&password)).await??;
    let id = Uuid::now_v7();
    let mut conn = auth.pool.acquire().await.map_err(anyhow::Error::from)?;
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
/// With `failed_signins`, each attempt counts against the e-mail's budget first (so parallel
/// guesses cannot overtake the count) and is given back if it succeeds; over budget, the
/// password is not even looked at.
#[tracing::instrument(skip_all)]
pub async fn sign_in(auth: &Auth, email: Email, password: String) -> Result<User, SignInError> {
    let held = match &auth.failed_signins {
        Some(limit) => {
            let attempt = limit
                .attempt(email.as_str())
                .await
                .map_err(|retry_after_secs| {
                    tracing::warn!("too many failed sign-ins for one e-mail");
                    SignInError::TooManyFailures { retry_after_secs }
                })?;
            Some((limit, attempt))
        }
        None => None,
    };
    let outcome = check_credentials(&auth.pool, email, password).await;
    // Only a wrong password counts: a success, or our own failure to check, is given back.
    if !matches!(outcome, Err(SignInError::InvalidCredentials))
        && let Some((limit, attempt)) = held
    {
        limit.give_back(attempt).await;
    }
    outcome
}

/// Ends a session on the server: every component refuses its token from now on; the user's
/// other sessions stay.
#[tracing::instrument(skip_all, fields(user_id = %session.user.id))]
pub async fn sign_out(auth: &Auth, session: &Session) {
    auth.keys.revoke(session).await;
    tracing::info!("signed out; session revoked");
}

async fn check_credentials(
    pool: &PgPool,
    email: Email,
    password: String,
) -> Result<User, SignInError> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_whose_caller_went_away_keeps_its_permit_until_it_ends() {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        // As many callers as cores start a slow hash, then hang up.
        let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..cores {
            let started = started.clone();
            let caller = tokio::spawn(hashing(move || {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(400));
            }));
            started_rx.recv().await.expect("the hash started");
            caller.abort();
        }

        // The hashes still run: no permit is free for another.
        assert_eq!(HASHING.available_permits(), 0);
        let next = tokio::time::timeout(Duration::from_millis(100), hashing(|| ())).await;
        assert!(
            next.is_err(),
            "a new hash started beside {cores} running ones"
        );
        // Once they end, work goes on.
        tokio::time::timeout(Duration::from_secs(5), hashing(|| ()))
            .await
            .expect("permits come back when the hashes end")
            .unwrap();
    }
}
