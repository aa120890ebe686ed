//! The one JSON string escaper: status, `state show` and `probe` write their JSON by hand
//! (a few flat documents do not need a serializer in the binary).

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal: quotes, backslash and every control character
/// (U+0000–U+001F and U+007F) escaped; everything else as is (JSON text is UTF-8).
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal (see [`push_str`]).
#[must_use]
pub fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    push_str(&mut o, s);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslash_and_controls() {
        assert_eq!(
            string("a\"b\\c\nd\r\t\u{1}\u{7f}é"),
            "\"a\\\"b\\\\c\\nd\\r\\t\\u0001\\u007fé\""
        );
        let mut s = String::from("x");
        push_str(&mut s, "");
        assert_eq!(s, "x\"\"");
    }
}
