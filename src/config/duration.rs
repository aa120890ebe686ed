//! Durations as written in the config file: `"500ms"`, `"2s"`, `"10m"`, `"1h30m"`.

use std::time::Duration;

/// Parses a duration: one or more `<integer><unit>` parts with unit `ms`, `s`, `m`, `h` or
/// `d`, e.g. `"500ms"`, `"5s"`, `"1m30s"`. No fractions (write `"1500ms"`), no signs.
///
/// # Errors
/// A message saying what is wrong, meant to follow the field name.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. \"5s\", \"500ms\", \"10m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration; write e.g. \"5s\", \"500ms\", \"10m\", \"1h30m\""
            ));
        }
        let (num, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{text:?}: number {num} is too large"))?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            "" if after.starts_with('.') => {
                return Err(format!(
                    "{text:?}: fractions are not supported; use a smaller unit (\"1500ms\")"
                ));
            }
            "" => {
                return Err(format!(
                    "{text:?} has no unit; write e.g. \"{num}s\" or \"{num}ms\""
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                ));
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{text:?} is too large"))?;
        rest = after;
    }
    Ok(total)
}

/// Formats a duration the way the config file writes it (`"1m30s"`, `"500ms"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for (input, needle) in [
            ("", "empty"),
            ("5", "no unit"),
            ("1.5s", "fractions"),
            ("5 s", "no unit"),
            ("5sec", "unknown unit"),
            ("-1s", "not a duration"),
            ("s", "not a duration"),
            ("99999999999999999999s", "too large"),
            ("999999999999999999h", "too large"),
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in ["1h2m3s", "10s", "2m"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
