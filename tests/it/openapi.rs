//! `openapi.yaml` documents every route and every code a client can receive: error codes,
//! warning codes and failure codes, each in the description of its own `code` field.

use std::collections::BTreeSet;

use lrlab::api::ErrorCode;
use lrlab::job::{FailureCode, WarningCode};

fn openapi() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("read openapi.yaml")
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The words in the documentation of the first `code:` property under the nested keys
/// `path` (each a whole line of the YAML, in order): the `code:` line and every line
/// indented deeper below it.
fn documented_codes(spec: &str, path: &[&str]) -> BTreeSet<String> {
    let lines: Vec<&str> = spec.lines().collect();
    let mut at = 0;
    for key in path {
        at += lines[at..]
            .iter()
            .position(|line| line == key)
            .unwrap_or_else(|| panic!("openapi.yaml has no line `{key}` (looking for {path:?})"));
    }
    let code = at
        + lines[at..]
            .iter()
            .position(|line| line.trim_start().starts_with("code:"))
            .unwrap_or_else(|| panic!("no `code:` under {path:?}"));
    let depth = indent(lines[code]);
    let block = std::iter::once(lines[code]).chain(
        lines[code + 1..]
            .iter()
            .copied()
            .take_while(|line| indent(line) > depth),
    );
    block
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

fn assert_documented(what: &str, path: &[&str], codes: impl IntoIterator<Item = &'static str>) {
    let documented = documented_codes(&openapi(), path);
    let missing: Vec<&str> = codes
        .into_iter()
        .filter(|code| !documented.contains(*code))
        .collect();
    assert!(
        missing.is_empty(),
        "openapi.yaml does not document the {what} {missing:?} (at {path:?})"
    );
}

#[test]
fn openapi_documents_every_route() {
    let spec = openapi();
    for route in [
        "/healthz:",
        "/readyz:",
        "/v1/schedules/kinds:",
        "/v1/schedules/preview:",
        "/v1/jobs:",
        "/v1/jobs/{id}:",
        "/v1/jobs/{id}/cancel:",
        "/v1/jobs/{id}/metrics:",
        "/v1/jobs/{id}/steps:",
        "/v1/jobs/{id}/events:",
        "/v1/jobs/{id}/weights:",
    ] {
        assert!(
            spec.contains(&format!("\n  {route}")),
            "openapi.yaml lacks {route}"
        );
    }
}

#[test]
fn openapi_lists_every_error_code_in_the_error_schema() {
    assert_documented(
        "error codes",
        &["  schemas:", "    Error:"],
        ErrorCode::all().into_iter().map(ErrorCode::as_str),
    );
}

#[test]
fn openapi_lists_every_warning_code_in_the_warning_schema() {
    assert_documented(
        "warning codes",
        &["  schemas:", "    Warning:"],
        WarningCode::ALL.map(WarningCode::as_str),
    );
}

#[test]
fn openapi_lists_every_failure_code_in_the_jobs_error() {
    assert_documented(
        "failure codes",
        &["  schemas:", "    Job:", "        error:"],
        FailureCode::ALL.map(FailureCode::as_str),
    );
}
