//! Event payloads, one struct per subject, field names as in `CONTRACT.md`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Cents, Event, Subject};

/// The lifecycle of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Reserved, waiting for payment.
    #[serde(rename = "created")]
    Created,
    /// Cancelled by the buyer, by expiry, or by the sweep. Final.
    #[serde(rename = "cancelled")]
    Cancelled,
    /// A payment is under way.
    #[serde(rename = "awaiting:payment")]
    AwaitingPayment,
    /// Paid. Final unless an operator refunds it.
    #[serde(rename = "complete")]
    Complete,
    /// Paid, then refunded by an operator: the ticket is on sale again. Final.
    #[serde(rename = "refunded")]
    Refunded,
}

impl OrderStatus {
    /// Every status, in the order of an order's life.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Created,
        OrderStatus::AwaitingPayment,
        OrderStatus::Complete,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::AwaitingPayment => "awaiting:payment",
            OrderStatus::Complete => "complete",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Whether the order still holds its ticket and may be paid or expire.
    pub const fn is_live(self) -> bool {
        matches!(self, OrderStatus::Created | OrderStatus::AwaitingPayment)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketCreated {
    pub id: Uuid,
    pub version: i64,
    pub title: String,
    pub price: Cents,
    pub user_id: Uuid,
}

impl Event for TicketCreated {
    const SUBJECT: Subject = Subject::TicketCreated;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    pub id: Uuid,
    pub version: i64,
    pub title: String,
    pub price: Cents,
    pub user_id: Uuid,
    pub order_id: Option<Uuid>,
}

impl Event for TicketUpdated {
    const SUBJECT: Subject = Subject::TicketUpdated;
}

/// The part of a ticket an `order.created` event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderTicket {
    pub id: Uuid,
    pub price: Cents,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub id: Uuid,
    pub version: i64,
    pub status: OrderStatus,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub ticket: OrderTicket,
}

impl Event for OrderCreated {
    const SUBJECT: Subject = Subject::OrderCreated;
}

/// The ticket reference an `order.cancelled` event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketRef {
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub id: Uuid,
    pub version: i64,
    pub ticket: TicketRef,
}

impl Event for OrderCancelled {
    const SUBJECT: Subject = Subject::OrderCancelled;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationComplete {
    pub order_id: Uuid,
}

impl Event for ExpirationComplete {
    const SUBJECT: Subject = Subject::ExpirationComplete;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub id: Uuid,
    pub order_id: Uuid,
    pub charge_id: String,
}

impl Event for PaymentCreated {
    const SUBJECT: Subject = Subject::PaymentCreated;
}

/// A payment was given back: `id` is the refund's id, `refundId` the provider's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub id: Uuid,
    pub order_id: Uuid,
    pub refund_id: String,
}

impl Event for PaymentRefunded {
    const SUBJECT: Subject = Subject::PaymentRefunded;
}

/// An order was refunded: its ticket is on sale again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRefunded {
    pub id: Uuid,
    pub version: i64,
    pub ticket: TicketRef,
}

impl Event for OrderRefunded {
    const SUBJECT: Subject = Subject::OrderRefunded;
}

/// The seller withdrew a ticket: it is gone from sale for good, and a live order for it
/// (placed in the same instant) is cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketWithdrawn {
    pub id: Uuid,
    pub version: i64,
}

impl Event for TicketWithdrawn {
    const SUBJECT: Subject = Subject::TicketWithdrawn;
}

/// A payment completed an order: its ticket is sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCompleted {
    pub id: Uuid,
    pub version: i64,
    pub ticket: TicketRef,
}

impl Event for OrderCompleted {
    const SUBJECT: Subject = Subject::OrderCompleted;
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::datetime;

    use super::*;
    use crate::Envelope;

