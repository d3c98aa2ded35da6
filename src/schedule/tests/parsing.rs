//! Parsing untrusted JSON: defaults, normalized output and error paths.

use serde_json::{json, Value};

use super::super::{ScheduleSpec, SpecError, KINDS};

fn parse_err(spec: Value) -> SpecError {
    match ScheduleSpec::from_json(&spec) {
        Ok(parsed) => panic!("spec {spec} was accepted as {parsed:?}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_field_deep_inside_is_reported_with_its_full_path() {
    let e = parse_err(json!({
        "kind": "warmup", "steps": 5,
        "then": {"kind": "cosine", "lr": 0.1, "max_steps": 10, "bogus": 1}
    }));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_field", "then.bogus")
    );
    assert!(e.message.contains("bogus"), "{}", e.message);
    assert!(
        e.message.contains("max_steps"),
        "should list the valid fields: {}",
        e.message
    );
}

#[test]
fn unknown_fields_at_the_root_and_in_phases_are_named() {
    let e = parse_err(json!({"kind": "constant", "lr": 0.1, "learning_rate": 0.2}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_field", "learning_rate")
    );

    let e = parse_err(
        json!({"kind": "warmup", "steps": 1, "then": {"kind": "constant", "lr": 0.1}, "extra": 1}),
    );
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_field", "extra")
    );

    let e = parse_err(
        json!({"kind": "sequential", "phases": [{"schedule": {"kind": "constant", "lr": 0.1}}], "x": 1}),
    );
    assert_eq!((e.code.as_str(), e.path.as_str()), ("unknown_field", "x"));

    let e = parse_err(json!({"kind": "sequential", "phases": [
        {"steps": 3, "schedule": {"kind": "constant", "lr": 0.1}},
        {"schedule": {"kind": "constant", "lr": 0.1}, "length": 4}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_field", "phases[1].length")
    );
    assert!(e.message.contains("length"));

    let e = parse_err(json!({"kind": "sequential", "phases": [
        {"steps": 3, "schedule": {"kind": "constant", "lr": 0.1}},
        {"schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "constant", "lr": 0.1, "typo": 0}}}
    ]}));
    assert_eq!(e.path, "phases[1].schedule.then.typo");
}

#[test]
fn missing_fields_are_named_in_the_path() {
    let e = parse_err(json!({"kind": "cosine", "lr": 0.1}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "max_steps")
    );
    assert!(e.message.contains("max_steps"));

    let e = parse_err(json!({"kind": "warmup", "steps": 5, "then": {"kind": "cosine", "lr": 0.1}}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "then.max_steps")
    );
    assert_eq!(e.prefixed("schedule").path, "schedule.then.max_steps");

    let e = parse_err(json!({"kind": "warmup", "steps": 5}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "then")
    );

    let e = parse_err(json!({"kind": "sequential"}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "phases")
    );

    let e = parse_err(json!({"kind": "sequential", "phases": [{"steps": 3}]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "phases[0].schedule")
    );

    let e = parse_err(json!({"lr": 0.1}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("missing_field", "kind")
    );
}

#[test]
fn unknown_kind_lists_the_valid_kinds() {
    let e = parse_err(json!({"kind": "exponential", "lr": 0.1}));
    assert_eq!((e.code.as_str(), e.path.as_str()), ("unknown_kind", "kind"));
    for kind in KINDS {
        assert!(
            e.message.contains(kind),
            "{kind} missing from: {}",
            e.message
        );
    }
    let e = parse_err(json!({"kind": "warmup", "steps": 1, "then": {"kind": "Cosine"}}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("unknown_kind", "then.kind")
    );
}

#[test]
fn wrong_types_are_invalid_type_at_the_field() {
    let e = parse_err(json!({"kind": "step", "lr": 0.1, "step_size": 1.5, "factor": 0.5}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_type", "step_size")
    );
    assert!(e.message.contains("step_size"), "{}", e.message);

    let e = parse_err(json!({"kind": "constant", "lr": "0.1"}));
    assert_eq!((e.code.as_str(), e.path.as_str()), ("invalid_type", "lr"));

    let e = parse_err(json!({"kind": 3}));
    assert_eq!((e.code.as_str(), e.path.as_str()), ("invalid_type", "kind"));

    let e = parse_err(json!([1, 2]));
    assert_eq!((e.code.as_str(), e.path.as_str()), ("invalid_type", ""));

    let e = parse_err(json!({"kind": "sequential", "phases": {"steps": 1}}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_type", "phases")
    );

    let e = parse_err(json!({"kind": "sequential", "phases": [3]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_type", "phases[0]")
    );

    let e = parse_err(json!({"kind": "sequential", "phases": [
        {"steps": 2, "schedule": {"kind": "constant", "lr": 0.1}},
        {"steps": "many", "schedule": {"kind": "constant", "lr": 0.1}}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_type", "phases[1].steps")
    );

    let e = parse_err(json!({"kind": "sequential", "phases": [
        {"steps": 2, "schedule": {"kind": "constant", "lr": 0.1}},
        {"schedule": {"kind": "constant", "lr": null}}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_type", "phases[1].schedule.lr")
    );
}

#[test]
fn negative_integers_and_milestones_are_rejected_at_their_index() {
    let e =
        parse_err(json!({"kind": "multi_factor", "lr": 0.1, "milestones": [3, -4], "factor": 0.5}));
    assert_eq!(e.path, "milestones[1]");
    assert_eq!(e.code.as_str(), "invalid_value");
    let e = parse_err(json!({"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": -3}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "steps")
    );
}

#[test]
fn unknown_enum_values_list_the_accepted_ones() {
    let e = parse_err(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2, "mode": "sawtooth"}),
    );
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "mode")
    );
    assert!(
        e.message.contains("triangular2") && e.message.contains("exp_range"),
        "{}",
        e.message
    );

    let e = parse_err(json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": "val_loss"}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "monitor")
    );
    assert!(e.message.contains("test_acc"));
}

#[test]
fn defaults_are_filled_in_and_serialized_explicitly() {
    let spec = ScheduleSpec::from_json(
        &json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 7}),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 7,
               "step_size_down": 7, "mode": "triangular", "gamma": 1.0})
    );
    let spec =
        ScheduleSpec::from_json(&json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}))
            .unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.3,
               "anneal": "cos", "div_factor": 25.0, "final_div_factor": 1e4, "three_phase": false})
    );
    let spec = ScheduleSpec::from_json(
        &json!({"kind": "warmup", "steps": 2, "then": {"kind": "reduce_on_plateau", "lr": 0.1}}),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"kind": "warmup", "steps": 2, "begin_lr": 0.0, "mode": "linear",
               "then": {"kind": "reduce_on_plateau", "lr": 0.1, "factor": 0.1, "patience": 10,
                        "threshold": 1e-4, "threshold_mode": "rel", "monitor": "test_loss",
                        "cooldown": 0, "min_lr": 0.0}})
    );
}

#[test]
fn null_steps_on_a_phase_means_absent() {
    let spec = ScheduleSpec::from_json(&json!({"kind": "sequential", "phases": [
        {"steps": null, "schedule": {"kind": "constant", "lr": 0.1}}
    ]}))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"kind": "sequential", "phases": [{"schedule": {"kind": "constant", "lr": 0.1}}]})
    );
}

#[test]
fn derived_deserialize_reads_normalized_specs_back() {
    let spec = ScheduleSpec::from_json(&json!({"kind": "sequential", "phases": [
        {"steps": 4, "schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3}}},
        {"schedule": {"kind": "multi_factor", "lr": 0.1, "milestones": [1, 5], "factor": 0.5}}
    ]}))
    .unwrap();
    let text = serde_json::to_string(&spec).unwrap();
    let back: ScheduleSpec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, spec);
    // The derived code rejects unknown fields too.
    let bad =
        serde_json::from_value::<ScheduleSpec>(json!({"kind": "constant", "lr": 0.1, "x": 1}));
    assert!(bad.is_err());
}
