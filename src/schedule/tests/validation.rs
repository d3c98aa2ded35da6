//! Every value rule gives its own code at the right path.

use serde_json::{json, Value};

use super::super::{Constant, Schedule, ScheduleSpec, SpecError};

fn rejected(spec: Value) -> SpecError {
    match Schedule::from_json(&spec) {
        Ok(s) => panic!("spec {spec} was accepted as {:?}", s.spec()),
        Err(e) => e,
    }
}

fn assert_rejected(spec: Value, code: &str, path: &str) {
    let e = rejected(spec.clone());
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        (code, path),
        "for {spec}: {}",
        e.message
    );
    let field = path.rsplit('.').next().unwrap_or_default();
    let field = field.split('[').next().unwrap_or_default();
    if !field.is_empty() {
        assert!(
            e.message.contains(field),
            "message should name `{field}`: {}",
            e.message
        );
    }
}

#[test]
fn rates_must_be_finite_and_non_negative() {
    assert_rejected(
        json!({"kind": "constant", "lr": -0.1}),
        "out_of_range",
        "lr",
    );
    assert_rejected(
        json!({"kind": "factor", "lr": 0.1, "factor": 0.5, "min_lr": -1.0}),
        "out_of_range",
        "min_lr",
    );
    assert_rejected(
        json!({"kind": "cosine", "lr": 0.1, "final_lr": -0.01, "max_steps": 5}),
        "out_of_range",
        "final_lr",
    );
    assert_rejected(
        json!({"kind": "linear", "start_lr": 0.1, "end_lr": -0.2, "steps": 5}),
        "out_of_range",
        "end_lr",
    );
    assert_rejected(
        json!({"kind": "warmup", "steps": 5, "begin_lr": -1.0, "then": {"kind": "constant", "lr": 0.1}}),
        "out_of_range",
        "begin_lr",
    );
    assert_rejected(
        json!({"kind": "warmup", "steps": 5, "then": {"kind": "cosine", "lr": -0.1, "max_steps": 10}}),
        "out_of_range",
        "then.lr",
    );
    // Rust callers can build a NaN that JSON cannot express.
    let nan = ScheduleSpec::Constant(Constant { lr: f64::NAN });
    let e = nan.validate().unwrap_err();
    assert_eq!((e.code.as_str(), e.path.as_str()), ("out_of_range", "lr"));
    let inf = ScheduleSpec::Constant(Constant { lr: f64::INFINITY });
    assert!(Schedule::new(inf).is_err());
}

#[test]
fn factors_must_be_positive() {
    assert_rejected(
        json!({"kind": "factor", "lr": 0.1, "factor": 0.0}),
        "out_of_range",
        "factor",
    );
    assert_rejected(
        json!({"kind": "step", "lr": 0.1, "step_size": 3, "factor": -0.5}),
        "out_of_range",
        "factor",
    );
    assert_rejected(
        json!({"kind": "multi_factor", "lr": 0.1, "milestones": [2], "factor": 0.0}),
        "out_of_range",
        "factor",
    );
    assert_rejected(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2, "mode": "exp_range", "gamma": 0.0}),
        "out_of_range",
        "gamma",
    );
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "div_factor": 0.0}),
        "out_of_range",
        "div_factor",
    );
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "final_div_factor": -1.0}),
        "out_of_range",
        "final_div_factor",
    );
    // max_lr / div_factor overflows to infinity.
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 1e300, "total_steps": 100, "div_factor": 1e-300}),
        "out_of_range",
        "div_factor",
    );
    assert_rejected(
        json!({"kind": "reduce_on_plateau", "lr": 0.1, "factor": 1.0}),
        "out_of_range",
        "factor",
    );
    assert_rejected(
        json!({"kind": "reduce_on_plateau", "lr": 0.1, "threshold": -1e-4}),
        "out_of_range",
        "threshold",
    );
}

#[test]
fn powers_must_be_in_range() {
    assert_rejected(
        json!({"kind": "inverse_power", "lr": 0.1, "power": -0.5}),
        "out_of_range",
        "power",
    );
    assert_rejected(
        json!({"kind": "polynomial", "lr": 0.1, "max_steps": 10, "power": 0.0}),
        "out_of_range",
        "power",
    );
}

