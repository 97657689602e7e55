//! The currency of every charge.

use std::{fmt, str::FromStr};

/// Currencies whose smallest unit is not a hundredth. A price of 1999 cents in one of these
/// would be charged as 1999 yen or 1.999 dinar, so they are refused at start-up.
const NOT_TWO_DECIMALS: [&str; 22] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf", "bhd", "jod", "kwd", "omr", "tnd", "isk",
];

/// A lower-case ISO 4217 code of a currency with two decimals, as Stripe spells it: `usd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency("usd".into())
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_lowercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!(
                "invalid currency {s:?}: use a three-letter ISO code such as usd"
            ));
        }
        if NOT_TWO_DECIMALS.contains(&code.as_str()) {
            return Err(format!(
                "currency {code} does not have two decimals; prices are kept in cents"
            ));
        }
        Ok(Currency(code))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_currencies_are_accepted_in_lower_case() {
        assert_eq!("usd".parse::<Currency>().unwrap().as_str(), "usd");
        assert_eq!("EUR".parse::<Currency>().unwrap().as_str(), "eur");
        assert_eq!(Currency::default().as_str(), "usd");
    }

    #[test]
    fn other_codes_and_currencies_without_cents_are_refused() {
        for bad in ["", "us", "dollar", "u$d", "jpy", "KWD"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad:?} accepted");
        }
    }
}
