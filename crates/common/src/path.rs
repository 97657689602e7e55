//! Ids in paths. axum's own `Path` rejects a segment that is not valid UTF-8 (`%FF`) with a
//! plain-text 400; an id that cannot be read names nothing, so it is the contract's 404 in
//! its JSON body, which the handler words for its resource.

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};
use uuid::Uuid;

/// The one path parameter of a route, as an id: `None` when it is not one (never a rejection).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        Ok(PathId(raw.and_then(|Path(raw)| Uuid::parse_str(&raw).ok())))
    }
}