#[test]
fn step_counts_must_be_at_least_one() {
    assert_rejected(
        json!({"kind": "step", "lr": 0.1, "step_size": 0, "factor": 0.5}),
        "out_of_range",
        "step_size",
    );
    assert_rejected(
        json!({"kind": "cosine", "lr": 0.1, "max_steps": 0}),
        "out_of_range",
        "max_steps",
    );
    assert_rejected(
        json!({"kind": "polynomial", "lr": 0.1, "max_steps": 0}),
        "out_of_range",
        "max_steps",
    );
    assert_rejected(
        json!({"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": 0}),
        "out_of_range",
        "steps",
    );
    assert_rejected(
        json!({"kind": "cosine_restarts", "lr": 0.1, "period": 0}),
        "out_of_range",
        "period",
    );
    assert_rejected(
        json!({"kind": "cosine_restarts", "lr": 0.1, "period": 5, "period_mult": 0}),
        "out_of_range",
        "period_mult",
    );
    assert_rejected(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 0}),
        "out_of_range",
        "step_size_up",
    );
    assert_rejected(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2, "step_size_down": 0}),
        "out_of_range",
        "step_size_down",
    );
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 0}),
        "out_of_range",
        "total_steps",
    );
    assert_rejected(
        json!({"kind": "warmup", "steps": 0, "then": {"kind": "constant", "lr": 0.1}}),
        "out_of_range",
        "steps",
    );
    assert_rejected(
        json!({"kind": "sequential", "phases": [
            {"steps": 0, "schedule": {"kind": "constant", "lr": 0.1}},
            {"schedule": {"kind": "constant", "lr": 0.1}}
        ]}),
        "out_of_range",
        "phases[0].steps",
    );
}

#[test]
fn cosine_warmup_must_end_before_max_steps() {
    assert_rejected(
        json!({"kind": "cosine", "lr": 0.1, "max_steps": 10, "warmup_steps": 10}),
        "out_of_range",
        "warmup_steps",
    );
    assert!(Schedule::from_json(
        &json!({"kind": "cosine", "lr": 0.1, "max_steps": 10, "warmup_steps": 9})
    )
    .is_ok());
}

#[test]
fn milestones_must_strictly_increase() {
    assert_rejected(
        json!({"kind": "multi_factor", "lr": 0.1, "milestones": [5, 5], "factor": 0.5}),
        "not_increasing",
        "milestones[1]",
    );
    assert_rejected(
        json!({"kind": "multi_factor", "lr": 0.1, "milestones": [1, 9, 3], "factor": 0.5}),
        "not_increasing",
        "milestones[2]",
    );
    assert!(Schedule::from_json(
        &json!({"kind": "multi_factor", "lr": 0.1, "milestones": [0, 9], "factor": 0.5})
    )
    .is_ok());
}

#[test]
fn cyclic_max_lr_must_not_be_below_base_lr() {
    assert_rejected(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 0.01, "step_size_up": 2}),
        "out_of_range",
        "max_lr",
    );
    assert_rejected(
        json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": u64::MAX, "step_size_down": 2}),
        "too_large",
        "step_size_down",
    );
}

#[test]
fn one_cycle_fractions_and_phase_lengths() {
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.0}),
        "out_of_range",
        "pct_start",
    );
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 1.0}),
        "out_of_range",
        "pct_start",
    );
    // pct_start·total − 1 = 0: PyTorch would divide 0 by 0 at step 0.
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 10, "pct_start": 0.1}),
        "out_of_range",
        "pct_start",
    );
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 1}),
        "out_of_range",
        "pct_start",
    );
    // Three phases: 2·pct·N − 2 must stay below N − 1.
    assert_rejected(
        json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.6, "three_phase": true}),
        "out_of_range",
        "pct_start",
    );
    assert!(Schedule::from_json(&json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.5, "three_phase": true})).is_ok());
    assert!(Schedule::from_json(
        &json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0.6})
    )
    .is_ok());
}

