//! openapi.yaml against the server: the same routes in both directions, and the stable
//! codes of errors, warnings and failures listed as enums where they appear. (Whether
//! the live server's answers conform to the document is schemathesis's job in CI:
//! `.ci/schemathesis.sh`.)

use std::collections::BTreeSet;

use lrlab::api::ErrorCode;
use lrlab::job::{FailureCode, WarningCode};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn document() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml is readable");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// A `#/components/...` reference resolved in `doc`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => value,
    }
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn openapi_describes_exactly_the_routes_the_router_serves() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = lrlab::api::routes()
        .iter()
        .map(|route| (route.method.to_string(), route.openapi_path()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
    assert!(served.len() > 20, "the table lists the routes: {served:?}");
}

#[test]
fn every_operation_documents_its_parameters_responses_and_examples() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Every `{name}` of the path is a documented path parameter.
        let parameters: Vec<&Value> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let here = format!("{} {path}", method.to_uppercase());
            let mut all = parameters.clone();
            all.extend(operation["parameters"].as_array().into_iter().flatten());
            for name in path
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split('}').next())
            {
                assert!(
                    all.iter().any(|p| {
                        let p = resolve(&doc, p);
                        p["in"] == "path" && p["name"] == name
                    }),
                    "{here}: path parameter {name} is not documented"
                );
            }
            for parameter in &all {
                let parameter = resolve(&doc, parameter);
                assert!(
                    parameter.get("schema").is_some(),
                    "{here}: {parameter} has no schema"
                );
            }
            assert!(operation.get("summary").is_some(), "{here} has no summary");
            assert!(
                operation.get("operationId").is_some(),
                "{here} has no operationId"
            );
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{here} has no responses"));
            assert!(
                responses
                    .keys()
                    .any(|code| code.starts_with('2') || code.starts_with('3')),
                "{here} documents no success"
            );
            for (code, response) in responses {
                let response = resolve(&doc, response);
                assert!(
                    response.get("description").is_some(),
                    "{here} {code}: no description"
                );
                // `/readyz` answers 503 with its reasons, for orchestrators: not an error body.
                let readiness = path == "/readyz" && code == "503";
                if (code.starts_with('4') || code.starts_with('5')) && !readiness {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{here} {code}: errors are the error JSON"
                    );
                }
            }
            if let Some(body) = operation.get("requestBody") {
                for (kind, media) in body["content"].as_object().unwrap() {
                    assert!(
                        media.get("example").is_some() || media.get("examples").is_some(),
                        "{here}: the {kind} body has no example"
                    );
                }
            }
        }
    }
}

#[test]
fn stable_codes_are_listed_as_enums_where_they_appear() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let errors: BTreeSet<String> = ErrorCode::all()
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        strings(&schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]),
        errors,
        "Error.error.code"
    );
    let warnings: BTreeSet<String> = WarningCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        strings(&schemas["Warning"]["properties"]["code"]["enum"]),
        warnings,
        "Warning.code"
    );
    let failures: BTreeSet<String> = FailureCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        strings(&schemas["JobError"]["properties"]["code"]["enum"]),
        failures,
        "JobError.code"
    );
    let statuses: BTreeSet<String> = lrlab::job::JobStatus::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(
        strings(&schemas["JobStatus"]["enum"]),
        statuses,
        "JobStatus"
    );
}
