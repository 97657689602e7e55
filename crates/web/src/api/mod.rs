//! The API client the pages use: every call carries the visitor's `Cookie` header and the
//! request's `x-request-id`, and every refusal comes back as the contract's error list, so a
//! page can put each message next to its field. [`operations`] holds the operators' routes
//! the console reads; [`events`] the events with many seats, and ordering a seat of one.

pub mod events;
pub mod operations;

use std::{net::IpAddr, time::Duration};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;
use ticketing_common::{
    forwarded::{FORWARDING_TOKEN_HEADER, ForwardingToken, Proxies, VISITOR_HEADER},
    telemetry,
};
use uuid::Uuid;

/// One entry of the contract's error body.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldError {
    pub message: String,
    pub field: Option<String>,
}

/// A refused or failed API call, in words.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    /// The API's status; `None` when the API could not be reached or answered nonsense.
    pub status: Option<StatusCode>,
    pub errors: Vec<FieldError>,
}

impl ApiFailure {
    fn unreachable(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "the API could not be reached");
        ApiFailure {
            status: None,
            errors: vec![FieldError {
                message: "The service is not answering right now. Please try again in a moment."
                    .into(),
                field: None,
            }],
        }
    }

    pub fn is(&self, status: StatusCode) -> bool {
        self.status == Some(status)
    }

    /// The message for a field, if the API named it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        self.errors
            .iter()
            .find(|e| e.field.as_deref() == Some(field))
            .map(|e| e.message.clone())
    }

    /// Every message not tied to one of `fields` (shown at the top of a form).
    pub fn general(&self, fields: &[&str]) -> Vec<String> {
        self.errors
            .iter()
            .filter(|e| e.field.as_deref().is_none_or(|f| !fields.contains(&f)))
            .map(|e| e.message.clone())
            .collect()
    }

    /// All messages, joined for a one-line notice.
    pub fn sentence(&self) -> String {
        self.errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A successful call: the decoded body and the `Set-Cookie` headers to hand to the browser.
#[derive(Debug)]
pub struct Answer<T> {
    pub body: T,
    pub set_cookies: Vec<header::HeaderValue>,
}

/// How the web component learns who its visitors are, and how it vouches for them to the
/// API.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// Proxies in front of the web component whose `X-Forwarded-For` / `X-Forwarded-Proto`
    /// are believed (`TRUSTED_PROXIES`).
    pub proxies: Proxies,
    /// The token that makes the API believe the visitor address the pages name (derived
    /// from the session key); `None` names no one.
    pub token: Option<ForwardingToken>,
    /// Whether the site is served over HTTPS (the session cookie is `Secure`); the scheme a
    /// form post's `Origin` must have when no trusted proxy says otherwise.
    pub https: bool,
}

impl Forwarding {
    /// The scheme the visitor used: a trusted proxy's `X-Forwarded-Proto`, otherwise
    /// `https` when the site is served over HTTPS, else `http`.
    pub fn scheme(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> &'static str {
        let forwarded = peer.and_then(|peer| self.proxies.forwarded_proto(peer, headers));
        forwarded.unwrap_or(if self.https { "https" } else { "http" })
    }
}

/// What the pages know of the visitor's request: the cookie to forward, and the visitor's
/// address (the peer, or what a trusted proxy in front says), which every API call names
/// (with the forwarding token) so the API's limits count visitors, not this component.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    cookie: Option<header::HeaderValue>,
    address: Option<IpAddr>,
    token: Option<ForwardingToken>,
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarding = parts
            .extensions
            .get::<Forwarding>()
            .cloned()
            .unwrap_or_default();
        let address = ticketing_common::forwarded::peer(&parts.extensions)
            .map(|peer| forwarding.proxies.client_address(peer, &parts.headers));
        Ok(Visitor {
            cookie: parts.headers.get(header::COOKIE).cloned(),
            address,
            token: forwarding.token,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: Uuid,
    pub title: String,
    pub price: f64,
    pub user_id: Uuid,
    pub version: i64,
    pub order_id: Option<Uuid>,
    /// `available`, `reserved` or `sold`. An API without the field (before it named the
    /// state) leaves it to [`Ticket::state`] to tell from `orderId`.
    #[serde(default)]
    pub status: Option<String>,
}

/// What a ticket is doing, as the pages put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Available,
    Reserved,
    Sold,
    /// Held by an order, but the API did not say whether it is paid.
    Taken,
}

