//! JMESPath expressions: compilation with positioned errors, and evaluation
//! over `serde_json` values.
//!
//! Every expression in MeshHook (transform, branch condition, delay `until`,
//! terminate output, and the inside of `{{ }}` templates) goes through this
//! module, so they all share one runtime: the standard functions, with `avg`
//! fixed to return `null` for an empty array as the specification requires.

use std::fmt;
use std::sync::LazyLock;

use jmespath::functions::{ArgumentType, CustomFunction, Signature};
use jmespath::{ErrorReason, JmespathError, Rcvar, Runtime, RuntimeError, Variable};
use serde_json::Value;

/// The shared runtime: built-in functions plus our fixes.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut runtime = Runtime::new();
    runtime.register_builtin_functions();
    runtime.register_function("avg", Box::new(avg_function()));
    runtime
});

/// `avg(array[number])`, returning `null` (not an error) for an empty array.
fn avg_function() -> CustomFunction {
    let signature = Signature::new(
        vec![ArgumentType::TypedArray(Box::new(ArgumentType::Number))],
        None,
    );
    CustomFunction::new(
        signature,
        Box::new(|args, _ctx| {
            let values = args.first().and_then(|a| a.as_array());
            let Some(values) = values.filter(|v| !v.is_empty()) else {
                return Ok(Rcvar::new(Variable::Null));
            };
            let sum: f64 = values.iter().filter_map(|v| v.as_number()).sum();
            let mean = sum / values.len() as f64;
            Ok(Rcvar::new(
                serde_json::Number::from_f64(mean).map_or(Variable::Null, Variable::Number),
            ))
        }),
    )
}

/// What went wrong, in the categories of the JMESPath specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The expression does not parse.
    Syntax,
    /// A function received an argument of the wrong type.
    InvalidType,
    /// A value is out of range (e.g. a slice step of 0).
    InvalidValue,
    /// A call to a function that does not exist.
    UnknownFunction,
    /// A function called with the wrong number of arguments.
    InvalidArity,
    /// Anything else (e.g. a result that is not JSON, such as a bare `&expr`).
    Other,
}

/// A compile or evaluation error, with the character position in the
/// expression where it was detected when one is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// Character (not byte) offset into the expression.
    pub position: Option<usize>,
    /// Human-readable reason, without the position.
    pub message: String,
    /// The specification's error category.
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "at position {p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Error {
    /// The same error with its position moved by `offset` characters (used
    /// when the expression sits inside a larger string, e.g. a template).
    #[must_use]
    pub fn shifted(mut self, offset: usize) -> Self {
        self.position = self.position.map(|p| p + offset);
        self
    }

    fn from_jmespath(e: &JmespathError, parsing: bool) -> Self {
        let (kind, message) = match &e.reason {
            ErrorReason::Parse(m) => (
                if parsing {
                    ErrorKind::Syntax
                } else {
                    ErrorKind::Other
                },
                m.clone(),
            ),
            ErrorReason::Runtime(r) => {
                let kind = match r {
                    RuntimeError::InvalidSlice => ErrorKind::InvalidValue,
                    RuntimeError::TooManyArguments { .. }
                    | RuntimeError::NotEnoughArguments { .. } => ErrorKind::InvalidArity,
                    RuntimeError::UnknownFunction(_) => ErrorKind::UnknownFunction,
                    RuntimeError::InvalidType { .. } | RuntimeError::InvalidReturnType { .. } => {
                        ErrorKind::InvalidType
                    }
                };
                (kind, r.to_string())
            }
        };
        // Errors raised with an empty expression carry no meaningful offset.
        let position = (!e.expression.is_empty()).then_some(e.offset);
        Error {
            position,
            message,
            kind,
        }
    }
}

/// A compiled JMESPath expression. Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Expression {
    inner: jmespath::Expression<'static>,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression")
            .field(&self.inner.as_str())
            .finish()
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Expression {
    /// The source text.
    pub fn as_str(&self) -> &str {
        self.inner.as_str()
    }

    /// The parsed syntax tree.
    pub fn ast(&self) -> &jmespath::ast::Ast {
        self.inner.as_ast()
    }
}

/// Compiles `source`; errors carry the position of the offending character.
pub fn compile(source: &str) -> Result<Expression, Error> {
    if source.trim().is_empty() {
        return Err(Error {
            position: Some(0),
            message: "expression is empty".to_owned(),
            kind: ErrorKind::Syntax,
        });
    }
    RUNTIME
        .compile(source)
        .map(|inner| Expression { inner })
        .map_err(|e| Error::from_jmespath(&e, true))
}

/// Evaluates `expression` against `data`.
pub fn search(expression: &Expression, data: &Value) -> Result<Value, Error> {
    let data = Variable::try_from(data).map_err(|e| Error::from_jmespath(&e, false))?;
    let result = expression
        .inner
        .search(data)
        .map_err(|e| Error::from_jmespath(&e, false))?;
    if result.is_expref() {
        return Err(Error {
            position: Some(0),
            message: "an expression reference (&...) is not a JSON value".to_owned(),
            kind: ErrorKind::Other,
        });
    }
    serde_json::to_value(&*result)
        .map(integral_floats_as_integers)
        .map_err(|e| Error {
            position: None,
            message: format!("result is not JSON: {e}"),
            kind: ErrorKind::Other,
        })
}

