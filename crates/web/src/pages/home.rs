//! `/`: tickets on sale, newest first, a page at a time.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Extension, Router,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use std::sync::Arc;
use ticketing_common::session::{CurrentUser, SessionKeys};
use uuid::Uuid;

use super::{Nav, State, money, render};
use crate::api::Visitor;

/// Tickets per page.
const PAGE: u32 = 20;

pub fn router() -> Router<State> {
    Router::new().route("/", get(home))
}

pub struct Row {
    pub id: Uuid,
    pub title: String,
    pub price: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    tickets: Vec<Row>,
    next: Option<Uuid>,
    paged: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Paging {
    before: Option<Uuid>,
}

async fn home(
    Extract(api): Extract<State>,
    Extension(keys): Extension<Arc<SessionKeys>>,
    user: CurrentUser,
    visitor: Visitor,
    Query(paging): Query<Paging>,
) -> Response {
    let nav = Nav::of(&user, &keys);
    match api.tickets(&visitor, PAGE, paging.before).await {
        Ok(tickets) => {
            let next = (tickets.len() == PAGE as usize)
                .then(|| tickets.last().map(|t| t.id))
                .flatten();
            let tickets = tickets
                .into_iter()
                .map(|t| Row {
                    id: t.id,
                    price: money(t.price),
                    title: t.title,
                })
                .collect();
            HomePage {
                nav,
                tickets,
                next,
                paged: paging.before.is_some(),
                error: None,
            }
            .into_response()
        }
        Err(failure) => render(
            StatusCode::BAD_GATEWAY,
            &HomePage {
                nav,
                tickets: Vec::new(),
                next: None,
                paged: false,
                error: Some(failure.sentence()),
            },
        ),
    }
}
