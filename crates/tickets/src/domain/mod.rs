//! Ticket rules and the ticket's public shape. No I/O.

mod price;
mod title;

pub use price::{MAX_CENTS, parse_price};
use serde::Serialize;
use ticketing_events::{Cents, TicketCreated, TicketUpdated, TicketWithdrawn};
pub use title::Title;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a ticket is in its life, as readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum TicketStatus {
    /// On sale: no order holds it.
    Available,
    /// Held by an order that is not paid yet.
    Reserved,
    /// Held by a paid order.
    Sold,
}

/// A ticket as stored and as every reader sees it: `{id, title, price, userId, version,
/// orderId, status}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: Uuid,
    pub title: String,
    /// A number with at most two decimals, e.g. `19.99`.
    #[schema(value_type = f64, example = 19.99)]
    #[sqlx(rename = "price_cents", try_from = "i64")]
    pub price: Cents,
    pub user_id: Uuid,
    pub version: i64,
    /// The order holding the ticket while reserved or sold.
    pub order_id: Option<Uuid>,
    /// `available`, `reserved` or `sold`.
    pub status: TicketStatus,
}

impl Ticket {
    /// Reserved or sold tickets cannot be edited.
    pub fn is_held(&self) -> bool {
        self.order_id.is_some()
    }

    pub fn created_event(&self) -> TicketCreated {
        TicketCreated {
            id: self.id,
            version: self.version,
            title: self.title.clone(),
            price: self.price,
            user_id: self.user_id,
        }
    }

    pub fn withdrawn_event(&self) -> TicketWithdrawn {
        TicketWithdrawn {
            id: self.id,
            version: self.version,
        }
    }

    pub fn updated_event(&self) -> TicketUpdated {
        TicketUpdated {
            id: self.id,
            version: self.version,
            title: self.title.clone(),
            price: self.price,
            user_id: self.user_id,
            order_id: self.order_id,
        }
    }
}

/// Where a page of a list starts: just older or just newer than a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The tickets older than this one (the next page).
    Before(Uuid),
    /// The tickets newer than this one (the previous page).
    After(Uuid),
}

impl Cursor {
    pub fn id(self) -> Uuid {
        match self {
            Cursor::Before(id) | Cursor::After(id) => id,
        }
    }
}
