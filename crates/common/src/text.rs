//! The contract's rule for free text: no control characters (C0, DEL, C1, NUL among them) and
//! no bidirectional embedding, override or isolate characters, which can make a title read
//! differently from what it is; a multi-line field may hold line breaks and tabs.

/// Why a text was refused, for the field's message.
pub const CONTROL_CHARACTERS: &str = "must not contain control characters";

/// Whether `c` may appear in a text field (`multiline`: also `\n`, `\r` and `\t`).
pub fn allowed(c: char, multiline: bool) -> bool {
    let control = c.is_control(); // C0, DEL and C1
    let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let line_break = matches!(c, '\n' | '\r' | '\t');
    !(bidi || control && !(multiline && line_break))
}

/// `Ok` if every character of `text` is [`allowed`].
pub fn check(text: &str, multiline: bool) -> Result<(), &'static str> {
    if text.chars().all(|c| allowed(c, multiline)) {
        Ok(())
    } else {
        Err(CONTROL_CHARACTERS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_override_characters_are_refused() {
        for bad in [
            "a\0b",
            "tab\there",
            "line\nbreak",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
            "\u{202E}gnp.exe",
            "\u{2066}x\u{2069}",
        ] {
            assert_eq!(check(bad, false), Err(CONTROL_CHARACTERS), "{bad:?}");
        }
        for good in [
            "Concert",
            "Café « Nuit » — 20 €",
            "日本語",
            "emoji 🎫",
            "a\u{200D}b",
        ] {
            assert_eq!(check(good, false), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn a_multi_line_field_keeps_line_breaks_and_tabs_only() {
        assert_eq!(check("line one\r\nline two\tindented", true), Ok(()));
        assert_eq!(check("nul\0", true), Err(CONTROL_CHARACTERS));
        assert_eq!(check("\u{202E}", true), Err(CONTROL_CHARACTERS));
    }
}
