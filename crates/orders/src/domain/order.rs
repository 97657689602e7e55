//! An order as stored and as its owner sees it, and the events it produces.

use serde::Serialize;
use sqlx::{Row, postgres::PgRow};
use ticketing_events::{
    Cents, OrderCancelled, OrderCompleted, OrderCreated, OrderRefunded, OrderStatus, OrderTicket,
    TicketRef,
};
use time::{OffsetDateTime, UtcOffset};
use utoipa::ToSchema;
use uuid::Uuid;

/// An order: `{id, userId, status, expiresAt, version, ticket: {id, title, price}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    /// The buyer.
    pub user_id: Uuid,
    /// `created`, `awaiting:payment`, `cancelled`, `complete` or `refunded`.
    #[schema(schema_with = order_status)]
    pub status: OrderStatus,
    /// RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-24T10:15:00Z")]
    pub expires_at: OffsetDateTime,
    /// Starts at 0, grows by one per change.
    pub version: i64,
    pub ticket: OrderedTicket,
}

/// An order's status, as its schema: one of the contract's spellings.
fn order_status() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some(OrderStatus::ALL.map(OrderStatus::as_str)))
        .description(Some(
            "`created`, `awaiting:payment`, `cancelled`, `complete` or `refunded`.",
        ))
        .examples([serde_json::json!("created")])
        .build()
}

/// The ticket an order holds: its title as the replica knows it, and the price the order was
/// created at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderedTicket {
    pub id: Uuid,
    pub title: String,
    /// A number with at most two decimals, e.g. `19.99`.
    #[schema(value_type = f64, example = 19.99)]
    pub price: Cents,
}

impl Order {
    pub fn created_event(&self) -> OrderCreated {
        OrderCreated {
            id: self.id,
            version: self.version,
            status: self.status,
            user_id: self.user_id,
            expires_at: self.expires_at,
            ticket: OrderTicket {
                id: self.ticket.id,
                price: self.ticket.price,
            },
        }
    }

    pub fn completed_event(&self) -> OrderCompleted {
        OrderCompleted {
            id: self.id,
            version: self.version,
            ticket: TicketRef { id: self.ticket.id },
        }
    }

    pub fn refunded_event(&self) -> OrderRefunded {
        OrderRefunded {
            id: self.id,
            version: self.version,
            ticket: TicketRef { id: self.ticket.id },
        }
    }

    pub fn cancelled_event(&self) -> OrderCancelled {
        OrderCancelled {
            id: self.id,
            version: self.version,
            ticket: TicketRef { id: self.ticket.id },
        }
    }
}

/// Reads the columns `id, user_id, status, expires_at, version, ticket_id, title,
/// price_cents` (an order joined with its ticket). The status is checked here: the table's
/// CHECK allows only the contract's spellings.
impl<'r> sqlx::FromRow<'r, PgRow> for Order {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let status: String = row.try_get("status")?;
        let status = OrderStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown order status {status:?}").into(),
        })?;
        let expires_at: OffsetDateTime = row.try_get("expires_at")?;
        Ok(Order {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            status,
            expires_at: expires_at.to_offset(UtcOffset::UTC),
            version: row.try_get("version")?,
            ticket: OrderedTicket {
                id: row.try_get("ticket_id")?,
                title: row.try_get("title")?,
                price: Cents(row.try_get("price_cents")?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const C: Uuid = Uuid::from_u128(0xc);

    fn order(status: OrderStatus, version: i64) -> Order {
        Order {
            id: A,
            user_id: B,
            status,
            expires_at: datetime!(2026-11-24 10:15:00 UTC),
            version,
            ticket: OrderedTicket {
                id: C,
                title: "Concert".into(),
                price: Cents(1999),
            },
        }
    }

    #[test]
    fn an_order_renders_as_the_contract_shape_with_a_utc_rfc3339_expiry() {
        assert_eq!(
            serde_json::to_value(order(OrderStatus::AwaitingPayment, 2)).unwrap(),
            json!({
                "id": A, "userId": B, "status": "awaiting:payment",
                "expiresAt": "2026-11-24T10:15:00Z", "version": 2,
                "ticket": {"id": C, "title": "Concert", "price": 19.99}
            })
        );
    }

    #[test]
    fn events_carry_the_order_version_and_its_ticket() {
        let created = order(OrderStatus::Created, 0).created_event();
        assert_eq!(
            (created.id, created.version, created.status, created.user_id),
            (A, 0, OrderStatus::Created, B)
        );
        assert_eq!((created.ticket.id, created.ticket.price), (C, Cents(1999)));
        assert_eq!(created.expires_at, datetime!(2026-11-24 10:15:00 UTC));

        let cancelled = order(OrderStatus::Cancelled, 1).cancelled_event();
        assert_eq!(
            (cancelled.id, cancelled.version, cancelled.ticket.id),
            (A, 1, C)
        );
    }
}
