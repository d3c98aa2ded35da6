//! The adaptive schedule against PyTorch's ReduceLROnPlateau.
//!
//! Expected rates after each `observe` come from a python3 transcription of
//! `ReduceLROnPlateau.step()` (is_better → bad-epoch count → cooldown →
//! reduce), checked by hand for the first case:
//! patience 2, factor 0.5 — metrics 1.0 (best), 0.9 (best), 0.95 (bad 1),
//! 0.93 (bad 2), 0.92 (bad 3 > 2: lr 0.5, bad 0), 0.91 (best), 0.95, 0.95
//! (bad 1, 2), 0.95 (bad 3: lr 0.25), 0.5 (best), 0.6, 0.6, 0.6 (lr 0.125).

use serde_json::{json, Value};

use super::super::{Monitor, Schedule, Scheduler};
use super::schedule;

fn trace(spec: Value, metrics: &[f64]) -> Vec<f64> {
    let mut s = Scheduler::new(schedule(spec));
    metrics
        .iter()
        .map(|&m| {
            s.observe(m);
            s.lr(0)
        })
        .collect()
}

#[test]
fn reduces_after_more_than_patience_bad_epochs() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 2}),
        &[
            1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.95, 0.95, 0.95, 0.5, 0.6, 0.6, 0.6,
        ],
    );
    assert_eq!(
        lr,
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.125]
    );
}

#[test]
fn cooldown_ignores_bad_epochs() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 1, "cooldown": 2}),
        &[1.0; 10],
    );
    assert_eq!(lr, [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]);
}

#[test]
fn never_goes_below_min_lr() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.1, "patience": 0, "min_lr": 0.05}),
        &[3.0; 5],
    );
    assert_eq!(lr, [1.0, 0.1, 0.05, 0.05, 0.05]);
}

#[test]
fn absolute_threshold_needs_improvements_larger_than_it() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 1, "threshold": 0.1, "threshold_mode": "abs"}),
        &[1.0, 0.95, 0.91, 0.85, 0.8, 0.79, 0.78],
    );
    assert_eq!(lr, [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
}

#[test]
fn relative_threshold_ignores_tiny_improvements() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 1}),
        &[1.0, 0.99995, 0.99991, 0.9998, 0.99975, 0.99972],
    );
    assert_eq!(lr, [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
}

#[test]
fn accuracy_is_monitored_in_max_mode() {
    let spec =
        json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": "test_acc", "patience": 1});
    assert_eq!(
        Scheduler::new(schedule(spec.clone())).monitor(),
        Some(Monitor::TestAcc)
    );
    let lr = trace(spec, &[0.5, 0.6, 0.60001, 0.6, 0.7, 0.69, 0.69, 0.69]);
    assert_eq!(
        lr,
        [
            0.1,
            0.1,
            0.1,
            0.010000000000000002,
            0.010000000000000002,
            0.010000000000000002,
            0.0010000000000000002,
            0.0010000000000000002
        ]
    );
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": "test_acc", "factor": 0.5, "patience": 0, "threshold": 0.02, "threshold_mode": "abs"}),
        &[0.5, 0.55, 0.56, 0.57, 0.6, 0.601],
    );
    assert_eq!(lr, [0.1, 0.1, 0.05, 0.025, 0.025, 0.0125]);
}

#[test]
fn reductions_smaller_than_1e_8_are_skipped() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.5e-8, "factor": 0.5, "patience": 0}),
        &[1.0, 1.0, 1.0],
    );
    assert_eq!(lr, [1.5e-8; 3]);
}

#[test]
fn nan_metrics_count_as_bad_epochs() {
    let lr = trace(
        json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 1}),
        &[1.0, f64::NAN, f64::NAN, 0.5],
    );
    assert_eq!(lr, [1.0, 1.0, 0.5, 0.5]);
}

#[test]
fn state_round_trips_through_json_and_resumes_identically() {
    let spec = json!({"kind": "reduce_on_plateau", "lr": 1.0, "factor": 0.5, "patience": 2, "cooldown": 1});
    let metrics = [
        1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98,
    ];
    let mut full = Scheduler::new(schedule(spec.clone()));
    for &m in &metrics {
        full.observe(m);
    }
    // Stop half-way, checkpoint, resume in a fresh scheduler.
    let mut first = Scheduler::new(schedule(spec.clone()));
    for &m in &metrics[..5] {
        first.observe(m);
    }
    let saved = serde_json::to_string(&first.state()).unwrap();
    let mut resumed = Scheduler::new(schedule(spec));
    resumed.restore(serde_json::from_str(&saved).unwrap());
    assert_eq!(resumed.state(), first.state());
    for &m in &metrics[5..] {
        resumed.observe(m);
    }
    assert_eq!(resumed.state(), full.state());
    assert_eq!(resumed.lr(0), full.lr(0));
}

#[test]
fn initial_state_with_infinite_best_survives_json() {
    for monitor in ["test_loss", "test_acc"] {
        let s = Scheduler::new(schedule(
            json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": monitor}),
        ));
        let text = serde_json::to_string(&s.state()).unwrap();
        assert!(text.contains("inf"), "{text}");
        let back: super::super::SchedulerState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s.state());
    }
}

#[test]
fn restore_rejects_an_invalid_stored_rate() {
    let mut s = Scheduler::new(schedule(json!({"kind": "reduce_on_plateau", "lr": 0.1})));
    let mut state = s.state();
    if let Some(p) = state.plateau.as_mut() {
        p.lr = -3.0;
    }
    s.restore(state);
    assert_eq!(s.lr(0), 0.1);
}

#[test]
fn plateau_inside_a_warmup_drives_the_rate_after_it() {
    let spec = json!({"kind": "warmup", "steps": 4, "then": {"kind": "reduce_on_plateau", "lr": 0.8, "patience": 0, "factor": 0.5}});
    let plain = schedule(spec.clone());
    assert!(plain.is_adaptive());
    let preview = plain.preview(6);
    for (got, want) in preview.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 0.8]) {
        assert!((got - want).abs() < 1e-15, "{preview:?}");
    }
    let mut s = Scheduler::new(plain);
    s.observe(1.0);
    s.observe(2.0);
    // Reduced to 0.4: the warm-up now ramps towards the current rate.
    assert_eq!((s.lr(2), s.lr(4), s.lr(100)), (0.2, 0.4, 0.4));
}

#[test]
fn closed_form_schedules_ignore_metrics() {
    let sched: Schedule = schedule(json!({"kind": "constant", "lr": 0.3}));
    let mut s = Scheduler::new(sched);
    assert_eq!(s.monitor(), None);
    s.observe(1.0);
    s.observe(f64::NAN);
    assert_eq!(s.lr(5), 0.3);
    assert_eq!(s.state().plateau, None);
    assert_eq!(serde_json::to_value(s.state()).unwrap(), json!({}));
}
