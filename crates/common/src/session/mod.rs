//! The session: a cookie holding a signed, expiring JWT (`{id, email, iat, exp}` plus the
//! session's own id, `sid`; HS256).
//!
//! Auth issues it; every service verifies it locally with the shared key, so auth is never on
//! the hot path. An altered, expired, foreign-key or revoked token counts as no session, and
//! so does a request carrying several `session` cookies that do not all name one valid
//! session. Sign-out revokes the one session ([`revocations`]); the user's others stay. The
//! keys reach the extractors through a request extension that [`crate::http`] installs.

pub mod operators;
pub mod revocations;

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, header, request::Parts},
};
use cookie::{Cookie, SameSite};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

pub use self::{operators::Operators, revocations::Revocations};
use crate::{error::ApiError, forwarded::ForwardingToken};

/// The name of the session cookie.
pub const COOKIE_NAME: &str = "session";

/// The minimum key length, in bytes, for HS256.
pub const MIN_KEY_BYTES: usize = 32;

/// The signed-in user, as `currentUser` shows it: exactly `{id, email, iat, exp}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionUser {
    pub id: Uuid,
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// What the token carries: the user and the session's id, which sign-out revokes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    id: Uuid,
    email: String,
    iat: i64,
    exp: i64,
    sid: Uuid,
}

/// One verified, unrevoked session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: SessionUser,
    /// The session's own id: one per sign-in.
    pub id: Uuid,
}

impl From<Claims> for Session {
    fn from(claims: Claims) -> Self {
        Session {
            id: claims.sid,
            user: SessionUser {
                id: claims.id,
                email: claims.email,
                iat: claims.iat,
                exp: claims.exp,
            },
        }
    }
}

/// Signs and verifies session tokens, writes the cookie, and (with [`Revocations`]) refuses
/// and records revoked sessions.
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: time::Duration,
    secure: bool,
    revocations: Option<Arc<Revocations>>,
    forwarding: ForwardingToken,
    operators: Operators,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Keys from a secret of at least [`MIN_KEY_BYTES`] bytes. `secure` adds the cookie's
    /// `Secure` attribute.
    pub fn new(secret: &[u8], secure: bool) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "JWT_KEY must be at least {MIN_KEY_BYTES} bytes (it has {})",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat"]);
        Ok(SessionKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime: time::Duration::seconds(crate::settings::DEFAULT_SESSION_TTL_SECONDS as i64),
            secure,
            revocations: None,
            forwarding: ForwardingToken::derive(secret),
            operators: Operators::default(),
        })
    }

    /// Keys from a fresh random secret, for development when no `JWT_KEY` is configured.
    pub fn random(secure: bool) -> Self {
        let mut secret = [0u8; 64];
        rand::rng().fill_bytes(&mut secret);
        SessionKeys::new(&secret, secure).expect("64 random bytes are a valid key")
    }

    /// Changes how long new sessions last (`SESSION_TTL_SECONDS`; tests use a short one to
    /// see expiry).
    pub fn with_lifetime(mut self, lifetime: time::Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Checks every session against the revoked-session store, and lets sign-out revoke.
    /// Without one, nothing is ever revoked (unit tests of services that never sign out).
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Names the operators (`ADMIN_EMAILS`); without it nobody is one.
    pub fn with_operators(mut self, operators: Operators) -> Self {
        self.operators = operators;
        self
    }

    /// Whether a signed-in user is an operator.
    pub fn is_operator(&self, user: &SessionUser) -> bool {
        self.operators.includes(&user.email)
    }

    /// The token our web pages show the API when they name their visitor (derived from the
    /// key, so every component of a deployment agrees on it without another secret).
    pub fn forwarding_token(&self) -> &ForwardingToken {
        &self.forwarding
    }

    /// The revoked-session store, if any.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.revocations.as_ref()
    }

    /// Signs a token for a user: a new session.
    pub fn issue(&self, id: Uuid, email: &str) -> anyhow::Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            id,
            email: email.to_owned(),
            iat: now,
            exp: now + self.lifetime.whole_seconds(),
            sid: Uuid::new_v4(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    fn decode(&self, token: &str) -> Option<Session> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.into())
    }

    /// The user a token names, if it is ours, unaltered and unexpired (revocation is not
    /// looked at: see [`SessionKeys::session`]).
    pub fn verify(&self, token: &str) -> Option<SessionUser> {
        self.decode(token).map(|session| session.user)
    }

    /// The `Set-Cookie` value that starts a session.
    pub fn cookie(&self, token: &str) -> HeaderValue {
        let cookie = self
            .base_cookie(token.to_owned())
            .max_age(cookie::time::Duration::seconds(
                self.lifetime.whole_seconds(),
            ))
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a JWT is a valid header value")
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn clear_cookie(&self) -> HeaderValue {
        let cookie = self
            .base_cookie(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("valid header value")
    }

    fn base_cookie(&self, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((COOKIE_NAME, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
    }

    /// The session a request's cookies name: every `session` cookie must verify and name
    /// the same session (one that fails is never skipped in favour of another), and that
    /// session must not be revoked.
    pub async fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let session = self.sole_session(headers)?;
        if let Some(revocations) = &self.revocations
            && revocations.is_revoked(session.id, session.user.exp).await
        {
            return None;
        }
        Some(session)
    }

    /// The one session all the `session` cookies agree on, signatures and expiry checked.
    fn sole_session(&self, headers: &HeaderMap) -> Option<Session> {
        let mut found: Option<Session> = None;
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == COOKIE_NAME);
        for cookie in cookies {
            let session = self.decode(cookie.value())?;
            match &found {
                Some(first) if first.id != session.id => return None,
                Some(_) => {}
                None => found = Some(session),
            }
        }
        found
    }

    /// Ends a session on the server: every service refuses its token from now on. A no-op
    /// without a revoked-session store.
    pub async fn revoke(&self, session: &Session) {
        if let Some(revocations) = &self.revocations {
            revocations.revoke(session.id, session.user.exp).await;
        }
    }
}

fn keys(parts: &Parts) -> Result<&Arc<SessionKeys>, ApiError> {
    parts.extensions.get::<Arc<SessionKeys>>().ok_or_else(|| {
        ApiError::Unexpected(anyhow::anyhow!(
            "session keys are not installed on this router"
        ))
    })
}

/// The signed-in user, if any. Never rejects (except on a misconfigured router).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Option<SessionUser>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = keys(parts)?.session(&parts.headers).await;
        Ok(CurrentUser(session.map(|session| session.user)))
    }
}

