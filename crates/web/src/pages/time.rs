//! Times as the pages show them: the server writes UTC, labelled as such, inside
//! `<time datetime="…">`; `/assets/local-time.js` rewrites the text in the visitor's own time
//! zone (its `Intl` settings), and without script the labelled UTC time stays, which is
//! never wrong, only less convenient.
//!
//! The other way round, the event form's `<input type="datetime-local">` holds a wall-clock
//! time in the visitor's zone; its script sends the zone's offset from UTC at that moment,
//! and [`from_local`] makes the UTC time the API takes of the two (without script: no
//! offset, and the time is UTC, as the form says).

use time::{
    OffsetDateTime, PrimitiveDateTime, UtcOffset, format_description::well_known::Rfc3339,
    macros::format_description,
};

/// How much of a moment the text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `14:05:09 UTC`: a deadline within the next minutes.
    Time,
    /// `2026-03-01 14:05 UTC`: when something happened.
    DateTime,
    /// `Sun 2026-03-01 14:05 UTC`: when an event starts (the weekday helps plan).
    Day,
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
            Precision::Day => (
                format!(
                    "{} {}-{:02}-{:02} {:02}:{:02} UTC",
                    &at.weekday().to_string()[..3],
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute()
                ),
                "day",
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

/// Why a typed start time is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotATime;

impl NotATime {
    /// The sentence shown under the field.
    pub const MESSAGE: &'static str =
        "Enter the date and time the event starts, like 2027-03-10 20:00.";
}

/// The furthest a zone is from UTC, in minutes (UTC+14:00 and UTC-12:00 exist; a little
/// room either side).
const MAX_OFFSET_MINUTES: i32 = 16 * 60;

/// The UTC offset the form's script sent, in minutes east of UTC (`330` for India, `-300`
/// for New York in winter); `None` when there is none, or it is no offset: the time is then
/// taken as UTC.
pub fn offset_minutes(sent: &str) -> Option<i32> {
    sent.trim()
        .parse::<i32>()
        .ok()
        .filter(|m| m.abs() <= MAX_OFFSET_MINUTES)
}

/// The wall-clock time `typed` (`2027-03-10T20:00`, as `datetime-local` sends it; seconds,
/// or a space for the `T`, are fine too) in a zone `offset` minutes east of UTC, as the
/// RFC 3339 UTC time the API takes.
pub fn from_local(typed: &str, offset: Option<i32>) -> Result<String, NotATime> {
    let typed = typed.trim().replacen(' ', "T", 1);
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
    ];
    let wall = formats
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(&typed, format).ok())
        .ok_or(NotATime)?;
    let offset = UtcOffset::from_whole_seconds(offset.unwrap_or(0) * 60).map_err(|_| NotATime)?;
    let at = wall
        .assume_offset(offset)
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|_| NotATime)?;
    at.format(&Rfc3339).map_err(|_| NotATime)
}

/// `at` as a `datetime-local` value in UTC (`2027-03-10T14:30`), for a form that shows a
/// time the API gave: its script moves it to the visitor's zone.
pub fn utc_input(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
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

    #[test]
    fn an_event_starts_on_a_named_day() {
        let moment = Moment::parse("2027-03-10T14:30:00Z", Precision::Day).unwrap();
        assert_eq!(moment.utc, "Wed 2027-03-10 14:30 UTC");
        assert_eq!(moment.style, "day");
    }

    #[test]
    fn a_local_time_and_its_offset_make_the_utc_time() {
        assert_eq!(
            from_local("2027-03-10T20:00", Some(330)).unwrap(),
            "2027-03-10T14:30:00Z"
        );
        assert_eq!(
            from_local("2027-03-10T20:00", Some(-300)).unwrap(),
            "2027-03-11T01:00:00Z"
        );
        assert_eq!(
            from_local(" 2027-03-10 20:00:30 ", None).unwrap(),
            "2027-03-10T20:00:30Z"
        );
        assert_eq!(
            from_local("2027-03-10T20:00:30.250", Some(0)).unwrap(),
            "2027-03-10T20:00:30Z"
        );
        for typed in [
            "",
            "tomorrow",
            "2027-03-10",
            "2027-02-30T20:00",
            "10/03/2027 20:00",
        ] {
            assert_eq!(from_local(typed, None), Err(NotATime), "{typed:?}");
        }
    }

    #[test]
    fn only_a_plausible_offset_counts() {
        assert_eq!(offset_minutes("330"), Some(330));
        assert_eq!(offset_minutes(" -300 "), Some(-300));
        assert_eq!(offset_minutes("0"), Some(0));
        assert_eq!(offset_minutes(""), None);
        assert_eq!(offset_minutes("5:30"), None);
        assert_eq!(offset_minutes("100000"), None);
    }

    #[test]
    fn a_form_shows_a_utc_time_to_the_minute() {
        let at = OffsetDateTime::parse("2027-03-10T20:00:59+05:30", &Rfc3339).unwrap();
        assert_eq!(utc_input(at), "2027-03-10T14:30");
    }
}
