//! PII redaction for display: a project's [`Rules`] (stored as JSON) and
//! the compiled [`Redactor`] that returns redacted copies of JSON values.
//!
//! Redaction happens where data leaves the API for people (run detail,
//! events, live frames, delivery logs); the engine always works on the raw
//! values. Built-in rules, each switchable:
//!
//! - **emails** -> `[redacted:email]`;
//! - **card numbers**: 13 to 19 digits, optionally grouped with spaces or
//!   dashes, *and* passing the Luhn check (a 16-digit order number that
//!   fails it is kept) -> `[redacted:card]`; JSON numbers too;
//! - **tokens**: `Bearer`/`Basic` credentials, well-known key formats
//!   (Stripe `sk_live_...`, GitHub `ghp_...`, Slack `xoxb-...`, AWS
//!   `AKIA...`, JWTs, MeshHook's own `mh_...` keys, ...), `api_key=...`
//!   style assignments in text, and string values under credential-named
//!   keys (`api_key`, `password`, `authorization`, ...) -> `[redacted:token]`.
//!
//! Plus custom **keys** (the value under a key equal to one of them,
//! case-insensitively, at any depth, is replaced whole by `[redacted]`) and
//! custom **patterns** (regular expressions; each match becomes
//! `[redacted]`). Object keys are redacted like strings too (an email used
//! as a map key).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Replacement of an email address.
pub const EMAIL: &str = "[redacted:email]";
/// Replacement of a card number.
pub const CARD: &str = "[redacted:card]";
/// Replacement of a token or API key.
pub const TOKEN: &str = "[redacted:token]";
/// Replacement of a custom key's value or a custom pattern's match.
pub const CUSTOM: &str = "[redacted]";

/// At most this many custom keys.
pub const MAX_KEYS: usize = 100;
/// At most this many custom patterns.
pub const MAX_PATTERNS: usize = 50;
/// A custom key or pattern is at most this many characters.
pub const MAX_RULE_CHARS: usize = 500;
/// Compiled size limit of one custom pattern, in bytes.
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// Nesting deeper than this is replaced whole (values that deep come only
/// from hostile input; it bounds the recursion).
const MAX_DEPTH: usize = 128;

/// A project's redaction rules, as stored and as the API speaks them.
/// Missing fields take their defaults: everything built in is on, no
/// custom keys or patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Master switch: `false` shows everything raw.
    pub enabled: bool,
    /// Email addresses.
    pub emails: bool,
    /// Card numbers that pass the Luhn check.
    pub card_numbers: bool,
    /// Bearer tokens, API keys and credential-named values.
    pub tokens: bool,
    /// JSON keys whose values are replaced whole (case-insensitive, any depth).
    pub keys: Vec<String>,
    /// Regular expressions (Rust `regex` syntax) whose matches are replaced.
    pub patterns: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            enabled: true,
            emails: true,
            card_numbers: true,
            tokens: true,
            keys: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

/// One problem with a set of rules, at a JSON pointer into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// e.g. `/patterns/2`.
    pub path: String,
    pub message: String,
}

