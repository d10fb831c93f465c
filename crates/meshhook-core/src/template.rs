//! `{{ expr }}` templates inside JSON strings.
//!
//! - A string that is exactly one `{{ expr }}` takes the expression's JSON
//!   value; with text around it, each `{{ expr }}` is interpolated as text
//!   (strings raw, `null` as nothing, anything else as compact JSON).
//! - Templates apply recursively to object values and array items; object
//!   keys are never templated.
//! - `{{ secrets.NAME }}` is symbolic: [`render`] keeps the reference text as
//!   written, and only [`resolve_secrets`] (called by the executor at send
//!   time) substitutes the value, so secrets never enter events.
//!
//! Rendered values are safe to resolve: any `{{` that comes from data (the
//! trigger payload, a step output) is escaped as `{{ '{{' }}`, so a payload
//! cannot smuggle in a `{{ secrets.NAME }}` of its own. [`resolve_secrets`]
//! undoes the escapes, which is why the executor must call it even for
//! requests without secrets.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::expr::{self, Expression};

/// The escaped form of a literal `{{` produced by data.
const ESCAPED_OPEN: &str = "{{ '{{' }}";
/// The escaped form of a lone `{` that would otherwise touch a `{{`.
const ESCAPED_BRACE: &str = "{{ '{' }}";

/// A template error: where (`path`, a JSON pointer inside the templated
/// value, `""` for the value itself; `position`, a character offset inside
/// that string) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// JSON pointer to the string inside the templated value.
    pub path: String,
    /// Character offset inside the string.
    pub position: usize,
    /// Human-readable reason.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

impl Error {
    fn at(position: usize, message: impl Into<String>) -> Self {
        Error {
            path: String::new(),
            position,
            message: message.into(),
        }
    }

    fn from_expr(e: expr::Error, offset: usize) -> Self {
        Error::at(e.position.unwrap_or(0) + offset, e.message)
    }

    fn under(mut self, prefix: &str) -> Self {
        self.path = format!("{prefix}{}", self.path);
        self
    }
}

/// A `{{ secrets.NAME }}` reference with no value available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret `{name}` is not defined")]
pub struct MissingSecret {
    /// The secret's name.
    pub name: String,
}

/// One piece of a scanned string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Text(&'a str),
    Expr {
        /// Between the braces.
        inner: &'a str,
        /// Character offset of `inner`.
        start: usize,
        /// The whole `{{ ... }}`.
        raw: &'a str,
    },
}

/// Splits `s` into text and `{{ }}` segments. An unclosed `{{` ends the scan:
/// the rest is returned as text together with an error.
fn scan(s: &str) -> (Vec<Segment<'_>>, Option<Error>) {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let byte = |i: usize| chars.get(i).map_or(s.len(), |c| c.0);
    let n = chars.len();
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < n {
        if chars[i].1 == '{' && i + 1 < n && chars[i + 1].1 == '{' {
            // The closing `}}` is the first one outside quotes and outside
            // `{...}` (multi-select hashes); if braces do not balance, the
            // first one outside quotes, so the expression's own syntax error
            // is what gets reported.
            let end = find_close(&chars, i + 2, true).or_else(|| find_close(&chars, i + 2, false));
            let Some(j) = end else {
                segments.push(Segment::Text(&s[text_start..]));
                return (
                    segments,
                    Some(Error::at(i, "`{{` is not closed by a matching `}}`")),
                );
            };
            if byte(i) > text_start {
                segments.push(Segment::Text(&s[text_start..byte(i)]));
            }
            segments.push(Segment::Expr {
                inner: &s[byte(i + 2)..byte(j)],
                start: i + 2,
                raw: &s[byte(i)..byte(j + 2)],
            });
            i = j + 2;
            text_start = byte(i);
        } else {
            i += 1;
        }
    }
    if text_start < s.len() {
        segments.push(Segment::Text(&s[text_start..]));
    }
    (segments, None)
}

