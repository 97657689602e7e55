//! Times as the pages show them: the server writes UTC, labelled as such, inside
//! `<time datetime="…">`; `/assets/local-time.js` rewrites the text in the visitor's own time
//! zone (its `Intl` settings), and without script the labelled UTC time stays, which is
//! never wrong, only less convenient.

use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// How much of a moment the text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `14:05:09 UTC`: a deadline within the next minutes.
    Time,
    /// `2026-03-01 14:05 UTC`: when something happened.
    DateTime,
}

/// A moment, ready for `<time datetime="{{ iso }}" data-local="{{ style }}">{{ utc }}</time>`
/// (the `moment` macro in `templates/macros.html`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// RFC 3339 in UTC, for the `datetime` attribute and the script.
    pub iso: String,
    /// The text without script, labelled UTC.
    pub utc: String,
    /// `time` or `datetime`: what the script shows.
    pub style: &'static str,
}

impl Moment {
    pub fn of(at: OffsetDateTime, precision: Precision) -> Moment {
        let at = at
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(at);
        let iso = at.format(&Rfc3339).unwrap_or_default();
        let (utc, style) = match precision {
            Precision::Time => (
                format!("{:02}:{:02}:{:02} UTC", at.hour(), at.minute(), at.second()),
                "time",
            ),
            Precision::DateTime => (
                format!(
                    "{}-{:02}-{:02} {:02}:{:02} UTC",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute()
                ),
                "datetime",
            ),
        };
        Moment { iso, utc, style }
    }

    /// An RFC 3339 text from the API; `None` if it is not one.
    pub fn parse(text: &str, precision: Precision) -> Option<Moment> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|at| Moment::of(at, precision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_written_in_utc_and_says_so() {
        let moment = Moment::parse("2026-03-01T19:35:09.123+05:30", Precision::DateTime).unwrap();
        assert_eq!(moment.iso, "2026-03-01T14:05:09Z");
        assert_eq!(moment.utc, "2026-03-01 14:05 UTC");
        assert_eq!(moment.style, "datetime");
        let deadline = Moment::parse("2026-03-01T14:05:09Z", Precision::Time).unwrap();
        assert_eq!(deadline.utc, "14:05:09 UTC");
        assert_eq!(deadline.style, "time");
        assert_eq!(Moment::parse("yesterday", Precision::Time), None);
    }
}