impl Rules {
    /// Checks and compiles the rules; every problem is reported with its
    /// path.
    pub fn compile(&self) -> Result<Redactor, Vec<Issue>> {
        let mut issues = Vec::new();
        if self.keys.len() > MAX_KEYS {
            issues.push(Issue {
                path: "/keys".into(),
                message: format!("at most {MAX_KEYS} keys"),
            });
        }
        if self.patterns.len() > MAX_PATTERNS {
            issues.push(Issue {
                path: "/patterns".into(),
                message: format!("at most {MAX_PATTERNS} patterns"),
            });
        }
        let mut keys = HashSet::new();
        for (i, key) in self.keys.iter().enumerate() {
            if key.trim().is_empty() {
                issues.push(Issue {
                    path: format!("/keys/{i}"),
                    message: "must not be empty".into(),
                });
            } else if key.chars().count() > MAX_RULE_CHARS {
                issues.push(Issue {
                    path: format!("/keys/{i}"),
                    message: format!("must be at most {MAX_RULE_CHARS} characters"),
                });
            } else {
                keys.insert(key.to_lowercase());
            }
        }
        let mut patterns = Vec::with_capacity(self.patterns.len());
        for (i, pattern) in self.patterns.iter().enumerate() {
            let path = format!("/patterns/{i}");
            if pattern.is_empty() {
                issues.push(Issue {
                    path,
                    message: "must not be empty".into(),
                });
                continue;
            }
            if pattern.chars().count() > MAX_RULE_CHARS {
                issues.push(Issue {
                    path,
                    message: format!("must be at most {MAX_RULE_CHARS} characters"),
                });
                continue;
            }
            match RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
            {
                Ok(re) if re.is_match("") => issues.push(Issue {
                    path,
                    message: "must not match the empty string".into(),
                }),
                Ok(re) => patterns.push(re),
                Err(e) => issues.push(Issue {
                    path,
                    message: format!("invalid regular expression: {e}"),
                }),
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Redactor {
            enabled: self.enabled,
            emails: self.emails,
            cards: self.card_numbers,
            tokens: self.tokens,
            keys,
            patterns,
        })
    }
}

/// Compiled rules. [`Redactor::redact`] returns a redacted copy of a value.
#[derive(Debug, Clone)]
pub struct Redactor {
    enabled: bool,
    emails: bool,
    cards: bool,
    tokens: bool,
    /// Lowercased custom keys.
    keys: HashSet<String>,
    patterns: Vec<Regex>,
}

impl Default for Redactor {
    /// The default rules, compiled.
    fn default() -> Self {
        Redactor {
            enabled: true,
            emails: true,
            cards: true,
            tokens: true,
            keys: HashSet::new(),
            patterns: Vec::new(),
        }
    }
}

impl Redactor {
    /// A redactor that changes nothing.
    pub fn off() -> Self {
        Redactor {
            enabled: false,
            emails: false,
            cards: false,
            tokens: false,
            keys: HashSet::new(),
            patterns: Vec::new(),
        }
    }

    /// `true` when no rule can change anything: callers skip the walk.
    pub fn is_noop(&self) -> bool {
        !self.enabled
            || !(self.emails
                || self.cards
                || self.tokens
                || !self.keys.is_empty()
                || !self.patterns.is_empty())
    }

    /// A redacted copy of `value`.
    pub fn redact(&self, value: &Value) -> Value {
        let mut v = value.clone();
        self.redact_in_place(&mut v);
        v
    }

    /// Redacts `value` where it is.
    pub fn redact_in_place(&self, value: &mut Value) {
        if self.is_noop() {
            return;
        }
        self.walk(value, 0);
    }

    /// A redacted copy of a piece of text (borrowed when nothing matched).
    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_noop() {
            return Cow::Borrowed(text);
        }
        self.text(text)
    }

    /// Redacts an optional text where it is.
    pub fn redact_string(&self, text: &mut String) {
        if let Some(s) = owned(self.redact_str(text)) {
            *text = s;
        }
    }

    fn walk(&self, value: &mut Value, depth: usize) {
        if depth > MAX_DEPTH {
            *value = Value::String(CUSTOM.into());
            return;
        }
        match value {
            Value::String(s) => {
                if let Some(r) = owned(self.text(s)) {
                    *s = r;
                }
            }
            Value::Number(n) => {
                if self.cards
                    && let Some(u) = n.as_u64()
                    && is_card_digits(&u.to_string())
                {
                    *value = Value::String(CARD.into());
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, depth + 1);
                }
            }
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if !self.keys.is_empty() && self.keys.contains(&key.to_lowercase()) {
                        *v = Value::String(CUSTOM.into());
                    } else if self.tokens
                        && v.as_str().is_some_and(|s| !s.contains("{{"))
                        && is_credential_key(key)
                    {
                        // A template (`Bearer {{ secrets.API_TOKEN }}`, as
                        // recorded requests keep it) is symbolic: it goes
                        // through the text rules below instead.
                        *v = Value::String(TOKEN.into());
                    } else {
                        self.walk(v, depth + 1);
                    }
                }
                // Keys are text too; rebuild only the ones that change.
                let renamed: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|k| match self.text(k) {
                        Cow::Owned(new) => Some((k.clone(), new)),
                        Cow::Borrowed(_) => None,
                    })
                    .collect();
                for (old, new) in renamed {
                    if let Some(v) = map.remove(&old) {
                        let new = unique_key(map, new);
                        map.insert(new, v);
                    }
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if self.tokens {
            for (re, with) in TOKEN_RULES.iter() {
                replace(&mut out, re, with);
            }
        }
        if self.emails {
            replace(&mut out, &EMAIL_RE, EMAIL);
        }
        if self.cards && out.bytes().filter(u8::is_ascii_digit).count() >= 13 {
            let replaced = owned(CARD_RE.replace_all(&out, |c: &regex::Captures<'_>| {
                let m = &c[0];
                if is_card_digits(m) {
                    CARD.to_owned()
                } else {
                    m.to_owned()
                }
            }));
            if let Some(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        for re in &self.patterns {
            replace(&mut out, re, CUSTOM);
        }
        out
    }
}

