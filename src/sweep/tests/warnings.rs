use super::plan;
use crate::sweep::{sweep_warnings, SweepWarning};

const TRAIN_LEN: u64 = 60_000;

fn warnings(json: &str) -> Vec<SweepWarning> {
    sweep_warnings(&plan(json).unwrap(), TRAIN_LEN)
}

fn codes(warnings: &[SweepWarning]) -> Vec<(&str, &str)> {
    warnings
        .iter()
        .map(|w| (w.code.as_str(), w.path.as_deref().unwrap_or("")))
        .collect()
}

const ASHA2: &str =
    r#""early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 2}"#;

#[test]
fn a_rung_inside_a_warmup_is_flagged_with_the_configs_it_hurts() {
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20}}}},
            "grid": {{"schedule.warmup_steps": [0, 2, 5, 10]}}, {ASHA2}}}"#
    ));
    assert_eq!(
        codes(&got),
        [(
            "grace_period_shorter_than_warmup",
            "early_stopping.grace_period"
        )]
    );
    let message = &got[0].message;
    assert!(message.starts_with("the first rung (epoch 2) comes before the warm-up of 2 config(s) ends: warmup_steps=5 (5 epochs), warmup_steps=10 (10 epochs)."), "{message}");
    assert!(
        message.ends_with("judge from epoch 10 on to compare them at full rate"),
        "{message}"
    );
}

#[test]
fn warmups_count_in_epochs_also_for_schedules_stepped_per_update() {
    // 60,000 / 256 → 235 updates per epoch; a warm-up of 470 updates lasts 2 epochs,
    // one of 471 ends in epoch 3.
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 10, "schedule_unit": "step",
                       "schedule": {{"kind": "warmup", "steps": 470, "then": {{"kind": "constant", "lr": 0.1}}}}}},
            "grid": {{"schedule.steps": [470, 471]}}, {ASHA2}}}"#
    ));
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .message
            .contains("1 config(s) ends: steps=471 (3 epochs)"),
        "{}",
        got[0].message
    );
    // A linear ramp up and one-cycle's rise are warm-ups too; a linear decay is not.
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "constant", "lr": 0.1}}}},
            "variants": [{{"name": "ramp", "schedule": {{"kind": "linear", "start_lr": 0.0, "end_lr": 0.3, "steps": 4}}}},
                         {{"name": "decay", "schedule": {{"kind": "linear", "start_lr": 0.3, "end_lr": 0.0, "steps": 4}}}},
                         {{"name": "cycle", "schedule": {{"kind": "one_cycle", "max_lr": 0.3, "total_steps": 10}}}}],
            {ASHA2}}}"#
    ));
    assert!(
        got[0].message.contains("ramp (4 epochs), cycle (3 epochs)"),
        "{}",
        got[0].message
    );
}

#[test]
fn the_median_rule_is_checked_against_warmups_too() {
    let got = warnings(
        r#"{"base": {"epochs": 30, "schedule": {"kind": "cosine", "lr": 0.3, "max_steps": 29, "warmup_steps": 5}},
            "early_stopping": {"kind": "median", "metric": "test_acc", "warmup_epochs": 3}}"#,
    );
    // Judged from epoch 4 on, while the 5-epoch warm-up is still on; from epoch 5 it is over.
    assert_eq!(
        codes(&got),
        [(
            "grace_period_shorter_than_warmup",
            "early_stopping.warmup_epochs"
        )]
    );
    let got = warnings(
        r#"{"base": {"epochs": 30, "schedule": {"kind": "cosine", "lr": 0.3, "max_steps": 29, "warmup_steps": 5}},
            "early_stopping": {"kind": "median", "metric": "test_acc", "warmup_epochs": 4}}"#,
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_grid_over_epochs_with_early_stopping_is_flagged() {
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "constant", "lr": 0.1}}}},
            "grid": {{"epochs": [10, 20, 30]}}, {ASHA2}}}"#
    ));
    assert_eq!(codes(&got), [("schedule_depends_on_epochs", "grid.epochs")]);
    assert!(
        got[0]
            .message
            .starts_with("the configs run from 10 to 30 epochs"),
        "{}",
        got[0].message
    );
}

#[test]
fn a_schedule_fitted_to_the_run_is_flagged_at_the_field_that_fits_it() {
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "cosine", "lr": 0.3, "max_steps": 30}}}},
            "grid": {{"schedule.lr": [0.1, 0.3]}},
            "variants": [{{"name": "short", "schedule": {{"max_steps": 20}}}},
                         {{"name": "one-cycle", "schedule": {{"kind": "one_cycle", "max_lr": 0.3, "total_steps": 30}}}}],
            {ASHA2}}}"#
    ));
    assert_eq!(
        codes(&got),
        [
            (
                "grace_period_shorter_than_warmup",
                "early_stopping.grace_period"
            ),
            ("schedule_depends_on_epochs", "base.schedule.max_steps"),
            (
                "schedule_depends_on_epochs",
                "variants[1].schedule.total_steps"
            ),
        ]
    );
    assert!(
        got[1].message.starts_with(
            "schedule.max_steps (30) equals the job's length (30 epochs) in lr=0.1, lr=0.3: "
        ),
        "{}",
        got[1].message
    );
    assert!(
        got[1].message.contains("at the rungs (2, 6, 18)"),
        "{}",
        got[1].message
    );
    // In the step unit the job's length is its updates: 235 per epoch × 2 epochs.
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 4, "schedule_unit": "step", "schedule": {{"kind": "cosine", "lr": 0.3, "max_steps": 940}}}},
            {ASHA2}}}"#
    ));
    assert_eq!(
        codes(&got),
        [("schedule_depends_on_epochs", "base.schedule.max_steps")]
    );
    assert!(
        got[0].message.contains("(940 updates)"),
        "{}",
        got[0].message
    );
}

#[test]
fn without_early_stopping_or_with_length_free_schedules_nothing_is_flagged() {
    let got = warnings(
        r#"{"base": {"epochs": 30, "schedule": {"kind": "cosine", "lr": 0.3, "max_steps": 30, "warmup_steps": 10}},
            "grid": {"epochs": [10, 30]}}"#,
    );
    assert!(got.is_empty());
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "inverse_power", "lr": 0.1}}}},
            "grid": {{"schedule.power": [0.25, 1]}}, {ASHA2}}}"#
    ));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn warnings_have_the_shape_of_job_warnings() {
    let got = warnings(&format!(
        r#"{{"base": {{"epochs": 30, "schedule": {{"kind": "constant", "lr": 0.1}}}},
            "grid": {{"epochs": [10, 30]}}, {ASHA2}}}"#
    ));
    let json = serde_json::to_value(&got[0]).unwrap();
    let job: crate::job::Warning = serde_json::from_value(json).unwrap();
    assert_eq!(job.code, "schedule_depends_on_epochs");
    assert_eq!(job.path.as_deref(), Some("grid.epochs"));
}
