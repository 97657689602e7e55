//! Sign-up, sign-in, sign-out and the current user.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header::SET_COOKIE},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ticketing_common::{
    ApiError, CurrentUser, Json,
    error::{ErrorBody, ErrorItem},
    session::SessionUser,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::Auth,
    domain::{Email, Password},
    flows::{self, SignInError, SignUpError, User},
};

/// E-mail and password, for sign-up and sign-in. Its `Debug` never shows the password.
#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// Stored lower-cased.
    #[schema(required = true, nullable = false, format = Email, max_length = 254, example = "ann@example.com")]
    pub email: Option<String>,
    /// 4–20 characters (sign-up); any non-empty password for sign-in.
    #[schema(
        required = true,
        nullable = false,
        min_length = 4,
        max_length = 20,
        example = "s3cret"
    )]
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        UserBody {
            id: user.id,
            email: user.email,
        }
    }
}

/// `{"currentUser": …}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUserBody {
    pub current_user: Option<SessionUser>,
}

fn check_email(raw: Option<&str>, errors: &mut Vec<ErrorItem>) -> Option<Email> {
    Email::parse(raw.unwrap_or_default())
        .map_err(|message| errors.push(ErrorItem::field("email", message)))
        .ok()
}

/// Starts a session for `user` and answers with it.
fn signed_in(
    auth: &Auth,
    status: StatusCode,
    user: User,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let token = auth.keys.issue(user.id, &user.email)?;
    Ok((
        status,
        [(SET_COOKIE, auth.keys.cookie(&token))],
        Json(UserBody::from(user)),
    ))
}

/// Registers a user and starts their session.
#[utoipa::path(post, path = "/api/users/signup", tag = "users", request_body = Credentials,
    responses(
        (status = 201, description = "Signed up; the session cookie is set", body = UserBody),
        (status = 400, description = "Invalid e-mail or password", body = ErrorBody),
        (status = 409, description = "E-mail already registered", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn signup(
    State(auth): State<Auth>,
    Json(body): Json<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = Vec::new();
    let email = check_email(body.email.as_deref(), &mut errors);
    let password = Password::parse(body.password.as_deref().unwrap_or_default())
        .map_err(|message| errors.push(ErrorItem::field("password", message)))
        .ok();
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    let user = flows::sign_up(&auth, email, password)
        .await
        .map_err(|e| match e {
            SignUpError::EmailTaken => ApiError::Conflict("Email in use".into()),
            SignUpError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    signed_in(&auth, StatusCode::CREATED, user)
}

/// Checks credentials and starts a session.
#[utoipa::path(post, path = "/api/users/signin", tag = "users", request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = UserBody),
        (status = 400, description = "Invalid input, or unknown e-mail or wrong password (one message for both)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address, or too many failed sign-ins for this e-mail in the last minute; see Retry-After", body = ErrorBody),
    ))]
pub async fn signin(
    State(auth): State<Auth>,
    Json(body): Json<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = Vec::new();
    let email = check_email(body.email.as_deref(), &mut errors);
    let password = match body.password {
        Some(password) if !password.is_empty() => Some(password),
        _ => {
            errors.push(ErrorItem::field("password", "You must supply a password"));
            None
        }
    };
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    let user = flows::sign_in(&auth, email, password)
        .await
        .map_err(|e| match e {
            SignInError::InvalidCredentials => ApiError::BadRequest("Invalid credentials".into()),
            SignInError::TooManyFailures { retry_after_secs } => {
                ApiError::TooManyRequests { retry_after_secs }
            }
            SignInError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    signed_in(&auth, StatusCode::OK, user)
}

/// Ends the session, if any: the cookie is expired and the session revoked on the server,
/// so a copy of the cookie is refused by every service from now on (the user's other
/// sessions stay).
#[utoipa::path(post, path = "/api/users/signout", tag = "users",
    responses((status = 200, description = "Signed out; the session cookie is expired and the session revoked")))]
pub async fn signout(State(auth): State<Auth>, headers: HeaderMap) -> impl IntoResponse {
    if let Some(session) = auth.keys.session(&headers).await {
        flows::sign_out(&auth, &session).await;
    }
    ([(SET_COOKIE, auth.keys.clear_cookie())], Json(json!({})))
}

/// The signed-in user, or `null`.
#[utoipa::path(get, path = "/api/users/currentuser", tag = "users",
    responses((status = 200, body = CurrentUserBody)))]
pub async fn current_user(CurrentUser(user): CurrentUser) -> Json<CurrentUserBody> {
    Json(CurrentUserBody { current_user: user })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = Credentials {
            email: Some("ann@example.com".into()),
            password: Some("hunter2-secret".into()),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("ann@example.com"), "{shown}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
    }
}
