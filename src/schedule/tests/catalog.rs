//! The catalog lists exactly the fields the parser accepts, with its defaults.

use serde_json::{json, Map, Value};

use super::super::{catalog, FieldInfo, ScheduleSpec, KINDS};

/// A value of the field's type that passes validation in the minimal specs below.
fn sample(kind: &str, field: &FieldInfo) -> Value {
    match (kind, field.name) {
        ("multi_factor", "milestones") => json!([3, 7]),
        ("sequential", "phases") => json!([{"schedule": {"kind": "constant", "lr": 0.1}}]),
        (_, "factor") => json!(0.5),
        ("cyclic", "max_lr") => json!(1.0),
        ("one_cycle", "total_steps") => json!(100),
        (_, "max_steps") => json!(50),
        _ => match field.ty {
            "number" => json!(0.25),
            "integer" => json!(10),
            "schedule" => json!({"kind": "constant", "lr": 0.1}),
            other => panic!(
                "no sample for a required {other} field {kind}.{}",
                field.name
            ),
        },
    }
}

fn info(kind: &str) -> &'static super::super::KindInfo {
    catalog().iter().find(|k| k.kind == kind).unwrap()
}

fn minimal(kind: &str) -> Map<String, Value> {
    let mut spec = Map::new();
    spec.insert("kind".into(), json!(kind));
    for field in info(kind).fields.iter().filter(|f| f.required) {
        spec.insert(field.name.into(), sample(kind, field));
    }
    spec
}

#[test]
fn catalog_lists_every_kind_once_in_table_order() {
    let kinds: Vec<&str> = catalog().iter().map(|k| k.kind).collect();
    assert_eq!(kinds, KINDS);
    assert_eq!(catalog().iter().filter(|k| k.adaptive).count(), 1);
}

#[test]
fn every_example_is_a_valid_spec_of_its_kind() {
    for info in catalog() {
        let spec = crate::schedule::Schedule::from_json(&info.example)
            .unwrap_or_else(|e| panic!("{} example: {e} at {}", info.kind, e.path));
        assert_eq!(spec.spec().kind(), info.kind);
        assert_eq!(spec.is_adaptive(), info.adaptive, "{}", info.kind);
    }
}

#[test]
fn required_fields_alone_parse_and_normalize_to_the_catalog_defaults() {
    for kind in KINDS {
        let spec = Value::Object(minimal(kind));
        let parsed =
            ScheduleSpec::from_json(&spec).unwrap_or_else(|e| panic!("{kind}: {e} at {}", e.path));
        parsed
            .validate()
            .unwrap_or_else(|e| panic!("{kind}: {e} at {}", e.path));
        let normalized = serde_json::to_value(&parsed).unwrap();
        let normalized = normalized.as_object().unwrap();
        // The normalized spec has exactly the catalog's fields (plus `kind`)...
        let mut keys: Vec<&str> = normalized
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "kind")
            .collect();
        let mut names: Vec<&str> = info(kind).fields.iter().map(|f| f.name).collect();
        keys.sort_unstable();
        names.sort_unstable();
        assert_eq!(keys, names, "{kind}");
        // ...and each omitted field took the catalog's default.
        for field in info(kind).fields.iter().filter(|f| !f.required) {
            let expected = match (&field.default, field.default_from) {
                (Some(default), _) => default.clone(),
                (None, Some(other)) => normalized[other].clone(),
                (None, None) => panic!("{kind}.{} is optional without a default", field.name),
            };
            assert_eq!(normalized[field.name], expected, "{kind}.{}", field.name);
        }
    }
}

#[test]
fn every_required_field_is_required_by_the_parser() {
    for kind in KINDS {
        for field in info(kind).fields.iter().filter(|f| f.required) {
            let mut spec = minimal(kind);
            spec.remove(field.name);
            let e = ScheduleSpec::from_json(&Value::Object(spec)).unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.path.as_str()),
                ("missing_field", field.name),
                "{kind}"
            );
        }
    }
}

#[test]
fn a_field_outside_the_catalog_is_rejected_for_every_kind() {
    for kind in KINDS {
        let mut spec = minimal(kind);
        spec.insert("not_a_field".into(), json!(1));
        let e = ScheduleSpec::from_json(&Value::Object(spec)).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("unknown_field", "not_a_field"),
            "{kind}"
        );
    }
}

#[test]
fn enumerated_fields_accept_exactly_their_allowed_values() {
    for kind in KINDS {
        for field in info(kind).fields.iter().filter(|f| !f.allowed.is_empty()) {
            for value in &field.allowed {
                let mut spec = minimal(kind);
                spec.insert(field.name.into(), json!(value));
                let parsed = ScheduleSpec::from_json(&Value::Object(spec)).unwrap();
                assert_eq!(
                    serde_json::to_value(&parsed).unwrap()[field.name],
                    json!(value)
                );
            }
            let mut spec = minimal(kind);
            spec.insert(field.name.into(), json!("no_such_value"));
            let e = ScheduleSpec::from_json(&Value::Object(spec)).unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.path.as_str()),
                ("invalid_value", field.name)
            );
        }
    }
}

#[test]
fn phase_item_fields_match_the_parser() {
    let phases = &info("sequential").fields[0];
    let names: Vec<&str> = phases.items.iter().map(|f| f.name).collect();
    assert_eq!(names, ["steps", "schedule"]);
    assert!(!phases.items[0].required && phases.items[1].required);
    let e = ScheduleSpec::from_json(&json!({"kind": "sequential", "phases": [{"steps": 1}]}))
        .unwrap_err();
    assert_eq!(e.path, "phases[0].schedule");
}

#[test]
fn catalog_serializes_with_type_and_defaults() {
    let value = serde_json::to_value(catalog()).unwrap();
    let cyclic = value
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "cyclic")
        .unwrap();
    let mode = cyclic["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "mode")
        .unwrap();
    assert_eq!(mode["type"], "string");
    assert_eq!(mode["default"], "triangular");
    assert_eq!(
        mode["allowed"],
        json!(["triangular", "triangular2", "exp_range"])
    );
    let down = cyclic["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "step_size_down")
        .unwrap();
    assert_eq!(down["default_from"], "step_size_up");
    assert_eq!(down["required"], false);
}
