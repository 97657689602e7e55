//! What a flow says after applying an event, in its own words, so that flows know nothing of
//! the listener that called them: the listener turns [`Applied`] into an ack, and
//! [`NotApplied`] into a redelivery later, a retry while an outage lasts, or a parked event.
//!
//! [`version_order`] is the one place the contract's rule "apply an entity's version n only
//! over n-1" is written.

/// An event a flow applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its change was made now.
    Now,
    /// It was made before (a redelivery, or a version already passed): nothing to do.
    Already,
}

/// Why a flow did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum NotApplied {
    /// It depends on an event this service has not applied yet (its predecessor): it comes
    /// back shortly, and is parked if it waits too long.
    #[error("too early: {0}")]
    TooEarly(String),
    /// It names something this service does not know and never will (a bug elsewhere):
    /// retrying cannot help, so it is parked at once for a person to look at.
    #[error("unknown: {0}")]
    Unknown(String),
    /// Our own failure: retried for as long as it is transient (an outage), a few times
    /// otherwise, then parked.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for NotApplied {
    fn from(error: sqlx::Error) -> Self {
        NotApplied::Failed(anyhow::Error::new(error).context("database query failed"))
    }
}

/// A flow's answer to an event.
pub type Applying = Result<Applied, NotApplied>;

/// Where an event's version stands against the version a replica holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOrder {
    /// The next version: apply it.
    Next,
    /// A version the replica has reached or passed: a duplicate, or stale.
    Passed,
    /// A version further ahead, or an entity not known yet: its predecessors come first.
    Ahead,
}

/// The contract's rule: version n applies only over n-1. `known` is the replica's version
/// (`None`: the entity is not known yet); `incoming` the event's.
pub fn version_order(known: Option<i64>, incoming: i64) -> VersionOrder {
    match known {
        Some(known) if incoming == known + 1 => VersionOrder::Next,
        Some(known) if incoming <= known => VersionOrder::Passed,
        _ => VersionOrder::Ahead,
    }
}

/// The answer for an event whose conditional update did not apply, by where its version
/// stands: passed is done; ahead waits. `Next` cannot happen once the update refused (the
/// replica moved meanwhile), so it waits too and comes back to find out.
pub fn after_refused_update(entity: &str, known: Option<i64>, incoming: i64) -> Applying {
    match (version_order(known, incoming), known) {
        (VersionOrder::Passed, _) => Ok(Applied::Already),
        (_, Some(known)) => Err(NotApplied::TooEarly(format!(
            "{entity} replica at version {known}, waiting for {}",
            incoming - 1
        ))),
        (_, None) => Err(NotApplied::TooEarly(format!("{entity} not known yet"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_n_applies_only_over_n_minus_one() {
        assert_eq!(version_order(Some(3), 4), VersionOrder::Next);
        assert_eq!(
            version_order(Some(3), 3),
            VersionOrder::Passed,
            "a duplicate"
        );
        assert_eq!(version_order(Some(3), 1), VersionOrder::Passed, "stale");
        assert_eq!(version_order(Some(3), 6), VersionOrder::Ahead);
        assert_eq!(version_order(None, 0), VersionOrder::Ahead, "not known yet");
    }

    #[test]
    fn a_refused_update_is_done_when_passed_and_waits_otherwise() {
        assert!(matches!(
            after_refused_update("order", Some(2), 2),
            Ok(Applied::Already)
        ));
        assert!(matches!(
            after_refused_update("order", Some(2), 5),
            Err(NotApplied::TooEarly(reason)) if reason.contains("waiting for 4")
        ));
        assert!(matches!(
            after_refused_update("order", None, 1),
            Err(NotApplied::TooEarly(reason)) if reason.contains("not known")
        ));
    }
}
