//! Free text made safe to print on a terminal: labels and phase names are not checked when they
//! are set, and a report read from a file may hold anything in any string.

use std::borrow::Cow;

/// `text` with its control characters escaped the way [`char::escape_debug`] writes them
/// (`\n`, `\t`, `\u{1b}`), and the Unicode line separators and bidirectional controls too, so
/// that a label or a name cannot start a line of its own, reorder the rest of the line, or send
/// an escape sequence to the terminal. Everything else, quotes and backslashes included, is
/// kept; text with nothing to escape is returned as is.
///
/// ```
/// # heapscope::install!();
/// assert_eq!(heapscope::escape_control("cat <<EOF\n\u{1b}[2J"), "cat <<EOF\\n\\u{1b}[2J");
/// assert_eq!(heapscope::escape_control("tool \"ls\""), "tool \"ls\"");
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Line and paragraph separators; the bidirectional marks, embeddings, overrides
            // and isolates (what "Trojan Source" uses to reorder a line).
            '\u{2028}' | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::escape_control;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_control("plain \"quoted\" \\ é"), "plain \"quoted\" \\ é");
        assert!(matches!(escape_control("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape_control("a\nb\r\tc\u{7f}\u{9b}"), "a\\nb\\r\\tc\\u{7f}\\u{9b}");
        assert_eq!(escape_control("x\u{202e}y\u{2028}"), "x\\u{202e}y\\u{2028}");
    }
}
