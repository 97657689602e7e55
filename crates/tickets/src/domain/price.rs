//! Ticket prices: a JSON number or a numeric string, > 0, ≤ 1,000,000, at most two decimals.

use serde_json::Value;
use ticketing_events::Cents;

/// The highest price, in cents.
pub const MAX_CENTS: i64 = 100_000_000;

/// Parses a price from its JSON value into exact cents.
pub fn parse_price(value: &Value) -> Result<Cents, &'static str> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        Value::Null => return Err("Price is required"),
        _ => return Err("Price must be a number"),
    };
    // serde_json renders large or tiny floats in exponent form; refuse those plainly.
    let cents = Cents::parse_decimal(&text).ok_or(if looks_numeric(&text) {
        "Price must have at most two decimals"
    } else {
        "Price must be a number"
    })?;
    if cents.0 <= 0 {
        return Err("Price must be greater than 0");
    }
    if cents.0 > MAX_CENTS {
        return Err("Price must be at most 1000000");
    }
    Ok(cents)
}

fn looks_numeric(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_and_numeric_strings_become_exact_cents() {
        assert_eq!(parse_price(&json!(19.99)), Ok(Cents(1999)));
        assert_eq!(parse_price(&json!("25.50")), Ok(Cents(2550)));
        assert_eq!(parse_price(&json!(10)), Ok(Cents(1000)));
        assert_eq!(parse_price(&json!(0.01)), Ok(Cents(1)));
        assert_eq!(parse_price(&json!(1_000_000)), Ok(Cents(MAX_CENTS)));
        assert_eq!(parse_price(&json!(1e3)), Ok(Cents(100_000)));
    }

    #[test]
    fn out_of_range_or_too_precise_prices_are_refused_with_a_reason() {
        assert_eq!(parse_price(&json!(0)), Err("Price must be greater than 0"));
        assert_eq!(parse_price(&json!(-5)), Err("Price must be greater than 0"));
        assert_eq!(
            parse_price(&json!(1_000_000.01)),
            Err("Price must be at most 1000000")
        );
        assert_eq!(
            parse_price(&json!(1.005)),
            Err("Price must have at most two decimals")
        );
        assert_eq!(parse_price(&json!("abc")), Err("Price must be a number"));
        assert_eq!(parse_price(&json!(true)), Err("Price must be a number"));
        assert_eq!(parse_price(&Value::Null), Err("Price is required"));
        assert_eq!(parse_price(&json!("")), Err("Price must be a number"));
    }
}