impl Ticket {
    pub fn state(&self) -> TicketState {
        match self.status.as_deref() {
            Some("available") => TicketState::Available,
            Some("reserved") => TicketState::Reserved,
            Some("sold") => TicketState::Sold,
            _ if self.order_id.is_none() => TicketState::Available,
            _ => TicketState::Taken,
        }
    }
}

/// Which page of a list of tickets: the newest, older than one, or newer than one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Newest,
    Before(Uuid),
    After(Uuid),
}

impl Page {
    /// The query that asks for `limit` tickets of this page.
    fn query(self, limit: u32) -> String {
        match self {
            Page::Newest => format!("limit={limit}"),
            Page::Before(id) => format!("limit={limit}&before={id}"),
            Page::After(id) => format!("limit={limit}&after={id}"),
        }
    }
}

/// One payment attempt for an order, as the receipt shows it: `amount` in the units of a
/// price, `status` one of `succeeded`, `refunded`, `declined`, `pending`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: f64,
    pub status: String,
    pub created_at: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderTicket {
    pub id: Uuid,
    pub title: String,
    pub price: f64,
    /// The event, for a seat of an event.
    #[serde(default)]
    pub event_id: Option<Uuid>,
    /// The seat's label (`"1"`…`"N"`), for a seat of an event.
    #[serde(default)]
    pub seat: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub expires_at: String,
    pub ticket: OrderTicket,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub id: Uuid,
}

/// A refund an operator made: `amount` in the units of a price.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: f64,
}

