//! Parsed e-mail addresses and passwords. Once parsed, code stops checking.

use std::fmt;

/// A plausible e-mail address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("Email must be valid");
        };
        let valid = !local.is_empty()
            && email.len() <= 254
            && local.len() <= 64
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if valid {
            Ok(Email(email))
        } else {
            Err("Email must be valid")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password of 4–20 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 4;
    pub const MAX: usize = 20;

    pub fn parse(raw: &str) -> Result<Password, &'static str> {
        let length = raw.chars().count();
        if (Self::MIN..=Self::MAX).contains(&length) {
            Ok(Password(raw.to_owned()))
        } else {
            Err("Password must be between 4 and 20 characters")
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn implausible_emails_are_refused() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "an n@example.com",
            "ann@@example.com",
            "ann@.example.com",
            "ann@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_are_4_to_20_characters() {
        assert!(Password::parse("abc").is_err());
        assert!(Password::parse("abcd").is_ok());
        assert!(Password::parse(&"x".repeat(20)).is_ok());
        assert!(Password::parse(&"x".repeat(21)).is_err());
        assert!(Password::parse("ééééé").is_ok(), "characters, not bytes");
        assert_eq!(
            format!("{:?}", Password::parse("secret").unwrap()),
            "Password([redacted])"
        );
    }
}
