//! `/`: tickets on sale, newest first, a page at a time, with links to the previous (newer)
//! and next (older) pages.

use askama::Template;
use axum::{
    Router,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use uuid::Uuid;

use super::{
    MaybeSignedIn, Nav, State, money,
    paging::{Cursor, Paged, Pager, no_such_page, paged},
    render,
};
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

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    tickets: Vec<Row>,
    pager: Pager,
    error: Option<String>,
}

async fn home(
    Extract(api): Extract<State>,
    MaybeSignedIn { nav, .. }: MaybeSignedIn,
    visitor: Visitor,
    Query(cursor): Query<Cursor>,
) -> Response {
    let Some(page) = cursor.page() else {
        return no_such_page();
    };
    match api.tickets(&visitor, PAGE + 1, page).await {
        Ok(tickets) => match paged(page, tickets, PAGE as usize) {
            Paged::First => Redirect::to("/").into_response(),
            Paged::Shown(tickets, pager) => {
                let tickets = tickets
                    .into_iter()
                    .map(|t| Row {
                        id: t.id,
                        price: money(t.price),
                        title: t.title,
                    })
                    .collect();
                render(
                    StatusCode::OK,
                    &HomePage {
                        nav,
                        tickets,
                        pager,
                        error: None,
                    },
                )
            }
        },
        Err(failure) => render(
            StatusCode::BAD_GATEWAY,
            &HomePage {
                nav,
                tickets: Vec::new(),
                pager: Pager::default(),
                error: Some(failure.sentence()),
            },
        ),
    }
}
