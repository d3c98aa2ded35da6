//! `horizon`, `max_step_reference`, `is_adaptive` and `preview`.

use serde_json::json;

use super::schedule;

#[test]
fn horizon_is_where_decaying_schedules_settle() {
    let cases = [
        (json!({"kind": "constant", "lr": 0.1}), Some(0)),
        (
            json!({"kind": "cosine", "lr": 0.1, "max_steps": 50}),
            Some(50),
        ),
        (
            json!({"kind": "polynomial", "lr": 0.1, "max_steps": 40}),
            Some(40),
        ),
        (
            json!({"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": 30}),
            Some(30),
        ),
        (
            json!({"kind": "multi_factor", "lr": 0.1, "milestones": [5, 17], "factor": 0.1}),
            Some(17),
        ),
        (
            json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}),
            Some(99),
        ),
        // 2·0.9^t ≤ 0.01 first at t = 51 (see the factor test: lr(50) = 0.0103).
        (
            json!({"kind": "factor", "lr": 2.0, "factor": 0.9, "min_lr": 0.01}),
            Some(51),
        ),
        (json!({"kind": "factor", "lr": 2.0, "factor": 0.9}), None),
        // Growing past a floor that starts above lr: never settles.
        (
            json!({"kind": "factor", "lr": 0.5, "factor": 1.5, "min_lr": 10.0}),
            None,
        ),
        (
            json!({"kind": "factor", "lr": 0.5, "factor": 0.5, "min_lr": 10.0}),
            Some(0),
        ),
        (
            json!({"kind": "step", "lr": 0.1, "step_size": 3, "factor": 0.5}),
            None,
        ),
        (json!({"kind": "inverse_power", "lr": 0.1}), None),
        (
            json!({"kind": "cosine_restarts", "lr": 0.1, "period": 10}),
            None,
        ),
        (
            json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3}),
            None,
        ),
        (json!({"kind": "reduce_on_plateau", "lr": 0.1}), None),
        (
            json!({"kind": "warmup", "steps": 5, "then": {"kind": "cosine", "lr": 0.1, "max_steps": 50}}),
            Some(55),
        ),
        (
            json!({"kind": "warmup", "steps": 5, "then": {"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3}}),
            None,
        ),
        (
            json!({"kind": "sequential", "phases": [
                {"steps": 10, "schedule": {"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3}},
                {"schedule": {"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": 30}}
            ]}),
            Some(40),
        ),
    ];
    for (spec, horizon) in cases {
        let s = schedule(spec.clone());
        assert_eq!(s.horizon(), horizon, "{spec}");
        if let Some(h) = horizon {
            assert_eq!(s.lr(h), s.lr(h + 1_000_000), "{spec}");
        }
    }
}

#[test]
fn max_step_reference_names_the_longest_step_count_in_root_steps() {
    let cases = [
        (json!({"kind": "constant", "lr": 0.1}), None),
        (json!({"kind": "reduce_on_plateau", "lr": 0.1}), None),
        (
            json!({"kind": "cosine", "lr": 0.1, "max_steps": 50, "warmup_steps": 5}),
            Some(("max_steps", 50)),
        ),
        (
            json!({"kind": "multi_factor", "lr": 0.1, "milestones": [5, 17], "factor": 0.1}),
            Some(("milestones[1]", 17)),
        ),
        (
            json!({"kind": "multi_factor", "lr": 0.1, "milestones": [], "factor": 0.1}),
            None,
        ),
        (
            json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}),
            Some(("total_steps", 100)),
        ),
        (
            json!({"kind": "cyclic", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 3, "step_size_down": 8}),
            Some(("step_size_down", 8)),
        ),
        (
            json!({"kind": "warmup", "steps": 5, "then": {"kind": "cosine", "lr": 0.1, "max_steps": 100}}),
            Some(("then.max_steps", 105)),
        ),
        (
            json!({"kind": "warmup", "steps": 5, "then": {"kind": "constant", "lr": 0.1}}),
            Some(("steps", 5)),
        ),
        (
            json!({"kind": "sequential", "phases": [
                {"steps": 10, "schedule": {"kind": "linear", "start_lr": 0.0, "end_lr": 0.1, "steps": 10}},
                {"steps": 30, "schedule": {"kind": "constant", "lr": 0.1}},
                {"schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 20}}
            ]}),
            Some(("phases[2].schedule.max_steps", 60)),
        ),
        (
            json!({"kind": "sequential", "phases": [
                {"steps": 10, "schedule": {"kind": "constant", "lr": 0.1}},
                {"steps": 90, "schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 20}},
                {"schedule": {"kind": "constant", "lr": 0.0}}
            ]}),
            Some(("phases[1].steps", 100)),
        ),
    ];
    for (spec, expected) in cases {
        let got = schedule(spec.clone()).max_step_reference();
        let got = got.as_ref().map(|(p, v)| (p.as_str(), *v));
        assert_eq!(got, expected, "{spec}");
    }
}

#[test]
fn adaptive_schedules_preview_their_initial_rate() {
    let s = schedule(json!({"kind": "sequential", "phases": [
        {"steps": 2, "schedule": {"kind": "constant", "lr": 0.5}},
        {"schedule": {"kind": "reduce_on_plateau", "lr": 0.1}}
    ]}));
    assert!(s.is_adaptive());
    assert_eq!(s.preview(4), [0.5, 0.5, 0.1, 0.1]);
    assert!(!schedule(json!({"kind": "constant", "lr": 0.5})).is_adaptive());
}

#[test]
fn preview_has_one_rate_per_step() {
    let s = schedule(json!({"kind": "linear", "start_lr": 1.0, "end_lr": 0.0, "steps": 4}));
    assert_eq!(s.preview(6), [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
    assert!(s.preview(0).is_empty());
}
