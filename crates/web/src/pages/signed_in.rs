//! Pages only a signed-in visitor may see or post to.
//!
//! A handler takes [`SignedIn`] instead of checking the session itself: without a session the
//! visitor is sent to sign in (`303` to `/signin?next=<page>`) and comes back to the page
//! they were on: the page itself, or for a form, the page that showed it (its `Referer`,
//! which our pages send to ourselves), since a form may post to an action under its page
//! (`/orders/{id}/pay`) that has nothing to show.
//!
//! It also says whether the visitor is an operator (`ADMIN_EMAILS`, read from the session keys
//! every component shares), so a page can offer operators' controls; the API still decides
//! whether an operator's request goes through.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{Method, request::Parts},
    response::{IntoResponse, Response},
};
use ticketing_common::session::{CurrentUser, SessionKeys, SessionUser};

use super::{Nav, flash::Flash, signin_redirect};
use crate::{api::Visitor, csrf::referring_page};

/// A signed-in visitor: who they are, what the layout shows, and what API calls forward.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub me: SessionUser,
    pub nav: Nav,
    pub visitor: Visitor,
    /// Named in `ADMIN_EMAILS`: the pages show the operators' controls (a refund).
    pub operator: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(me) = user.0.clone() else {
            return Err(signin_redirect(page_of(parts)));
        };
        let Ok(visitor) = Visitor::from_request_parts(parts, state).await;
        // `CurrentUser` found the keys, or it would have refused the request.
        let operator = parts
            .extensions
            .get::<Arc<SessionKeys>>()
            .is_some_and(|keys| keys.is_operator(&me));
        Ok(SignedIn {
            nav: Nav {
                email: Some(me.email.clone()),
                operator,
                flash: parts.extensions.get::<Flash>().cloned(),
            },
            me,
            visitor,
            operator,
        })
    }
}

impl SignedIn {
    /// As the extractor for anyone would have seen them.
    pub fn user(&self) -> CurrentUser {
        CurrentUser(Some(self.me.clone()))
    }
}

/// The page a request belongs to: itself, or for a form, the page that showed it.
fn page_of(parts: &Parts) -> &str {
    let form_from = (parts.method == Method::POST)
        .then(|| referring_page(&parts.headers))
        .flatten();
    form_from.unwrap_or(parts.uri.path())
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, header};

    use super::*;

    fn parts(method: Method, path: &str, referer: Option<&str>) -> Parts {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "shop.example");
        if let Some(referer) = referer {
            request = request.header(header::REFERER, referer);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_form_belongs_to_the_page_that_showed_it() {
        let paid = parts(
            Method::POST,
            "/orders/1/pay",
            Some("https://shop.example/orders/1?paid=1"),
        );
        assert_eq!(page_of(&paid), "/orders/1");
        let sold = parts(
            Method::POST,
            "/tickets/new",
            Some("http://shop.example/tickets/new"),
        );
        assert_eq!(page_of(&sold), "/tickets/new");
    }

    #[test]
    fn a_page_is_its_own_and_a_referer_from_elsewhere_counts_for_nothing() {
        let page = parts(Method::GET, "/orders/1", Some("https://shop.example/"));
        assert_eq!(page_of(&page), "/orders/1");
        let elsewhere = parts(
            Method::POST,
            "/tickets/1/purchase",
            Some("https://evil.example/orders"),
        );
        assert_eq!(page_of(&elsewhere), "/tickets/1/purchase");
        let nowhere = parts(Method::POST, "/tickets/1/edit", None);
        assert_eq!(page_of(&nowhere), "/tickets/1/edit");
    }
}
