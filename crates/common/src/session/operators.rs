//! Operators: the users whose e-mails `ADMIN_EMAILS` lists (comma-separated, compared
//! case-insensitively). Decided at request time from the session's e-mail, so changing the
//! setting and restarting is enough; nothing about being an operator is stored anywhere.

use std::collections::HashSet;

/// The operators' e-mails, lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operators {
    emails: HashSet<String>,
}

impl Operators {
    /// Parses `ADMIN_EMAILS`: comma-separated e-mails; blanks around them and empty items are
    /// ignored. `None` or an empty list names nobody.
    pub fn parse(list: Option<&str>) -> Self {
        let emails = list
            .unwrap_or_default()
            .split(',')
            .map(|email| email.trim().to_lowercase())
            .filter(|email| !email.is_empty())
            .collect();
        Operators { emails }
    }

    /// Whether the user signed in with `email` is an operator.
    pub fn includes(&self, email: &str) -> bool {
        !self.emails.is_empty() && self.emails.contains(&email.trim().to_lowercase())
    }

    /// How many operators are named (for the start-up log).
    pub fn len(&self) -> usize {
        self.emails.len()
    }

    pub fn is_empty(&self) -> bool {
        self.emails.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_matched_case_insensitively_and_blanks_name_nobody() {
        let operators = Operators::parse(Some(" Ops@Example.com, ,second@example.com "));
        assert_eq!(operators.len(), 2);
        assert!(operators.includes("ops@example.com"));
        assert!(operators.includes("OPS@EXAMPLE.COM"));
        assert!(operators.includes("second@example.com"));
        assert!(!operators.includes("buyer@example.com"));
        assert!(!operators.includes(""));
        assert!(!Operators::parse(None).includes("ops@example.com"));
        assert!(Operators::parse(Some(" , ")).is_empty());
    }
}