/// The index of the `}}` closing a template whose inside starts at `from`.
fn find_close(chars: &[(usize, char)], from: usize, balance: bool) -> Option<usize> {
    let n = chars.len();
    let mut j = from;
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    while j < n {
        let c = chars[j].1;
        if let Some(q) = quote {
            if c == '\\' {
                j += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
        } else {
            match c {
                '\'' | '"' | '`' => quote = Some(c),
                '{' if balance => depth += 1,
                '}' if depth == 0 && j + 1 < n && chars[j + 1].1 == '}' => return Some(j),
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        j += 1;
    }
    None
}

/// Whether `name` is a valid secret name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The secret name if `inner` (the inside of `{{ }}`) is `secrets.NAME`.
fn secret_name(inner: &str) -> Option<&str> {
    inner
        .trim()
        .strip_prefix("secrets.")
        .filter(|name| is_secret_name(name))
}

/// A compiled part of a template string.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Secret { raw: String, name: String },
    Expr { expr: Expression, start: usize },
}

/// A compiled template string.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// Compiles one template string. Expressions that read `secrets` in any
/// other form than a bare `{{ secrets.NAME }}` are rejected, since secrets
/// are not part of the data expressions see.
pub fn compile(s: &str) -> Result<Template, Error> {
    let (segments, err) = scan(s);
    if let Some(err) = err {
        return Err(err);
    }
    let mut parts = Vec::with_capacity(segments.len());
    for seg in segments {
        match seg {
            Segment::Text(t) => parts.push(Part::Text(t.to_owned())),
            Segment::Expr { inner, start, raw } => {
                if let Some(name) = secret_name(inner) {
                    parts.push(Part::Secret {
                        raw: raw.to_owned(),
                        name: name.to_owned(),
                    });
                    continue;
                }
                let expr = expr::compile(inner).map_err(|e| Error::from_expr(e, start))?;
                if let Some(f) = expr::root_fields(&expr)
                    .into_iter()
                    .find(|f| f.path.first().is_some_and(|p| p == "secrets"))
                {
                    return Err(Error::at(
                        start + f.position,
                        "a secret can only be used on its own, as `{{ secrets.NAME }}`",
                    ));
                }
                parts.push(Part::Expr { expr, start });
            }
        }
    }
    Ok(Template { parts })
}

impl Template {
    /// Whether the template contains no `{{ }}` at all.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The names of the secrets it references.
    pub fn secret_refs(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// The compiled expressions it contains (secret references excluded).
    pub fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr { expr, .. } => Some(expr),
            _ => None,
        })
    }

    /// Renders against `ctx`. See the module docs for the rules.
    pub fn render(&self, ctx: &Value) -> Result<Value, Error> {
        match self.parts.as_slice() {
            [Part::Expr { expr, start }] => {
                let value = expr::search(expr, ctx).map_err(|e| Error::from_expr(e, *start))?;
                Ok(escape_value(value))
            }
            [Part::Secret { raw, .. }] => Ok(Value::String(raw.clone())),
            parts => {
                // Pieces are (text, trusted). Trusted pieces are config text and
                // secret references; data is untrusted and gets escaped.
                let mut out = String::new();
                let mut untrusted = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => untrusted_flush_then(&mut out, &mut untrusted, false, t),
                        Part::Secret { raw, .. } => {
                            untrusted_flush_then(&mut out, &mut untrusted, true, raw);
                        }
                        Part::Expr { expr, start } => {
                            let value =
                                expr::search(expr, ctx).map_err(|e| Error::from_expr(e, *start))?;
                            untrusted.push_str(&to_text(&value));
                        }
                    }
                }
                out.push_str(&escape_text(&untrusted, false));
                Ok(Value::String(out))
            }
        }
    }
}

/// Appends the pending untrusted text (escaped) and then the trusted `next`.
fn untrusted_flush_then(out: &mut String, untrusted: &mut String, secret: bool, next: &str) {
    if !untrusted.is_empty() {
        // Config text never starts with `{{`, but a secret reference does.
        out.push_str(&escape_text(untrusted, secret || next.starts_with('{')));
        untrusted.clear();
    }
    out.push_str(next);
}

/// Escapes every `{{` (left to right), and a trailing lone `{` when the next
/// piece starts with `{`.
fn escape_text(s: &str, brace_follows: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        out.push_str(ESCAPED_OPEN);
        rest = &rest[i + 2..];
    }
    match rest.strip_suffix('{') {
        Some(head) if brace_follows => {
            out.push_str(head);
            out.push_str(ESCAPED_BRACE);
        }
        _ => out.push_str(rest),
    }
    out
}

/// Escapes every string inside a value produced by an expression.
fn escape_value(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('{') => Value::String(escape_text(&s, false)),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_value).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, escape_value(v))).collect())
        }
        other => other,
    }
}

/// How an interpolated value reads inside text: strings raw, `null` as
/// nothing, anything else as compact JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders one string (see the module docs).
pub fn render_str(s: &str, ctx: &Value) -> Result<Value, Error> {
    if !s.contains("{{") {
        return Ok(Value::String(s.to_owned()));
    }
    compile(s)?.render(ctx)
}

