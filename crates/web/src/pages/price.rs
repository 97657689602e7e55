//! Prices as people type them, made into the plain decimal the API takes.
//!
//! The API is strict on purpose (`25.50`, a number or a numeric string); the sell and edit
//! forms are not: `$25`, `25,50`, ` 25.5 `, `1,250.00` all mean a price. [`normalise`] only
//! rewrites the notation (a currency sign, spaces, a decimal comma, thousands separators)
//! and leaves every rule about the amount (greater than 0, at most 1,000,000, at most two
//! decimals) to the API, which words its own refusals: `-5` and `25.555` go through as
//! numbers and come back refused.
//!
//! [`count`] does the same for a whole number of things (an event's seats): `1,000` and
//! `1 000` are a thousand.

/// Why a typed price is not a number at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAPrice;

impl NotAPrice {
    /// The sentence shown under the price field.
    pub const MESSAGE: &'static str =
        "Enter the price as a number of dollars, like 25, 25.50 or $25,50.";
}

/// The typed price as a plain decimal (`"25.50"`, `"-5"`), or [`NotAPrice`].
///
/// Accepted around the number: spaces, one `$` (or `US$`, `USD`) before or after it, a minus
/// sign before or after the `$`. In the number: a decimal point, or a decimal comma (a single
/// comma followed by one or two digits, or the last mark after dots), and thousands
/// separators between groups of three digits (commas, spaces or apostrophes; dots before a
/// decimal comma). A single point is always the decimal point, as the API reads it.
pub fn normalise(typed: &str) -> Result<String, NotAPrice> {
    let mut text = typed.trim();
    let mut negative = false;
    let mut sign = |text: &mut &str| {
        if !negative && let Some(rest) = text.strip_prefix('-') {
            negative = true;
            *text = rest.trim_start();
        }
    };
    sign(&mut text);
    let upper = text.to_ascii_uppercase();
    if let Some(cut) = ["US$", "USD", "$"].iter().find(|s| upper.starts_with(**s)) {
        text = text[cut.len()..].trim_start();
    } else if let Some(cut) = ["USD", "$"].iter().find(|s| upper.ends_with(**s)) {
        text = text[..text.len() - cut.len()].trim_end();
    }
    sign(&mut text);
    let number = decimal(text).ok_or(NotAPrice)?;
    Ok(if negative {
        format!("-{number}")
    } else {
        number
    })
}

/// A count as typed, its thousands separators taken out (`1,000` → `1000`); anything else
/// goes as typed (trimmed), for the API to say what is wrong with it; `None` when nothing
/// was typed.
pub fn count(typed: &str) -> Option<String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return None;
    }
    Some(thousands(typed).unwrap_or_else(|| typed.to_owned()))
}

/// `text` (digits and marks) as `digits[.digits]`.
fn decimal(text: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\'');
    if !text.chars().all(allowed) {
        return None;
    }
    let dots = text.matches('.').count();
    let commas = text.matches(',').count();
    let last_mark = text.rfind(['.', ',']);
    let decimal_at = match (dots, commas, last_mark) {
        (0, 0, _) | (_, _, None) => None,
        // Both marks: the last one separates the decimals (`1,250.00`, `1.250,75`).
        (d, c, Some(at)) if d > 0 && c > 0 => Some(at),
        (1, 0, at) => at,
        // Several of one mark only group thousands (`1,000,000`, `1.000.000`).
        (_, 0, _) | (0, _, _) if dots + commas > 1 => None,
        // A single comma: thousands before three digits (`1,000`), decimals otherwise.
        (0, 1, Some(at)) if text.len() - at - 1 == 3 => None,
        (0, 1, at) => at,
        _ => return None,
    };
    let (whole, fraction) = match decimal_at {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let digits = thousands(whole)?;
    match fraction {
        Some(f) if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) => None,
        Some(f) if digits.is_empty() => Some(format!("0.{f}")),
        Some(f) => Some(format!("{digits}.{f}")),
        None if digits.is_empty() => None,
        None => Some(digits),
    }
}

