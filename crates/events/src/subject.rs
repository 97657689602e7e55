//! Subjects, relative to the namespace prefix (`ticketing.` by default).

use std::fmt;

/// Every subject an event may be published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    TicketCreated,
    TicketUpdated,
    OrderCreated,
    OrderCancelled,
    ExpirationComplete,
    PaymentCreated,
    PaymentRefunded,
    OrderRefunded,
    TicketWithdrawn,
    OrderCompleted,
}

impl Subject {
    /// All subjects, in a stable order.
    pub const ALL: [Subject; 10] = [
        Subject::TicketCreated,
        Subject::TicketUpdated,
        Subject::OrderCreated,
        Subject::OrderCancelled,
        Subject::ExpirationComplete,
        Subject::PaymentCreated,
        Subject::PaymentRefunded,
        Subject::OrderRefunded,
        Subject::TicketWithdrawn,
        Subject::OrderCompleted,
    ];

    /// The subject without prefix, which is also the envelope's `type`: `ticket.created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subject::TicketCreated => "ticket.created",
            Subject::TicketUpdated => "ticket.updated",
            Subject::OrderCreated => "order.created",
            Subject::OrderCancelled => "order.cancelled",
            Subject::ExpirationComplete => "expiration.complete",
            Subject::PaymentCreated => "payment.created",
            Subject::PaymentRefunded => "payment.refunded",
            Subject::OrderRefunded => "order.refunded",
            Subject::TicketWithdrawn => "ticket.withdrawn",
            Subject::OrderCompleted => "order.completed",
        }
    }

    /// The full subject under a namespace prefix: `ticketing.ticket.created`.
    pub fn under(self, prefix: &str) -> String {
        format!("{prefix}.{}", self.as_str())
    }

    /// Parses the envelope `type` back into a subject.
    pub fn parse(s: &str) -> Option<Subject> {
        Subject::ALL
            .into_iter()
            .find(|subject| subject.as_str() == s)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_parses_back_from_its_name() {
        for subject in Subject::ALL {
            assert_eq!(Subject::parse(subject.as_str()), Some(subject));
        }
        assert_eq!(Subject::parse("ticket.deleted"), None);
    }

    #[test]
    fn full_subjects_live_under_the_prefix() {
        assert_eq!(
            Subject::OrderCreated.under("ticketing"),
            "ticketing.order.created"
        );
        assert_eq!(Subject::PaymentCreated.under("t_1"), "t_1.payment.created");
    }
}
