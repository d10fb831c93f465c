//! Display helpers: timestamps as "5 min ago" and as local date-times.

/// `ts` (RFC 3339) as "just now", "5 min ago", "3 days ago"...; the input
/// itself when it does not parse.
pub fn relative(ts: &str) -> String {
    match millis(ts) {
        Some(then) => ago((js_sys::Date::now() - then) / 1000.0).unwrap_or_else(|| local(ts)),
        None => ts.to_owned(),
    }
}

/// `ts` (RFC 3339) as a local `YYYY-MM-DD HH:MM:SS`.
pub fn local(ts: &str) -> String {
    let Some(ms) = millis(ts) else {
        return ts.to_owned();
    };
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date(),
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}

/// `ts` (RFC 3339) in milliseconds since the epoch, if it parses.
pub fn millis(ts: &str) -> Option<f64> {
    let ms = js_sys::Date::parse(ts);
    (!ms.is_nan()).then_some(ms)
}

/// A duration in the past, in words; `None` beyond four weeks (show the
/// date instead). Slightly negative ages (clock skew) count as now.
pub fn ago(seconds: f64) -> Option<String> {
    // Whole units are all that is shown: truncation is intended.
    #[allow(clippy::cast_possible_truncation)]
    let whole = |unit: f64| (seconds / unit).floor() as i64;
    Some(match seconds {
        s if s < 45.0 => "just now".to_owned(),
        s if s < 90.0 => "1 min ago".to_owned(),
        s if s < 3600.0 => format!("{} min ago", whole(60.0)),
        s if s < 7200.0 => "1 h ago".to_owned(),
        s if s < 86_400.0 => format!("{} h ago", whole(3600.0)),
        s if s < 172_800.0 => "yesterday".to_owned(),
        s if s < 28.0 * 86_400.0 => format!("{} days ago", whole(86_400.0)),
        _ => return None,
    })
}

/// A latency in milliseconds: `12 ms`, `1.4 s`.
pub fn latency(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// `s` escaped for HTML text and double-quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A share as a percentage: `75%`, `99.5%` (never rounded up to 100%).
pub fn percent(share: f64) -> String {
    let p = (share * 1000.0 + 1e-6).floor() / 10.0;
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A number of seconds in the largest whole-ish unit: `45 s`, `15 min`,
/// `1.5 h`, `7 d`.
pub fn duration(secs: f64) -> String {
    let (n, unit) = match secs {
        s if s < 60.0 => (s, "s"),
        s if s < 3600.0 => (s / 60.0, "min"),
        s if s < 86_400.0 => (s / 3600.0, "h"),
        s => (s / 86_400.0, "d"),
    };
    let n = format!("{n:.1}");
    format!("{} {unit}", n.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(-3.0).as_deref(), Some("just now"));
        assert_eq!(ago(10.0).as_deref(), Some("just now"));
        assert_eq!(ago(60.0).as_deref(), Some("1 min ago"));
        assert_eq!(ago(600.0).as_deref(), Some("10 min ago"));
        assert_eq!(ago(3.5 * 3600.0).as_deref(), Some("3 h ago"));
        assert_eq!(ago(30.0 * 3600.0).as_deref(), Some("yesterday"));
        assert_eq!(ago(5.0 * 86_400.0).as_deref(), Some("5 days ago"));
        assert_eq!(ago(60.0 * 86_400.0), None);
    }

    #[test]
    fn latencies() {
        assert_eq!(latency(12.4), "12 ms");
        assert_eq!(latency(1430.0), "1.4 s");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn percents_and_durations() {
        assert_eq!(percent(0.75), "75%");
        assert_eq!(percent(0.9996), "99.9%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(2.0 / 3.0), "66.6%");
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(900.0), "15 min");
        assert_eq!(duration(5400.0), "1.5 h");
        assert_eq!(duration(604_800.0), "7 d");
    }
}