/// The signed-in user; rejects with 401 in the contract's body when there is none.
#[derive(Debug, Clone)]
pub struct RequireAuth(pub SessionUser);

impl<S: Send + Sync> FromRequestParts<S> for RequireAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        keys(parts)?
            .session(&parts.headers)
            .await
            .map(|session| RequireAuth(session.user))
            .ok_or(ApiError::Unauthorized)
    }
}

/// A signed-in caller and whether they are an operator: for routes open to an owner and to
/// operators (`GET /api/orders/:id`). Rejects with 401 when there is no session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: SessionUser,
    pub operator: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let keys = keys(parts)?;
        let session = keys
            .session(&parts.headers)
            .await
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            operator: keys.is_operator(&session.user),
            user: session.user,
        })
    }
}

/// A signed-in operator: 401 without a session, 403 for anyone not in `ADMIN_EMAILS`, before
/// anything else about the request is looked at.
#[derive(Debug, Clone)]
pub struct RequireOperator(pub SessionUser);

impl<S: Send + Sync> FromRequestParts<S> for RequireOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller {
                user,
                operator: true,
            } => Ok(RequireOperator(user)),
            Caller { .. } => Err(ApiError::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn short_keys_are_refused() {
        assert!(SessionKeys::new(b"short", true).is_err());
    }

    #[test]
    fn a_token_round_trips_and_a_foreign_or_altered_one_does_not() {
        let keys = SessionKeys::new(KEY, true).unwrap();
        let id = Uuid::now_v7();
        let token = keys.issue(id, "a@b.c").unwrap();
        let user = keys.verify(&token).unwrap();
        assert_eq!((user.id, user.email.as_str()), (id, "a@b.c"));
        assert!(user.exp > user.iat);

        let other = SessionKeys::new(b"another key that is long enough!!", true).unwrap();
        assert!(other.verify(&token).is_none());

        let mut altered = token.clone().into_bytes();
        let i = altered.len() - 5;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert!(
            keys.verify(std::str::from_utf8(&altered).unwrap())
                .is_none()
        );
    }

    #[test]
    fn expired_tokens_and_other_algorithms_are_refused() {
        let keys = SessionKeys::new(KEY, true)
            .unwrap()
            .with_lifetime(time::Duration::seconds(-10));
        let token = keys.issue(Uuid::now_v7(), "a@b.c").unwrap();
        assert!(keys.verify(&token).is_none());

        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            id: Uuid::now_v7(),
            email: "a@b.c".into(),
            iat: now,
            exp: now + 60,
            sid: Uuid::new_v4(),
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(keys.verify(&hs512).is_none());
    }

    #[test]
    fn a_token_without_a_session_id_is_refused() {
        let keys = SessionKeys::new(KEY, true).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let old_shape = SessionUser {
            id: Uuid::now_v7(),
            email: "a@b.c".into(),
            iat: now,
            exp: now + 60,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &old_shape,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(keys.verify(&token).is_none());
    }

    fn cookie_headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[tokio::test]
    async fn several_session_cookies_count_only_when_all_name_one_valid_session() {
        let keys = SessionKeys::new(KEY, true).unwrap();
        let user = Uuid::now_v7();
        let good = keys.issue(user, "a@b.c").unwrap();
        let other = keys.issue(user, "a@b.c").unwrap();
        let foreign = SessionKeys::new(b"another key that is long enough!!", true)
            .unwrap()
            .issue(user, "a@b.c")
            .unwrap();

        let one = cookie_headers(&[&format!("theme=dark; session={good}")]);
        assert_eq!(keys.session(&one).await.unwrap().user.id, user);
        let twice = cookie_headers(&[&format!("session={good}"), &format!("session={good}")]);
        assert!(
            keys.session(&twice).await.is_some(),
            "the same session twice"
        );

        for cookies in [
            vec![format!("session={foreign}; session={good}")],
            vec![format!("session={good}"), format!("session={foreign}")],
            vec![format!("session=; session={good}")],
            vec![format!("session={good}; session={other}")],
        ] {
            let refs: Vec<&str> = cookies.iter().map(String::as_str).collect();
            assert!(
                keys.session(&cookie_headers(&refs)).await.is_none(),
                "{cookies:?} was believed"
            );
        }
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_unless_turned_off() {
        let secure = SessionKeys::new(KEY, true).unwrap().cookie("tok");
        let secure = secure.to_str().unwrap();
        for attribute in [
            "session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=",
        ] {
            assert!(secure.contains(attribute), "{secure} lacks {attribute}");
        }
        let plain = SessionKeys::new(KEY, false).unwrap().cookie("tok");
        assert!(!plain.to_str().unwrap().contains("Secure"));
        let cleared = SessionKeys::new(KEY, true).unwrap().clear_cookie();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }
}