/// JMESPath arithmetic (`sum`, `avg`, ...) yields floats; JSON does not
/// distinguish `10.0` from `10`, so print whole numbers as integers.
fn integral_floats_as_integers(value: Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => {
            Value::Array(items.into_iter().map(integral_floats_as_integers).collect())
        }
        Value::Object(mut map) => {
            // In place: collecting into a map would sort the entries again.
            for v in map.values_mut() {
                *v = integral_floats_as_integers(std::mem::take(v));
            }
            Value::Object(map)
        }
        other => other,
    }
}

/// Compiles and evaluates in one go (for previews and tests).
pub fn eval(source: &str, data: &Value) -> Result<Value, Error> {
    search(&compile(source)?, data)
}

/// JMESPath truthiness: `false`, `null`, `""`, `[]` and `{}` are false;
/// everything else (including `0`) is true.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

/// The first field names the expression reads from the root of its input
/// (e.g. `steps` and `trigger` for `{a: steps.x, b: trigger.body}`), in
/// order of appearance, duplicates kept. Fields read inside projections,
/// filters and `&expr` references (which see other nodes) are not included.
pub fn root_fields(expression: &Expression) -> Vec<RootField> {
    let mut out = Vec::new();
    collect_root_fields(expression.ast(), &mut out);
    out
}

/// A field read from the root of the input, with the path that follows it
/// when it is a plain `a.b.c` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootField {
    /// Character offset of the field in the expression.
    pub position: usize,
    /// The dotted chain of field names starting at the root (at least one).
    pub path: Vec<String>,
}

/// `(offset, path, complete)`: `complete` is false once the chain hit
/// something other than a field (an index, a function...), after which no
/// further names are appended.
fn field_chain(ast: &jmespath::ast::Ast) -> Option<(usize, Vec<String>, bool)> {
    use jmespath::ast::Ast;
    match ast {
        Ast::Field { offset, name } => Some((*offset, vec![name.clone()], true)),
        Ast::Subexpr { lhs, rhs, .. } => {
            let (offset, mut path, complete) = field_chain(lhs)?;
            match rhs.as_ref() {
                Ast::Field { name, .. } if complete => {
                    path.push(name.clone());
                    Some((offset, path, true))
                }
                _ => Some((offset, path, false)),
            }
        }
        _ => None,
    }
}

fn collect_root_fields(ast: &jmespath::ast::Ast, out: &mut Vec<RootField>) {
    use jmespath::ast::Ast;
    if let Some((position, path, _)) = field_chain(ast) {
        out.push(RootField { position, path });
        return;
    }
    match ast {
        Ast::Comparison { lhs, rhs, .. } | Ast::And { lhs, rhs, .. } | Ast::Or { lhs, rhs, .. } => {
            collect_root_fields(lhs, out);
            collect_root_fields(rhs, out);
        }
        Ast::Condition { predicate, .. } => collect_root_fields(predicate, out),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            collect_root_fields(node, out);
        }
        Ast::Function { args, .. } => {
            for a in args {
                collect_root_fields(a, out);
            }
        }
        Ast::MultiList { elements, .. } => {
            for e in elements {
                collect_root_fields(e, out);
            }
        }
        Ast::MultiHash { elements, .. } => {
            for kv in elements {
                collect_root_fields(&kv.value, out);
            }
        }
        Ast::Projection { lhs, .. } | Ast::Subexpr { lhs, .. } => collect_root_fields(lhs, out),
        Ast::Identity { .. }
        | Ast::Expref { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_and_searches() {
        let e = compile("a.b").unwrap();
        assert_eq!(search(&e, &json!({"a": {"b": 3}})).unwrap(), json!(3));
        assert_eq!(e.as_str(), "a.b");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = compile("foo.[").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Syntax);
        assert!(err.position.is_some());
        assert!(err.to_string().starts_with("at position"));
        let err = compile("  ").unwrap_err();
        assert_eq!(err.position, Some(0));
    }

    #[test]
    fn runtime_errors_have_kinds() {
        let err = eval("nope(@)", &json!(1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownFunction);
        let err = eval("length(`1`)", &json!(1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidType);
        let err = eval("length(@, @)", &json!(1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArity);
        let err = eval("&a", &json!(1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Other);
    }

    #[test]
    fn avg_of_empty_array_is_null() {
        assert_eq!(eval("avg(@)", &json!([])).unwrap(), Value::Null);
        assert_eq!(eval("avg(@)", &json!([1, 2, 3, 6])).unwrap(), json!(3));
        assert_eq!(eval("avg(@)", &json!([1, 2])).unwrap(), json!(1.5));
        assert_eq!(eval("sum(@)", &json!([0.5, 0.5])).unwrap(), json!(1));
        assert_eq!(
            eval("avg(@)", &json!(["a"])).unwrap_err().kind,
            ErrorKind::InvalidType
        );
    }

    #[test]
    fn truthiness() {
        for v in [json!(null), json!(false), json!(""), json!([]), json!({})] {
            assert!(!is_truthy(&v), "{v}");
        }
        for v in [
            json!(0),
            json!(true),
            json!("x"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(is_truthy(&v), "{v}");
        }
    }

    #[test]
    fn expression_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Expression>();
    }

    #[test]
    fn root_fields_ignore_projections() {
        let e = compile("{a: steps.pick.user, b: length(trigger.body.items[*].x)}").unwrap();
        let paths: Vec<_> = root_fields(&e).into_iter().map(|f| f.path).collect();
        assert_eq!(
            paths,
            vec![
                vec!["steps".to_owned(), "pick".into(), "user".into()],
                vec!["trigger".to_owned(), "body".into()],
            ]
        );
        let e = compile("secrets.TOKEN").unwrap();
        assert_eq!(root_fields(&e)[0].path, vec!["secrets", "TOKEN"]);
    }
}
