//! Prices: integer cents inside, a JSON number with at most two decimals outside.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in integer cents. Serialised as a JSON number (`1999` cents → `19.99`),
/// never computed in floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub i64);

impl Cents {
    /// Renders the amount as a decimal string with no trailing zeros: `19.9`, `20`, `0.05`.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (units, cents) = (abs / 100, abs % 100);
        match cents {
            0 => format!("{sign}{units}"),
            c if c % 10 == 0 => format!("{sign}{units}.{}", c / 10),
            c => format!("{sign}{units}.{c:02}"),
        }
    }

    /// Parses a decimal with at most two fractional digits (`"25.5"`, `"25.50"`, `"3"`).
    /// Returns `None` for anything else, including more decimals or a non-number.
    pub fn parse_decimal(s: &str) -> Option<Cents> {
        let s = s.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (units, fraction) = match digits.split_once('.') {
            Some((u, f)) => (u, f),
            None => (digits, ""),
        };
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (units.is_empty() && fraction.is_empty())
            || fraction.len() > 2
            || !all_digits(units)
            || !all_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let units: i64 = if units.is_empty() {
            0
        } else {
            units.parse().ok()?
        };
        let fraction: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse().ok()?,
        };
        let cents = units.checked_mul(100)?.checked_add(fraction)?;
        Some(Cents(if negative { -cents } else { cents }))
    }
}

impl From<i64> for Cents {
    fn from(cents: i64) -> Self {
        Cents(cents)
    }
}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A JSON number with the exact decimal digits: go through the string form so no
        // binary floating point rounding can creep in.
        let number: serde_json::Number = self
            .to_decimal_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Cents::parse_decimal(&number.to_string())
            .ok_or_else(|| serde::de::Error::custom("a price with at most two decimals"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exact_decimals() {
        assert_eq!(Cents(1999).to_decimal_string(), "19.99");
        assert_eq!(Cents(1990).to_decimal_string(), "19.9");
        assert_eq!(Cents(2000).to_decimal_string(), "20");
        assert_eq!(Cents(5).to_decimal_string(), "0.05");
        assert_eq!(Cents(100_000_000).to_decimal_string(), "1000000");
    }

    #[test]
    fn parses_at_most_two_decimals() {
        assert_eq!(Cents::parse_decimal("25.50"), Some(Cents(2550)));
        assert_eq!(Cents::parse_decimal("25.5"), Some(Cents(2550)));
        assert_eq!(Cents::parse_decimal("3"), Some(Cents(300)));
        assert_eq!(Cents::parse_decimal(".5"), Some(Cents(50)));
        assert_eq!(Cents::parse_decimal("0.01"), Some(Cents(1)));
        assert_eq!(Cents::parse_decimal("-2"), Some(Cents(-200)));
        assert_eq!(Cents::parse_decimal("1.005"), None);
        assert_eq!(Cents::parse_decimal("1."), None);
        assert_eq!(Cents::parse_decimal("abc"), None);
        assert_eq!(Cents::parse_decimal(""), None);
        assert_eq!(Cents::parse_decimal("1e3"), None);
    }

    #[test]
    fn json_round_trip_is_exact() {
        for cents in [1, 10, 99, 1999, 2550, 100_000_000] {
            let json = serde_json::to_string(&Cents(cents)).unwrap();
            assert_eq!(
                serde_json::from_str::<Cents>(&json).unwrap(),
                Cents(cents),
                "{json}"
            );
        }
        assert_eq!(serde_json::to_string(&Cents(1999)).unwrap(), "19.99");
    }
}
