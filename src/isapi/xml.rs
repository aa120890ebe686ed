//! Minimal, tolerant XML field extraction: ISAPI answers are small flat documents and the
//! client needs a handful of leaf values from them, so no XML parser is linked.
//!
//! Tolerated: attributes on the element, namespace prefixes (`<hik:model>`), whitespace
//! around the text, CDATA, the five predefined entities and numeric character references.
//! Not supported (the field is then "absent"): nesting of the same element name.

/// The text of the first element named `name` (any namespace prefix), trimmed and with
/// entities decoded; `None` when absent or unterminated.
pub fn field(doc: &str, name: &str) -> Option<String> {
    let mut rest = doc;
    loop {
        let lt = rest.find('<')?;
        rest = &rest[lt + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let body_start = end + 1;
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            rest = &rest[body_start..];
            continue;
        }
        let tag_name = tag
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or(tag_name);
        if local != name {
            rest = &rest[body_start..];
            continue;
        }
        if tag.ends_with('/') {
            return Some(String::new());
        }
        let body = &rest[body_start..];
        let close = find_close(body, tag_name)?;
        return Some(decode(body[..close].trim()));
    }
}

/// Where `</tag_name>` starts in `body`.
fn find_close(body: &str, tag_name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = body.get(from..)?.find("</") {
        let at = from + i;
        let after = body.get(at + 2..)?;
        if let Some(rest) = after.strip_prefix(tag_name) {
            if rest.trim_start().starts_with('>') {
                return Some(at);
            }
        }
        from = at + 2;
    }
    None
}

/// A field parsed as an unsigned number.
pub fn field_u32(doc: &str, name: &str) -> Option<u32> {
    field(doc, name)?.parse().ok()
}

/// A field read as a boolean (`true`/`false`, any case).
pub fn field_bool(doc: &str, name: &str) -> Option<bool> {
    let v = field(doc, name)?;
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Decodes CDATA, the predefined entities and numeric references; unknown entities stay
/// as written.
fn decode(s: &str) -> String {
    if let Some(inner) = s
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an XML element body.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_attributes_prefixes_entities_and_cdata() {
        let doc = "<?xml version=\"1.0\"?>\n<DeviceInfo version=\"2.0\" xmlns=\"x\">\
                   <deviceName> cam &amp; co </deviceName><hik:model a='1'>DS&#x2D;1</hik:model>\
                   <serialNumber><![CDATA[S<1>]]></serialNumber><empty/><n>42</n><b>TRUE</b>\
                   </DeviceInfo>";
        assert_eq!(field(doc, "deviceName").as_deref(), Some("cam & co"));
        assert_eq!(field(doc, "model").as_deref(), Some("DS-1"));
        assert_eq!(field(doc, "serialNumber").as_deref(), Some("S<1>"));
        assert_eq!(field(doc, "empty").as_deref(), Some(""));
        assert_eq!(field_u32(doc, "n"), Some(42));
        assert_eq!(field_bool(doc, "b"), Some(true));
        assert_eq!(field(doc, "missing"), None);
        assert_eq!(field("<a>unterminated", "a"), None);
        assert_eq!(field("<a", "a"), None);
        assert_eq!(decode("&bogus; &#xzz; &"), "&bogus; &#xzz; &");
    }

    #[test]
    fn escape_round_trips() {
        let s = "a<b>&\"'";
        assert_eq!(
            field(&format!("<x>{}</x>", escape(s)), "x").as_deref(),
            Some(s)
        );
    }
}
