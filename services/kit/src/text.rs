//! Rules for the free text people type into Jiesu, the same at every entry point.

/// Whether `text` holds a character that must not reach a record, a log line or a terminal:
/// a control character (CR, ESC, BEL, …) or a Unicode line/paragraph separator or
/// right-to-left override. A free text (`multiline`: a description, a reply, a comment) may
/// hold line breaks and tabs; a one-line field (a title, a name) may not.
pub fn has_control(text: &str, multiline: bool) -> bool {
    text.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t')) || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}'))
}

#[cfg(test)]
mod tests {
    use super::has_control;

    #[test]
    fn one_line_fields_refuse_every_control_character_free_texts_keep_line_breaks() {
        for bad in ["a\rb", "a\u{1b}[31m", "\u{7}", "a\u{0}b", "a\u{2028}b", "a\u{202e}b", "a\u{85}b"] {
            assert!(has_control(bad, false), "{bad:?}");
            assert!(has_control(bad, true), "{bad:?} in a free text");
        }
        for line_break in ["a\nb", "a\tb"] {
            assert!(has_control(line_break, false), "{line_break:?}");
            assert!(!has_control(line_break, true), "{line_break:?} in a free text");
        }
        assert!(!has_control("小区门口路灯不亮 (3号楼)", false));
    }
}
