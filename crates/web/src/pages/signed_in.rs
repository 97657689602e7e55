//! Pages only a signed-in visitor may see or post to.
//!
//! A handler takes [`SignedIn`] instead of checking the session itself: without a session the
//! visitor is sent to sign in (`303` to `/signin?next=<page>`) and comes back to the page
//! they were on. A form posts to its own page (`/tickets/new`, `/tickets/{id}/edit`) or to an
//! action under it (`/orders/{id}/pay`); either way "the page" is the one showing the form.

use axum::{
    extract::FromRequestParts,
    http::{Method, request::Parts},
    response::{IntoResponse, Response},
};
use ticketing_common::session::{CurrentUser, SessionUser};

use super::{Nav, signin_redirect};
use crate::api::Visitor;

/// The last path segments that name an action under a page rather than a page.
const ACTIONS: [&str; 3] = ["pay", "cancel", "purchase"];

/// A signed-in visitor: who they are, what the layout shows, and what API calls forward.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub me: SessionUser,
    pub nav: Nav,
    pub visitor: Visitor,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(me) = user.0.clone() else {
            return Err(signin_redirect(page_of(&parts.method, parts.uri.path())));
        };
        let Ok(visitor) = Visitor::from_request_parts(parts, state).await;
        Ok(SignedIn {
            nav: Nav::of(&user),
            me,
            visitor,
        })
    }
}

impl SignedIn {
    /// As the extractor for anyone would have seen them.
    pub fn user(&self) -> CurrentUser {
        CurrentUser(Some(self.me.clone()))
    }
}

/// The page a request belongs to: itself, or for a posted action, the page above it.
fn page_of<'a>(method: &Method, path: &'a str) -> &'a str {
    match path.rsplit_once('/') {
        Some((page, action)) if method == Method::POST && ACTIONS.contains(&action) => page,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_action_belongs_to_the_page_above_it() {
        assert_eq!(page_of(&Method::POST, "/orders/1/pay"), "/orders/1");
        assert_eq!(page_of(&Method::POST, "/orders/1/cancel"), "/orders/1");
        assert_eq!(page_of(&Method::POST, "/tickets/1/purchase"), "/tickets/1");
    }

    #[test]
    fn pages_and_forms_posted_to_their_own_page_stay() {
        assert_eq!(page_of(&Method::GET, "/orders"), "/orders");
        assert_eq!(page_of(&Method::GET, "/orders/1"), "/orders/1");
        assert_eq!(page_of(&Method::POST, "/tickets/new"), "/tickets/new");
        assert_eq!(page_of(&Method::POST, "/tickets/1/edit"), "/tickets/1/edit");
        assert_eq!(page_of(&Method::GET, "/tickets/1/edit"), "/tickets/1/edit");
    }
}