/// Replaces every match of `re` in `text` with `with` (`$name` groups
/// expand), allocating only when something matched.
fn replace(text: &mut Cow<'_, str>, re: &Regex, with: &str) {
    if let Some(s) = owned(re.replace_all(text, with)) {
        *text = Cow::Owned(s);
    }
}

/// The new text when a replacement changed something.
fn owned(text: Cow<'_, str>) -> Option<String> {
    match text {
        Cow::Owned(s) => Some(s),
        Cow::Borrowed(_) => None,
    }
}

/// `key`, or `key #2`, `key #3`... when a redacted key collides.
fn unique_key(map: &Map<String, Value>, key: String) -> String {
    if !map.contains_key(&key) {
        return key;
    }
    (2..)
        .map(|n| format!("{key} #{n}"))
        .find(|k| !map.contains_key(k))
        .unwrap_or(key)
}

/// 13 to 19 digits (separators ignored) starting with 2 to 6 (the ranges
/// of every major card network; it keeps millisecond timestamps, which
/// start with 1, from being taken for cards) and passing the Luhn check.
fn is_card_digits(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    (13..=19).contains(&digits.len())
        && digits.first().is_some_and(|d| (2..=6).contains(d))
        && luhn(&digits)
}

/// The Luhn checksum over decimal digits (most significant first).
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if !i.is_multiple_of(2) {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Key names whose string values are credentials, compared after
/// lowercasing and dropping `-`, `_` and spaces.
fn is_credential_key(key: &str) -> bool {
    const NAMES: &[&str] = &[
        "apikey",
        "xapikey",
        "apisecret",
        "apitoken",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "sessiontoken",
        "bearertoken",
        "token",
        "secret",
        "secretkey",
        "clientsecret",
        "privatekey",
        "password",
        "passwd",
        "authorization",
        "proxyauthorization",
        "xauthtoken",
        "cookie",
        "setcookie",
    ];
    if key.len() > 32 {
        return false;
    }
    let norm: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    NAMES.contains(&norm.as_str())
}

#[allow(clippy::expect_used)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in redaction patterns compile")
}

static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}",
    )
});

/// Candidate card numbers: 13 to 19 digits, single spaces or dashes
/// between them, not glued to other digits or letters.
static CARD_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ \-]?\d){12,18}\b"));

