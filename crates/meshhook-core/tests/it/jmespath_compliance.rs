//! Runs the official JMESPath compliance suite (tests/jmespath/*.json, see
//! SOURCE.md there) through `meshhook_core::expr`, the runtime every
//! MeshHook expression uses.

use std::path::Path;

use meshhook_core::expr::{self, ErrorKind};
use serde_json::Value;

/// Cases known not to pass (file, expression). Empty: the `avg([])` case
/// that the `jmespath` crate gets wrong is fixed by our runtime.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

/// Result equality with JMESPath's number semantics (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn expected_kind(error: &str) -> Option<ErrorKind> {
    Some(match error {
        "syntax" => ErrorKind::Syntax,
        "invalid-type" => ErrorKind::InvalidType,
        "invalid-value" => ErrorKind::InvalidValue,
        "unknown-function" => ErrorKind::UnknownFunction,
        "invalid-arity" => ErrorKind::InvalidArity,
        _ => return None,
    })
}

/// Checks one case; `Err` explains a failure.
fn check(given: &Value, case: &Value) -> Result<(), String> {
    let expression = case["expression"].as_str().ok_or("no expression")?;
    if let Some(error) = case.get("error").and_then(Value::as_str) {
        let want = expected_kind(error).ok_or_else(|| format!("unknown error kind {error}"))?;
        return match expr::compile(expression).and_then(|e| expr::search(&e, given)) {
            Err(e) if e.kind == want => Ok(()),
            Err(e) => Err(format!("expected {error}, got {:?}: {e}", e.kind)),
            Ok(v) => Err(format!("expected {error}, got result {v}")),
        };
    }
    if let Some(bench) = case.get("bench").and_then(Value::as_str) {
        let compiled = expr::compile(expression).map_err(|e| format!("bench parse: {e}"))?;
        if bench != "parse" {
            expr::search(&compiled, given).map_err(|e| format!("bench {bench}: {e}"))?;
        }
        return Ok(());
    }
    let want = case
        .get("result")
        .ok_or("case has no result, error or bench")?;
    let got = expr::eval(expression, given).map_err(|e| format!("error: {e}"))?;
    if same(&got, want) {
        Ok(())
    } else {
        Err(format!("expected {want}, got {got}"))
    }
}

#[test]
fn jmespath_compliance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jmespath");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the suite is checked in")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 16,
        "suite files missing in {}",
        dir.display()
    );

    let (mut total, mut passed) = (0usize, 0usize);
    let mut failures: Vec<(String, String, String)> = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name")
            .to_owned();
        let text = std::fs::read_to_string(path).expect("readable");
        let suites: Vec<Value> = serde_json::from_str(&text).expect("valid JSON");
        for suite in &suites {
            let given = &suite["given"];
            for case in suite["cases"].as_array().expect("cases") {
                total += 1;
                match check(given, case) {
                    Ok(()) => passed += 1,
                    Err(why) => failures.push((
                        name.clone(),
                        case["expression"].as_str().unwrap_or_default().to_owned(),
                        why,
                    )),
                }
            }
        }
    }
    println!("jmespath compliance: {passed}/{total} passed");
    for (file, expression, why) in &failures {
        println!("  FAIL {file}: {expression} -> {why}");
    }
    let failed: Vec<(&str, &str)> = failures
        .iter()
        .map(|(f, e, _)| (f.as_str(), e.as_str()))
        .collect();
    assert_eq!(failed, KNOWN_FAILURES, "the known-failure list changed");
    assert!(total > 900, "only {total} cases found");
}