/// The digits of a whole part, its thousands separators (one kind: `,`, `.`, a space or an
/// apostrophe) taken out; `None` unless they stand between groups of three digits.
fn thousands(whole: &str) -> Option<String> {
    let Some(mark) = whole.chars().find(|c| !c.is_ascii_digit()) else {
        return Some(whole.to_owned());
    };
    let mut groups = whole.split(mark);
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 || !group.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_pass_as_typed_without_the_spaces() {
        assert_eq!(normalise("25").unwrap(), "25");
        assert_eq!(normalise("25.50").unwrap(), "25.50");
        assert_eq!(normalise(" 25.5 ").unwrap(), "25.5");
        assert_eq!(normalise("\t0.99\n").unwrap(), "0.99");
        assert_eq!(normalise(".5").unwrap(), "0.5");
    }

    #[test]
    fn a_dollar_sign_or_usd_is_dropped_wherever_it_stands() {
        assert_eq!(normalise("$25").unwrap(), "25");
        assert_eq!(normalise("$ 25.50").unwrap(), "25.50");
        assert_eq!(normalise("25$").unwrap(), "25");
        assert_eq!(normalise("US$ 40").unwrap(), "40");
        assert_eq!(normalise("40 USD").unwrap(), "40");
        assert_eq!(normalise("usd 40").unwrap(), "40");
    }

    #[test]
    fn a_decimal_comma_becomes_a_point() {
        assert_eq!(normalise("25,50").unwrap(), "25.50");
        assert_eq!(normalise("25,5").unwrap(), "25.5");
        assert_eq!(normalise("$25,50").unwrap(), "25.50");
        assert_eq!(normalise("1.250,75").unwrap(), "1250.75");
    }

    #[test]
    fn thousands_separators_are_taken_out() {
        assert_eq!(normalise("1,000").unwrap(), "1000");
        assert_eq!(normalise("1,250.00").unwrap(), "1250.00");
        assert_eq!(normalise("$1,000,000").unwrap(), "1000000");
        assert_eq!(normalise("1 000").unwrap(), "1000");
        assert_eq!(normalise("1.000.000").unwrap(), "1000000");
        assert_eq!(normalise("1'000.50").unwrap(), "1000.50");
    }

    #[test]
    fn a_count_loses_its_thousands_separators_and_keeps_the_rest_for_the_api() {
        assert_eq!(count(" 250 ").as_deref(), Some("250"));
        assert_eq!(count("1,000").as_deref(), Some("1000"));
        assert_eq!(count("100 000").as_deref(), Some("100000"));
        assert_eq!(count("1.000").as_deref(), Some("1000"));
        assert_eq!(count("2.5").as_deref(), Some("2.5"));
        assert_eq!(count("-5").as_deref(), Some("-5"));
        assert_eq!(count("lots").as_deref(), Some("lots"));
        assert_eq!(count("   "), None);
    }

    #[test]
    fn rules_about_the_amount_are_left_to_the_api() {
        // Numbers all the same: the API says what is wrong with them, in its words.
        assert_eq!(normalise("-5").unwrap(), "-5");
        assert_eq!(normalise("$-5").unwrap(), "-5");
        assert_eq!(normalise("-$5").unwrap(), "-5");
        assert_eq!(normalise("0").unwrap(), "0");
        assert_eq!(normalise("25.555").unwrap(), "25.555");
        assert_eq!(normalise("1.000").unwrap(), "1.000");
        assert_eq!(normalise("2000000").unwrap(), "2000000");
    }

    #[test]
    fn what_is_not_a_number_is_refused_here() {
        for typed in [
            "",
            "   ",
            "$",
            "abc",
            "25 dollars",
            "25.50.10",
            "1,00,000",
            "12,34.5",
            "25 50",
            "25,",
            "25.",
            "€25",
            "25e3",
            "0x19",
            "--5",
            "25-",
            "$$25",
        ] {
            assert_eq!(normalise(typed), Err(NotAPrice), "{typed:?}");
        }
    }
}
