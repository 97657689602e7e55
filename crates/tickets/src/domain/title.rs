//! Ticket titles.

/// A title of 1–200 characters after trimming, without control or bidirectional override
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX: usize = 200;

    pub fn parse(raw: &str) -> Result<Title, &'static str> {
        let title = raw.trim();
        match title.chars().count() {
            0 => Err("Title is required"),
            n if n > Self::MAX => Err("Title must be at most 200 characters"),
            _ if ticketing_common::text::check(title, false).is_err() => {
                Err("Title must not contain control characters")
            }
            _ => Ok(Title(title.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_1_to_200_characters() {
        assert_eq!(Title::parse("  Concert  ").unwrap().as_str(), "Concert");
        assert!(Title::parse("").is_err());
        assert!(Title::parse("   ").is_err());
        assert!(
            Title::parse(&"é".repeat(200)).is_ok(),
            "characters, not bytes"
        );
        assert!(Title::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn control_and_override_characters_are_refused() {
        for bad in ["Con\0cert", "Con\ncert", "\u{202E}trecnoC", "Con\u{85}cert"] {
            assert_eq!(
                Title::parse(bad),
                Err("Title must not contain control characters"),
                "{bad:?}"
            );
        }
    }
}