#[test]
fn sequential_needs_phases_and_steps_on_all_but_the_last() {
    assert_rejected(
        json!({"kind": "sequential", "phases": []}),
        "out_of_range",
        "phases",
    );
    assert_rejected(
        json!({"kind": "sequential", "phases": [
            {"schedule": {"kind": "constant", "lr": 0.1}},
            {"schedule": {"kind": "constant", "lr": 0.2}}
        ]}),
        "missing_field",
        "phases[0].steps",
    );
    assert_rejected(
        json!({"kind": "sequential", "phases": [
            {"steps": u64::MAX, "schedule": {"kind": "constant", "lr": 0.1}},
            {"steps": 2, "schedule": {"kind": "constant", "lr": 0.2}}
        ]}),
        "too_large",
        "phases[1].steps",
    );
    assert_rejected(
        json!({"kind": "sequential", "phases": [
            {"steps": 3, "schedule": {"kind": "constant", "lr": 0.1}},
            {"schedule": {"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": 0}}
        ]}),
        "out_of_range",
        "phases[1].schedule.steps",
    );
}

#[test]
fn only_one_adaptive_schedule_per_spec() {
    let e = rejected(json!({"kind": "sequential", "phases": [
        {"steps": 3, "schedule": {"kind": "reduce_on_plateau", "lr": 0.1}},
        {"schedule": {"kind": "reduce_on_plateau", "lr": 0.01}}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("invalid_value", "phases[1].schedule")
    );
    assert!(
        e.message.contains("reduce_on_plateau") && e.message.contains("phases[0].schedule"),
        "{}",
        e.message
    );
}

/// `levels` schedules nested inside each other: warm-ups around a constant.
fn nested(levels: usize) -> Value {
    let mut spec = json!({"kind": "constant", "lr": 0.1});
    for _ in 1..levels {
        spec = json!({"kind": "warmup", "steps": 1, "then": spec});
    }
    spec
}

#[test]
fn nesting_deeper_than_16_is_rejected_before_recursing() {
    assert!(Schedule::from_json(&nested(16)).is_ok());
    let e = rejected(nested(17));
    assert_eq!(e.code.as_str(), "too_deep");
    assert_eq!(e.path, ["then"; 16].join("."));
    // A pathologically deep document fails the same way without exhausting the stack.
    let e = rejected(nested(1000));
    assert_eq!(e.code.as_str(), "too_deep");
    // Sequential phases count as nesting too.
    let mut spec = json!({"kind": "constant", "lr": 0.1});
    for _ in 1..17 {
        spec = json!({"kind": "sequential", "phases": [{"schedule": spec}]});
    }
    assert_eq!(rejected(spec).code, "too_deep");
}

#[test]
fn deep_specs_built_in_rust_are_rejected_by_validate() {
    let mut spec = ScheduleSpec::Constant(Constant { lr: 0.1 });
    for _ in 1..17 {
        spec = ScheduleSpec::Warmup(super::super::Warmup {
            steps: 1,
            begin_lr: 0.0,
            mode: super::super::WarmupMode::Linear,
            then: Box::new(spec),
        });
    }
    assert_eq!(Schedule::new(spec).unwrap_err().code, "too_deep");
}

fn phases(n: usize) -> Value {
    let phase = json!({"steps": 1, "schedule": {"kind": "constant", "lr": 0.1}});
    json!({"kind": "sequential", "phases": vec![phase; n]})
}

#[test]
fn more_than_64_phases_are_rejected() {
    assert!(Schedule::from_json(&phases(64)).is_ok());
    let e = rejected(phases(65));
    assert_eq!((e.code.as_str(), e.path.as_str()), ("too_large", "phases"));
    // The limit counts phases over the whole spec.
    let e = rejected(json!({"kind": "sequential", "phases": [
        {"steps": 64, "schedule": phases(40)},
        {"schedule": phases(30)}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("too_large", "phases[1].schedule.phases")
    );
}

#[test]
fn more_than_10000_milestones_are_rejected() {
    let ms = |n: u64| json!({"kind": "multi_factor", "lr": 0.1, "milestones": (0..n).collect::<Vec<_>>(), "factor": 0.5});
    assert!(Schedule::from_json(&ms(10_000)).is_ok());
    let e = rejected(ms(10_001));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("too_large", "milestones")
    );
    let e = rejected(json!({"kind": "sequential", "phases": [
        {"steps": 1, "schedule": ms(6_000)},
        {"schedule": ms(6_000)}
    ]}));
    assert_eq!(
        (e.code.as_str(), e.path.as_str()),
        ("too_large", "phases[1].schedule.milestones")
    );
}