/// The API over HTTP.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            // The API is this process or the ingress in front of it: never a proxy's business.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .expect("a plain HTTP client builds");
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        visitor: &Visitor,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer<T>, ApiFailure> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &visitor.cookie {
            request = request.header(header::COOKIE, cookie.as_bytes());
        }
        if let (Some(address), Some(token)) = (visitor.address, &visitor.token) {
            request = request
                .header(VISITOR_HEADER, address.to_string())
                .header(FORWARDING_TOKEN_HEADER, token.as_str());
        }
        if let Some(id) = telemetry::current_request_id() {
            request = request.header(telemetry::REQUEST_ID_HEADER, id);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(ApiFailure::unreachable)?;
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let bytes = response.bytes().await.map_err(ApiFailure::unreachable)?;
        if status.is_success() {
            // 204 has no body; `()` and `Value` accept `null`.
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            let body = serde_json::from_slice(text).map_err(ApiFailure::unreachable)?;
            return Ok(Answer { body, set_cookies });
        }
        #[derive(Deserialize)]
        struct Errors {
            errors: Vec<FieldError>,
        }
        let errors = serde_json::from_slice::<Errors>(&bytes)
            .ok()
            .map(|e| e.errors)
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| {
                vec![FieldError {
                    message: format!(
                        "Something went wrong on our side ({}). Please try again.",
                        status.as_u16()
                    ),
                    field: None,
                }]
            });
        Err(ApiFailure {
            status: Some(status),
            errors,
        })
    }

    /// `POST /api/users/<mode>` (`signup` or `signin`) with the credentials.
    pub async fn authenticate(
        &self,
        v: &Visitor,
        mode: &str,
        email: &str,
        password: &str,
    ) -> Result<Answer<Value>, ApiFailure> {
        let body = serde_json::json!({"email": email, "password": password});
        let path = format!("/api/users/{mode}");
        self.call(v, reqwest::Method::POST, &path, Some(body)).await
    }

    pub async fn signout(&self, v: &Visitor) -> Result<Answer<Value>, ApiFailure> {
        self.call(
            v,
            reqwest::Method::POST,
            "/api/users/signout",
            Some(serde_json::json!({})),
        )
        .await
    }

    /// Tickets on sale, newest first: `limit` of them on `page`.
    pub async fn tickets(
        &self,
        v: &Visitor,
        limit: u32,
        page: Page,
    ) -> Result<Vec<Ticket>, ApiFailure> {
        let path = format!("/api/tickets?{}", page.query(limit));
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `GET /api/tickets/mine`: the visitor's own listings in every state, newest first.
    pub async fn my_tickets(
        &self,
        v: &Visitor,
        limit: u32,
        page: Page,
    ) -> Result<Vec<Ticket>, ApiFailure> {
        let path = format!("/api/tickets/mine?{}", page.query(limit));
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `DELETE /api/tickets/:id`: withdraws an available listing of the visitor's.
    pub async fn withdraw_ticket(&self, v: &Visitor, id: Uuid) -> Result<(), ApiFailure> {
        self.call::<Value>(
            v,
            reqwest::Method::DELETE,
            &format!("/api/tickets/{id}"),
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn ticket(&self, v: &Visitor, id: Uuid) -> Result<Ticket, ApiFailure> {
        Ok(self
            .call(v, reqwest::Method::GET, &format!("/api/tickets/{id}"), None)
            .await?
            .body)
    }

    /// The price goes as a numeric string (the API parses them and says what is wrong), or
    /// as `null` when the form could not make a number of it: the API then still checks the
    /// title, and refuses the whole request.
    pub async fn create_ticket(
        &self,
        v: &Visitor,
        title: &str,
        price: Option<&str>,
    ) -> Result<Ticket, ApiFailure> {
        let body = serde_json::json!({"title": title, "price": price});
        Ok(self
            .call(v, reqwest::Method::POST, "/api/tickets", Some(body))
            .await?
            .body)
    }

    pub async fn update_ticket(
        &self,
        v: &Visitor,
        id: Uuid,
        title: &str,
        price: Option<&str>,
    ) -> Result<Ticket, ApiFailure> {
        let body = serde_json::json!({"title": title, "price": price});
        Ok(self
            .call(
                v,
                reqwest::Method::PUT,
                &format!("/api/tickets/{id}"),
                Some(body),
            )
            .await?
            .body)
    }

    pub async fn create_order(&self, v: &Visitor, ticket_id: Uuid) -> Result<Order, ApiFailure> {
        let body = serde_json::json!({"ticketId": ticket_id});
        Ok(self
            .call(v, reqwest::Method::POST, "/api/orders", Some(body))
            .await?
            .body)
    }

    pub async fn orders(&self, v: &Visitor) -> Result<Vec<Order>, ApiFailure> {
        Ok(self
            .call(v, reqwest::Method::GET, "/api/orders", None)
            .await?
            .body)
    }

    pub async fn order(&self, v: &Visitor, id: Uuid) -> Result<Order, ApiFailure> {
        Ok(self
            .call(v, reqwest::Method::GET, &format!("/api/orders/{id}"), None)
            .await?
            .body)
    }

    pub async fn cancel_order(&self, v: &Visitor, id: Uuid) -> Result<(), ApiFailure> {
        self.call::<Value>(
            v,
            reqwest::Method::DELETE,
            &format!("/api/orders/{id}"),
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn pay(
        &self,
        v: &Visitor,
        order_id: Uuid,
        token: &str,
    ) -> Result<Created, ApiFailure> {
        let body = serde_json::json!({"orderId": order_id, "token": token});
        Ok(self
            .call(v, reqwest::Method::POST, "/api/payments", Some(body))
            .await?
            .body)
    }

    /// `GET /api/payments?orderId=X`: the order's payment attempts (its receipt).
    pub async fn payments(&self, v: &Visitor, order_id: Uuid) -> Result<Vec<Payment>, ApiFailure> {
        let path = format!("/api/payments?orderId={order_id}");
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `POST /api/payments/refunds`: operators only; the order turns `refunded` moments later.
    pub async fn refund(&self, v: &Visitor, order_id: Uuid) -> Result<Refund, ApiFailure> {
        let body = serde_json::json!({"orderId": order_id});
        Ok(self
            .call(
                v,
                reqwest::Method::POST,
                "/api/payments/refunds",
                Some(body),
            )
            .await?
            .body)
    }
}