    fn round_trip<T: Event + PartialEq + std::fmt::Debug>(data: T, expected_data: Value) {
        let envelope = Envelope::with_id(Uuid::nil(), data);
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["id"], json!(Uuid::nil()));
        assert_eq!(json["type"], json!(T::SUBJECT.as_str()));
        assert!(json["occurredAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["data"], expected_data);
        let back: Envelope<T> = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const C: Uuid = Uuid::from_u128(0xc);

    #[test]
    fn ticket_created_round_trips_with_contract_field_names() {
        round_trip(
            TicketCreated {
                id: A,
                version: 0,
                title: "Concert".into(),
                price: Cents(1999),
                user_id: B,
            },
            json!({"id": A, "version": 0, "title": "Concert", "price": 19.99, "userId": B}),
        );
    }

    #[test]
    fn ticket_updated_round_trips_with_and_without_an_order() {
        round_trip(
            TicketUpdated {
                id: A,
                version: 3,
                title: "T".into(),
                price: Cents(500),
                user_id: B,
                order_id: Some(C),
            },
            json!({"id": A, "version": 3, "title": "T", "price": 5, "userId": B, "orderId": C}),
        );
        round_trip(
            TicketUpdated {
                id: A,
                version: 4,
                title: "T".into(),
                price: Cents(5),
                user_id: B,
                order_id: None,
            },
            json!({"id": A, "version": 4, "title": "T", "price": 0.05, "userId": B, "orderId": null}),
        );
    }

    #[test]
    fn order_created_round_trips_with_rfc3339_expiry() {
        round_trip(
            OrderCreated {
                id: A,
                version: 0,
                status: OrderStatus::Created,
                user_id: B,
                expires_at: datetime!(2026-11-24 10:15:00 UTC),
                ticket: OrderTicket {
                    id: C,
                    price: Cents(2550),
                },
            },
            json!({
                "id": A, "version": 0, "status": "created", "userId": B,
                "expiresAt": "2026-11-24T10:15:00Z", "ticket": {"id": C, "price": 25.5}
            }),
        );
    }

    #[test]
    fn order_cancelled_expiration_and_payment_round_trip() {
        round_trip(
            OrderCancelled {
                id: A,
                version: 1,
                ticket: TicketRef { id: C },
            },
            json!({"id": A, "version": 1, "ticket": {"id": C}}),
        );
        round_trip(ExpirationComplete { order_id: A }, json!({"orderId": A}));
        round_trip(
            PaymentCreated {
                id: A,
                order_id: B,
                charge_id: "ch_1".into(),
            },
            json!({"id": A, "orderId": B, "chargeId": "ch_1"}),
        );
        round_trip(
            PaymentRefunded {
                id: A,
                order_id: B,
                refund_id: "re_1".into(),
            },
            json!({"id": A, "orderId": B, "refundId": "re_1"}),
        );
        round_trip(
            OrderRefunded {
                id: A,
                version: 2,
                ticket: TicketRef { id: C },
            },
            json!({"id": A, "version": 2, "ticket": {"id": C}}),
        );
        round_trip(
            OrderCompleted {
                id: A,
                version: 1,
                ticket: TicketRef { id: C },
            },
            json!({"id": A, "version": 1, "ticket": {"id": C}}),
        );
        round_trip(
            TicketWithdrawn { id: C, version: 2 },
            json!({"id": C, "version": 2}),
        );
    }

    #[test]
    fn order_status_uses_the_contract_spelling() {
        assert_eq!(
            serde_json::to_value(OrderStatus::AwaitingPayment).unwrap(),
            json!("awaiting:payment")
        );
        for s in [
            "created",
            "cancelled",
            "awaiting:payment",
            "complete",
            "refunded",
        ] {
            assert_eq!(OrderStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(OrderStatus::Created.is_live() && OrderStatus::AwaitingPayment.is_live());
        assert!(!OrderStatus::Cancelled.is_live() && !OrderStatus::Complete.is_live());
        assert!(!OrderStatus::Refunded.is_live());
    }
}