/// Renders one string and reads the result as text (for URLs, headers and
/// query parameters).
pub fn render_text(s: &str, ctx: &Value) -> Result<String, Error> {
    render_str(s, ctx).map(|v| to_text(&v))
}

/// Renders every string inside `value`, recursively (keys untouched).
pub fn render(value: &Value, ctx: &Value) -> Result<Value, Error> {
    match value {
        Value::String(s) => render_str(s, ctx),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| render(v, ctx).map_err(|e| e.under(&format!("/{i}"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                render(v, ctx)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| e.under(&format!("/{}", pointer_escape(k))))
            })
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Every template error inside `value` (for validation), with paths.
pub fn check(value: &Value) -> Vec<Error> {
    let mut errors = Vec::new();
    check_into(value, "", &mut errors);
    errors
}

fn check_into(value: &Value, path: &str, errors: &mut Vec<Error>) {
    match value {
        Value::String(s) => {
            if let Err(e) = compile(s) {
                errors.push(e.under(path));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_into(v, &format!("{path}/{i}"), errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                check_into(v, &format!("{path}/{}", pointer_escape(k)), errors);
            }
        }
        _ => {}
    }
}

/// Names of all `{{ secrets.NAME }}` references inside `value` (a template
/// or a rendered value).
pub fn secret_refs(value: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    visit_strings(value, &mut |s| {
        for seg in scan(s).0 {
            if let Segment::Expr { inner, .. } = seg
                && let Some(name) = secret_name(inner)
            {
                names.insert(name.to_owned());
            }
        }
    });
    names
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// Substitutes `{{ secrets.NAME }}` references in a rendered value with
/// `lookup(NAME)`, and undoes the escapes [`render`] added. Only the
/// executor calls this, right before sending.
pub fn resolve_secrets(
    value: &Value,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<Value, MissingSecret> {
    resolve_value(value, &mut lookup)
}

fn resolve_value(
    value: &Value,
    lookup: &mut impl FnMut(&str) -> Option<String>,
) -> Result<Value, MissingSecret> {
    Ok(match value {
        Value::String(s) => Value::String(resolve_str(s, lookup)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_value(v, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve_value(v, lookup)?)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// [`resolve_secrets`] for one string.
pub fn resolve_str(
    s: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, MissingSecret> {
    if !s.contains("{{") {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    for seg in scan(s).0 {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Expr { inner, raw, .. } => match inner.trim() {
                "'{{'" => out.push_str("{{"),
                "'{'" => out.push('{'),
                _ => match secret_name(inner) {
                    Some(name) => out.push_str(&lookup(name).ok_or_else(|| MissingSecret {
                        name: name.to_owned(),
                    })?),
                    None => out.push_str(raw),
                },
            },
        }
    }
    Ok(out)
}

/// Escapes a key for use as one JSON-pointer segment (RFC 6901).
pub fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "trigger": {"body": {"user": {"id": 7, "name": "Ada"}, "evil": "{{ secrets.API_TOKEN }}", "brace": "{"}},
            "steps": {"pick": {"n": 3, "tags": ["a", "b"], "none": null}}
        })
    }

    fn secrets(name: &str) -> Option<String> {
        (name == "API_TOKEN").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn exact_template_yields_json_value() {
        assert_eq!(render_str("{{ steps.pick.n }}", &ctx()).unwrap(), json!(3));
        assert_eq!(
            render_str("{{steps.pick.tags}}", &ctx()).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(
            render_str("{{ {a: steps.pick.n} }}", &ctx()).unwrap(),
            json!({"a": 3})
        );
        assert_eq!(
            render_str("{{ {a: {b: steps.pick.n}}}}", &ctx()).unwrap(),
            json!({"a": {"b": 3}})
        );
    }

    #[test]
    fn mixed_text_interpolates() {
        let out = render_str(
            "u/{{ trigger.body.user.id }}/{{ trigger.body.user.name }}/{{ steps.pick.tags }}/{{ steps.pick.none }}.",
            &ctx(),
        )
        .unwrap();
        assert_eq!(out, json!("u/7/Ada/[\"a\",\"b\"]/."));
    }

    #[test]
    fn quotes_and_literals_may_contain_braces() {
        assert_eq!(
            render_str("{{ '}}' }}", &ctx()).unwrap(),
            json!("}}"),
            "raw string containing }}"
        );
        assert_eq!(
            render_str("x{{ `{\"a\": 1}`.a }}", &ctx()).unwrap(),
            json!("x1")
        );
    }

    #[test]
    fn recursive_over_values_not_keys() {
        let v = json!({"{{ k }}": ["{{ steps.pick.n }}", 1, {"x": "n={{ steps.pick.n }}"}]});
        assert_eq!(
            render(&v, &ctx()).unwrap(),
            json!({"{{ k }}": [3, 1, {"x": "n=3"}]})
        );
    }

    #[test]
    fn errors_have_paths_and_positions() {
        let err = compile("ab{{ foo.[ }}").unwrap_err();
        assert!(err.position >= 4, "{err}");
        let err = compile("ab{{ foo").unwrap_err();
        assert_eq!(err.position, 2);
        let err = compile("{{ }}").unwrap_err();
        assert_eq!(err.position, 2);
        let errs = check(&json!({"a": ["ok", "{{ x. }}"], "b/c": "{{"}));
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["/a/1", "/b~1c"]);
        let err = render(&json!({"h": ["{{ length(`1`) }}"]}), &ctx()).unwrap_err();
        assert_eq!(err.path, "/h/0");
        assert!(err.position >= 3, "{err}");
    }

    #[test]
    fn secrets_stay_symbolic_until_resolved() {
        let v = json!({"Authorization": "Bearer {{secrets.API_TOKEN}}", "x": "{{ secrets.API_TOKEN }}"});
        let rendered = render(&v, &ctx()).unwrap();
        assert_eq!(rendered, v);
        assert_eq!(
            secret_refs(&rendered),
            BTreeSet::from(["API_TOKEN".to_owned()])
        );
        let resolved = resolve_secrets(&rendered, secrets).unwrap();
        assert_eq!(
            resolved,
            json!({"Authorization": "Bearer s3cr3t", "x": "s3cr3t"})
        );
        let err = resolve_secrets(&json!("{{ secrets.OTHER }}"), secrets).unwrap_err();
        assert_eq!(err.name, "OTHER");
    }

    #[test]
    fn secrets_in_expressions_are_rejected() {
        let err = compile("{{ join(',', [secrets.A]) }}").unwrap_err();
        assert!(err.message.contains("secrets.NAME"), "{err}");
        assert!(compile("{{ steps.secrets }}").is_ok());
    }

    #[test]
    fn data_cannot_inject_secret_references() {
        // Exact, mixed, and a brace that touches a real reference.
        for t in [
            "{{ trigger.body.evil }}",
            "a {{ trigger.body.evil }} b",
            "{{ trigger.body }}",
            "{{ trigger.body.brace }}{{ trigger.body.brace }} secrets.API_TOKEN }}",
            "{{ trigger.body.brace }}{{ secrets.API_TOKEN }}",
        ] {
            let rendered = render(&json!(t), &ctx()).unwrap();
            let resolved = resolve_secrets(&rendered, secrets).unwrap();
            let text = resolved.to_string();
            let expected_token = t.ends_with("{{ secrets.API_TOKEN }}");
            assert_eq!(text.contains("s3cr3t"), expected_token, "{t} -> {text}");
        }
        let rendered = render(&json!("{{ trigger.body.evil }}"), &ctx()).unwrap();
        assert_eq!(
            resolve_secrets(&rendered, secrets).unwrap(),
            json!("{{ secrets.API_TOKEN }}")
        );
        let rendered = render(
            &json!("{{ trigger.body.brace }}{{ secrets.API_TOKEN }}"),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            resolve_secrets(&rendered, secrets).unwrap(),
            json!("{s3cr3t")
        );
    }

    proptest! {
        #[test]
        fn text_without_templates_is_identity(s in "[^{]*|[a-z{}]*") {
            prop_assume!(!s.contains("{{"));
            prop_assert_eq!(render_str(&s, &ctx()).unwrap(), Value::String(s.clone()));
            prop_assert_eq!(resolve_str(&s, secrets).unwrap(), s);
        }

        #[test]
        fn resolve_after_render_is_deterministic(
            data in "[a-z{} ]{0,12}",
            prefix in "[a-z ]{0,4}",
            use_secret in any::<bool>(),
        ) {
            let ctx = json!({"d": data});
            let t = if use_secret {
                format!("{prefix}{{{{ d }}}}{{{{ secrets.API_TOKEN }}}}")
            } else {
                format!("{prefix}{{{{ d }}}}")
            };
            let a = resolve_secrets(&render(&json!(t), &ctx).unwrap(), secrets).unwrap();
            let b = resolve_secrets(&render(&json!(t), &ctx).unwrap(), secrets).unwrap();
            prop_assert_eq!(&a, &b);
            // And data round-trips exactly through the escaping.
            let expected = if use_secret { format!("{prefix}{data}s3cr3t") } else { format!("{prefix}{data}") };
            prop_assert_eq!(a, Value::String(expected));
        }
    }
}