/// Token rules in order: (pattern, replacement).
static TOKEN_RULES: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    vec![
        // Authorization schemes: keep the scheme, hide the credential.
        (
            re(r"(?i)\b(bearer|basic)\s+[a-z0-9\-._~+/]{8,}=*"),
            format!("$1 {TOKEN}"),
        ),
        // `api_key=...`, `"password": "..."`, `secret: ...` in text.
        (
            re(
                r#"(?i)\b((?:x[_\-]?)?api[_\-]?key|api[_\-]?secret|access[_\-]?token|refresh[_\-]?token|client[_\-]?secret|secret[_\-]?key|auth[_\-]?token|password|passwd|secret|token)(["']?\s*[:=]\s*["']?)[^\s"'&,;]{6,}"#,
            ),
            format!("$1$2{TOKEN}"),
        ),
        // JSON Web Tokens.
        (
            re(r"\beyJ[a-zA-Z0-9_\-]{8,}\.[a-zA-Z0-9_\-]{8,}\.[a-zA-Z0-9_\-]{8,}"),
            TOKEN.to_owned(),
        ),
        // Well-known key formats.
        (
            re(concat!(
                r"\b(?:",
                r"(?:sk|pk|rk)_(?:live|test)_[a-zA-Z0-9]{10,}",
                r"|whsec_[a-zA-Z0-9+/=]{16,}",
                r"|sk-[a-zA-Z0-9_\-]{20,}",
                r"|gh[pousr]_[a-zA-Z0-9]{30,}",
                r"|github_pat_[a-zA-Z0-9_]{22,}",
                r"|glpat-[a-zA-Z0-9_\-]{20,}",
                r"|xox[abprse]-[a-zA-Z0-9\-]{10,}",
                r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
                r"|AIza[0-9A-Za-z_\-]{35}",
                r"|mh_[a-zA-Z0-9_\-]{40,}",
                r")"
            )),
            TOKEN.to_owned(),
        ),
    ]
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d() -> Redactor {
        Rules::default().compile().expect("defaults compile")
    }

    fn digits(s: &str) -> Vec<u32> {
        s.chars().filter_map(|c| c.to_digit(10)).collect()
    }

    #[test]
    fn luhn_accepts_valid_and_refuses_invalid_numbers() {
        for ok in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "4012888888881881",
            "79927398713",
        ] {
            assert!(luhn(&digits(ok)), "{ok}");
        }
        for bad in ["4111111111111112", "1234567812345678", "79927398710", ""] {
            assert!(!luhn(&digits(bad)), "{bad}");
        }
    }

    #[test]
    fn card_numbers_are_redacted_only_when_luhn_valid() {
        let r = d();
        assert_eq!(
            r.redact_str("card 4111 1111 1111 1111 ok"),
            "card [redacted:card] ok"
        );
        assert_eq!(r.redact_str("4111-1111-1111-1111"), CARD);
        assert_eq!(r.redact_str("4111111111111111"), CARD);
        assert_eq!(
            r.redact_str("amex 378282246310005."),
            "amex [redacted:card]."
        );
        // 16 digits failing Luhn: an order number, kept.
        assert_eq!(
            r.redact_str("order 1234567812345678"),
            "order 1234567812345678"
        );
        assert_eq!(r.redact_str("4111111111111112"), "4111111111111112");
        // Too short or glued to letters: kept.
        assert_eq!(r.redact_str("411111111111"), "411111111111");
        assert_eq!(r.redact_str("x4111111111111111"), "x4111111111111111");
        // Millisecond timestamps (leading 1) are never cards, Luhn or not.
        assert!(luhn(&digits("1700000000004")));
        assert_eq!(r.redact_str("at 1700000000004"), "at 1700000000004");
        // JSON numbers too.
        assert_eq!(
            r.redact(&json!({"n": 4111111111111111_u64, "m": 1234567812345678_u64, "k": 42})),
            json!({"n": CARD, "m": 1234567812345678_u64, "k": 42})
        );
    }

    #[test]
    fn emails_are_redacted() {
        let r = d();
        assert_eq!(
            r.redact_str("mail Jane.Doe+x@Example.co.uk now"),
            "mail [redacted:email] now"
        );
        assert_eq!(r.redact_str("not an email: a@b"), "not an email: a@b");
    }

    #[test]
    fn tokens_and_api_keys_are_redacted() {
        let r = d();
        assert_eq!(
            r.redact_str("Authorization: Bearer abc.DEF-123_456"),
            "Authorization: Bearer [redacted:token]"
        );
        for key in [
            "sk_live_51HxYzAbCdEfGhIjKlMn",
            "ghp_0123456789abcdefghij0123456789abcdef",
            "xoxb-1234567890-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(
                r.redact_str(&format!("k={key} end")),
                "k=[redacted:token] end",
                "{key}"
            );
        }
        assert_eq!(
            r.redact_str("https://x.test/?api_key=abcdef123456&page=2"),
            "https://x.test/?api_key=[redacted:token]&page=2"
        );
        assert_eq!(
            r.redact(&json!({"headers": {"X-Api-Key": "short1", "tokens": 12, "Authorization": "Basic dXNlcjpwYXNz"}})),
            json!({"headers": {"X-Api-Key": TOKEN, "tokens": 12, "Authorization": TOKEN}})
        );
        // Templated credentials stay symbolic (secrets are never recorded).
        assert_eq!(
            r.redact(&json!({"Authorization": "Bearer {{ secrets.API_TOKEN }}"})),
            json!({"Authorization": "Bearer {{ secrets.API_TOKEN }}"})
        );
        // Ordinary prose is kept.
        assert_eq!(
            r.redact_str("the token expired, ask again"),
            "the token expired, ask again"
        );
    }

    #[test]
    fn nested_values_keys_and_arrays_are_covered() {
        let r = d();
        let v = json!({
            "a": [{"b": {"c": "pay with 4111 1111 1111 1111"}}, "x@y.io", null, true, 1.5],
            "bob@example.com": {"n": 1},
            "plain": "hello"
        });
        assert_eq!(
            r.redact(&v),
            json!({
                "a": [{"b": {"c": "pay with [redacted:card]"}}, EMAIL, null, true, 1.5],
                EMAIL: {"n": 1},
                "plain": "hello"
            })
        );
    }

    #[test]
    fn colliding_redacted_keys_are_kept_apart() {
        let r = d();
        let out = r.redact(&json!({"a@b.io": 1, "c@d.io": 2}));
        let obj = out.as_object().expect("an object");
        assert_eq!(obj.len(), 2);
        assert!(obj.contains_key(EMAIL) && obj.contains_key("[redacted:email] #2"));
    }

    #[test]
    fn custom_keys_replace_whole_values_case_insensitively() {
        let rules: Rules =
            serde_json::from_value(json!({"keys": ["SSN", "profile"]})).expect("rules parse");
        let r = rules.compile().expect("compiles");
        assert_eq!(
            r.redact(
                &json!({"user": {"ssn": "123-45-6789", "Profile": {"age": 3}, "name": "Ann"}})
            ),
            json!({"user": {"ssn": CUSTOM, "Profile": CUSTOM, "name": "Ann"}})
        );
    }

    #[test]
    fn custom_patterns_replace_matches() {
        let rules: Rules =
            serde_json::from_value(json!({"patterns": [r"\bEMP-\d{6}\b"]})).expect("rules parse");
        let r = rules.compile().expect("compiles");
        assert_eq!(
            r.redact(&json!(["id EMP-123456 and EMP-12345", {"k": "EMP-000001"}])),
            json!(["id [redacted] and EMP-12345", {"k": CUSTOM}])
        );
    }

    #[test]
    fn invalid_rules_are_reported_with_paths() {
        let rules: Rules = serde_json::from_value(json!({
            "keys": ["ok", " "],
            "patterns": ["fine", "(unclosed", "a*"]
        }))
        .expect("rules parse");
        let issues = rules.compile().expect_err("invalid");
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/keys/1", "/patterns/1", "/patterns/2"]);
        assert!(issues[1].message.contains("invalid regular expression"));
    }

    #[test]
    fn rules_shape_defaults_and_refuses_unknown_fields() {
        let rules: Rules = serde_json::from_value(json!({})).expect("empty is defaults");
        assert_eq!(rules, Rules::default());
        assert_eq!(
            serde_json::to_value(Rules::default()).expect("serialises"),
            json!({"enabled": true, "emails": true, "card_numbers": true, "tokens": true, "keys": [], "patterns": []})
        );
        assert!(serde_json::from_value::<Rules>(json!({"email": true})).is_err());
    }

    #[test]
    fn switches_turn_rules_off() {
        let text = "a@b.io 4111111111111111 Bearer abcdefghijkl";
        let off: Rules = serde_json::from_value(json!({"enabled": false})).expect("parse");
        let off = off.compile().expect("compiles");
        assert!(off.is_noop());
        assert_eq!(off.redact_str(text), text);
        assert_eq!(Redactor::off().redact(&json!(text)), json!(text));
        let only_cards: Rules =
            serde_json::from_value(json!({"emails": false, "tokens": false})).expect("parse");
        assert_eq!(
            only_cards.compile().expect("compiles").redact_str(text),
            "a@b.io [redacted:card] Bearer abcdefghijkl"
        );
        let none: Rules = serde_json::from_value(
            json!({"emails": false, "tokens": false, "card_numbers": false}),
        )
        .expect("parse");
        assert!(none.compile().expect("compiles").is_noop());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut v = json!("a@b.io");
        for _ in 0..(MAX_DEPTH + 10) {
            v = json!([v]);
        }
        let out = d().redact(&v);
        assert!(!out.to_string().contains("a@b.io"));
    }
}
