//! The schedule engine as other modules use it: only through the public API.

use lrlab::preview::{to_csv, Preview};
use lrlab::schedule::{catalog, Monitor, Schedule, ScheduleSpec, Scheduler, SpecError};
use serde_json::json;

#[test]
fn a_request_body_spec_is_parsed_validated_and_previewed() {
    let body = json!({"schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "linear", "start_lr": 1.0, "end_lr": 0.0, "steps": 4}}, "steps": 7});
    let schedule = Schedule::from_json(&body["schedule"]).unwrap();
    let preview = Preview::new(&schedule, 7).unwrap();
    assert_eq!(preview.lr, [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]);
    assert_eq!(
        serde_json::to_value(&preview).unwrap(),
        json!({"steps": 7, "lr": [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0], "adaptive": false})
    );
    assert!(to_csv(&preview.lr).starts_with("step,lr\n0,0\n1,0.5\n"));
}

#[test]
fn errors_are_prefixed_with_the_body_field() {
    let body = json!({"schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "cosine", "lr": 0.1, "max_steps": 0}}});
    let err: SpecError = Schedule::from_json(&body["schedule"])
        .unwrap_err()
        .prefixed("schedule");
    assert_eq!(
        (err.code, err.path.as_str()),
        ("out_of_range", "schedule.then.max_steps")
    );
}

#[test]
fn a_stored_normalized_spec_rebuilds_the_same_schedule() {
    let schedule =
        Schedule::from_json(&json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 50}))
            .unwrap();
    let stored = serde_json::to_string(schedule.spec()).unwrap();
    let spec: ScheduleSpec = serde_json::from_str(&stored).unwrap();
    let again = Schedule::new(spec).unwrap();
    assert_eq!(again.preview(60), schedule.preview(60));
    assert_eq!(
        again.max_step_reference(),
        Some(("total_steps".to_owned(), 50))
    );
}

#[test]
fn a_trainer_drives_an_adaptive_schedule_and_checkpoints_it() {
    let schedule = Schedule::from_json(
        &json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": "train_loss", "patience": 0}),
    )
    .unwrap();
    let mut scheduler = Scheduler::new(schedule.clone());
    assert_eq!(scheduler.monitor(), Some(Monitor::TrainLoss));
    scheduler.observe(1.0);
    scheduler.observe(1.0);
    let checkpoint = serde_json::to_vec(&scheduler.state()).unwrap();
    let mut resumed = Scheduler::new(schedule);
    resumed.restore(serde_json::from_slice(&checkpoint).unwrap());
    assert_eq!(resumed.lr(10), scheduler.lr(10));
    assert!((resumed.lr(10) - 0.01).abs() < 1e-15);
}

#[test]
fn the_catalog_serializes_for_the_kinds_endpoint() {
    let kinds = serde_json::to_value(catalog()).unwrap();
    let kinds = kinds.as_array().unwrap();
    assert_eq!(kinds.len(), 14);
    assert!(kinds
        .iter()
        .all(|k| k["formula"].is_string() && k["fields"].is_array()));
}
