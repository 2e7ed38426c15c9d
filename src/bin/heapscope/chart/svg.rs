//! A minimal SVG writer: elements with escaped attributes and text, numbers rounded to a tenth
//! of a pixel. Nothing chart-specific lives here.

use std::fmt::{Display, Write};

/// `text` with the five XML special characters replaced by entities, and the characters XML 1.0
/// forbids (controls other than tab, newline and carriage return; U+FFFE, U+FFFF) by U+FFFD:
/// names come from files and may hold anything (an ANSI colour code in a phase name), and one
/// such character makes the whole document malformed, which browsers refuse to show.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\0'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with at most one decimal (`12`, `12.5`), which keeps files small.
pub(crate) fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded == rounded.trunc() {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

/// An SVG document under construction.
pub(crate) struct Svg {
    out: String,
}

/// An attribute list: names are literals, values are escaped when written.
pub(crate) type Attrs<'a> = &'a [(&'a str, &'a dyn Display)];

impl Svg {
    /// Starts a document of `width` × `height` pixels; `attrs` go on the root element.
    pub(crate) fn new(width: u32, height: u32, attrs: Attrs<'_>) -> Svg {
        let mut svg = Svg { out: String::with_capacity(64 * 1024) };
        svg.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let size = format!("0 0 {width} {height}");
        let mut root: Vec<(&str, &dyn Display)> = vec![
            ("xmlns", &"http://www.w3.org/2000/svg"),
            ("width", &width),
            ("height", &height),
            ("viewBox", &size),
        ];
        root.extend_from_slice(attrs);
        svg.open("svg", &root);
        svg
    }

    fn tag(&mut self, name: &str, attrs: Attrs<'_>) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            let _ = write!(self.out, " {key}=\"{}\"", escape(&value.to_string()));
        }
    }

    /// `<name …>`; close it with [`Svg::close`].
    pub(crate) fn open(&mut self, name: &str, attrs: Attrs<'_>) {
        self.tag(name, attrs);
        self.out.push_str(">\n");
    }

    /// `</name>`.
    pub(crate) fn close(&mut self, name: &str) {
        let _ = writeln!(self.out, "</{name}>");
    }

    /// `<name …/>`.
    pub(crate) fn leaf(&mut self, name: &str, attrs: Attrs<'_>) {
        self.tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name …>text</name>`, the text escaped.
    pub(crate) fn text(&mut self, name: &str, attrs: Attrs<'_>, text: &str) {
        self.tag(name, attrs);
        let _ = writeln!(self.out, ">{}</{name}>", escape(text));
    }

    /// `<title>text</title>`: the tooltip and accessible name of the enclosing element.
    pub(crate) fn title(&mut self, text: &str) {
        self.text("title", &[], text);
    }

    /// Closes the root element and returns the document.
    pub(crate) fn finish(mut self) -> String {
        self.close("svg");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(
            escape("\u{1b}[0m\t\u{0}\u{ffff}\u{fffd}"),
            "\u{fffd}[0m\t\u{fffd}\u{fffd}\u{fffd}"
        );
        let mut svg = Svg::new(10, 20, &[]);
        svg.text("text", &[("data-owner", &"x\"y")], "<owner>");
        let doc = svg.finish();
        assert!(doc.contains("<text data-owner=\"x&quot;y\">&lt;owner&gt;</text>"), "{doc}");
        assert!(doc.contains("viewBox=\"0 0 10 20\""), "{doc}");
        assert!(doc.ends_with("</svg>\n"));
    }

    #[test]
    fn numbers_keep_one_decimal_at_most() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.04), "12");
        assert_eq!(num(12.25), "12.3");
        assert_eq!(num(-0.5), "-0.5");
    }
}
