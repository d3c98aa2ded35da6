use serde_json::{json, Value};

use super::{error, parse, plan, validate_job};
use crate::sweep::{expand, ConfigOrigin, StoppingParams, MAX_MEMBER_NAME_LEN};

/// The issue's example request.
const EXPONENT: &str = r#"{
    "name": "exponent",
    "base": {"epochs": 30, "batch_size": 256, "schedule": {"kind": "inverse_power", "lr": 0.1, "power": 0.5}},
    "grid": {"schedule.power": [0.25, 0.5, 0.75, 1.0]},
    "variants": [{"name": "cosine", "schedule": {"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20}}],
    "seeds": [0, 1, 2],
    "early_stopping": {"kind": "asha", "metric": "test_acc", "mode": "max", "grace_period": 2, "reduction_factor": 3},
    "max_concurrent": 4
}"#;

fn names(json: &str) -> Vec<String> {
    plan(json)
        .unwrap()
        .configs
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn the_issue_example_expands_into_five_configs_on_three_seeds() {
    let plan = plan(EXPONENT).unwrap();
    assert_eq!(
        plan.configs
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        [
            "power=0.25",
            "power=0.5",
            "power=0.75",
            "power=1.0",
            "cosine"
        ]
    );
    assert_eq!(plan.seeds, [0, 1, 2]);
    assert_eq!(plan.members.len(), 15);
    let member = &plan.members[4]; // config 1, seed 1
    assert_eq!((member.config, member.seed), (1, 1));
    assert_eq!(member.name, "exponent/power=0.5/seed=1");
    assert_eq!(member.job["seed"], json!(1));
    assert_eq!(member.job["name"], json!("exponent/power=0.5/seed=1"));
    assert_eq!(member.job["schedule"]["power"], json!(0.5));
    assert_eq!(member.job["batch_size"], json!(256));

    // The variant's schedule replaces the base's (another kind): no stray `power`.
    let cosine = &plan.configs[4];
    assert_eq!(cosine.origin, ConfigOrigin::Variant { index: 0 });
    assert_eq!(
        cosine.job["schedule"],
        json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20})
    );
    assert_eq!(cosine.job["epochs"], json!(30));
    assert_eq!(
        plan.configs[2].origin,
        ConfigOrigin::Grid { indices: vec![2] }
    );
    assert_eq!(
        serde_json::to_value(&plan.configs[2].overrides).unwrap(),
        json!({"schedule.power": 0.75})
    );
    assert_eq!(plan.max_concurrent, Some(4));
    let Some(StoppingParams::Asha(asha)) = plan.early_stopping else {
        panic!("asha expected");
    };
    assert_eq!(asha.max_t, 30, "max_t defaults to the epochs");
    assert_eq!(asha.rungs(), [2, 6, 18]);
    assert_eq!(plan.config_epochs(), [30; 5]);
}

#[test]
fn the_grid_is_a_cartesian_product_with_the_last_path_varying_fastest() {
    let plan = plan(
        r#"{"base": {"epochs": 3, "schedule": {"kind": "inverse_power", "lr": 0.1}},
            "grid": {"schedule.lr": [0.1, 0.2], "schedule.power": [0.5, 1, 2]}, "seeds": [0]}"#,
    )
    .unwrap();
    let got: Vec<(Value, Value)> = plan
        .configs
        .iter()
        .map(|c| {
            (
                c.job["schedule"]["lr"].clone(),
                c.job["schedule"]["power"].clone(),
            )
        })
        .collect();
    let want = [
        (json!(0.1), json!(0.5)),
        (json!(0.1), json!(1)),
        (json!(0.1), json!(2)),
        (json!(0.2), json!(0.5)),
        (json!(0.2), json!(1)),
        (json!(0.2), json!(2)),
    ];
    assert_eq!(got, want);
    assert_eq!(plan.configs[4].name, "lr=0.2,power=1");
    assert_eq!(
        plan.configs[4].origin,
        ConfigOrigin::Grid {
            indices: vec![1, 1]
        }
    );
}

#[test]
fn a_sweep_without_grid_or_variants_runs_the_base_on_every_seed() {
    let plan = plan(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}, "repeats": 5}"#,
    )
    .unwrap();
    assert_eq!(plan.configs.len(), 1);
    assert_eq!(plan.configs[0].name, "base");
    assert_eq!(plan.configs[0].origin, ConfigOrigin::Base);
    assert_eq!(plan.members.len(), 5);
    assert_eq!(plan.members[4].name, "sweep/base/seed=4");
}

#[test]
fn a_missing_grid_path_is_an_error_naming_it() {
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "inverse_power", "lr": 0.1}}, "grid": {"schedule.pwoer": [1]}}"#,
    );
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("unknown_path", "grid.schedule.pwoer")
    );
    assert!(
        err.message
            .contains("`schedule.pwoer` is not in the base request"),
        "{}",
        err.message
    );

    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}, "grid": {"epochs.x": [1]}}"#,
    );
    assert_eq!(err.path, "grid.epochs.x");
    assert!(
        err.message
            .contains("`epochs` is a number in the base request, not an object"),
        "{}",
        err.message
    );

    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "multi_factor", "lr": 0.1, "milestones": [1], "factor": 0.5}},
            "grid": {"schedule.milestones[1]": [2]}}"#,
    );
    assert_eq!(err.path, "grid.schedule.milestones[1]");
    assert!(err.message.contains("has 1 elements"), "{}", err.message);
}

#[test]
fn a_grid_path_may_set_a_field_the_base_leaves_to_its_default() {
    // `power` (inverse_power's default), `optimizer.momentum` with no optimizer, `batch_size`.
    let plan = plan(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "inverse_power", "lr": 0.1}},
            "grid": {"schedule.power": [0.25], "optimizer.momentum": [0.9], "batch_size": [64]}, "seeds": [0]}"#,
    )
    .unwrap();
    let job = &plan.members[0].job;
    assert_eq!(job["schedule"]["power"], json!(0.25));
    assert_eq!(job["optimizer"], json!({"momentum": 0.9}));
    assert_eq!(job["batch_size"], json!(64));

    // But not a field the kind does not have, nor an unknown job field.
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}, "grid": {"schedule.power": [1]}}"#,
    );
    assert_eq!(err.path, "grid.schedule.power");
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}, "grid": {"momentum": [1]}}"#,
    );
    assert_eq!(err.path, "grid.momentum");
}

#[test]
fn grid_paths_reach_into_nested_schedules_and_phases() {
    let plan = plan(
        r#"{"base": {"epochs": 6, "schedule": {"kind": "sequential", "phases": [
                {"steps": 2, "schedule": {"kind": "constant", "lr": 0.1}},
                {"schedule": {"kind": "warmup", "steps": 1, "then": {"kind": "constant", "lr": 0.2}}}]}},
            "grid": {"schedule.phases[0].steps": [1, 3], "schedule.phases[1].schedule.then.lr": [0.05]},
            "seeds": [0]}"#,
    )
    .unwrap();
    assert_eq!(names_of(&plan), ["steps=1,lr=0.05", "steps=3,lr=0.05"]);
    assert_eq!(
        plan.members[1].job["schedule"]["phases"][0]["steps"],
        json!(3)
    );
    assert_eq!(
        plan.members[1].job["schedule"]["phases"][1]["schedule"]["then"]["lr"],
        json!(0.05)
    );
}

fn names_of(plan: &crate::sweep::SweepPlan) -> Vec<&str> {
    plan.configs.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn malformed_and_overlapping_paths_are_rejected() {
    for bad in [
        "schedule..lr",
        "schedule.lr[x]",
        "1epochs",
        "schedule.lr[",
        "epochs[1",
    ] {
        let err = error(&format!(
            r#"{{"base": {{"epochs": 2, "schedule": {{"kind": "constant", "lr": 0.1}}}}, "grid": {{"{bad}": [1]}}}}"#
        ));
        assert_eq!(
            (err.code.as_str(), err.path.clone()),
            ("invalid_path", format!("grid.{bad}")),
            "{bad}"
        );
    }
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}},
            "grid": {"schedule": [{"kind": "constant", "lr": 0.2}], "schedule.lr": [0.3]}}"#,
    );
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("conflicting_fields", "grid.schedule.lr")
    );
}

#[test]
fn seed_and_name_belong_to_the_sweep() {
    let base = r#""base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}"#;
    let err = error(&format!(r#"{{{base}, "grid": {{"seed": [1, 2]}}}}"#));
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("reserved_field", "grid.seed")
    );
    assert!(err.message.contains("seeds"), "{}", err.message);
    let err = error(&format!(r#"{{{base}, "grid": {{"name": ["a"]}}}}"#));
    assert_eq!(err.path, "grid.name");
    let err = error(&format!(r#"{{{base}, "variants": [{{"seed": 3}}]}}"#));
    assert_eq!(err.path, "variants[0].seed");
    let err =
        error(r#"{"base": {"epochs": 2, "seed": 1, "schedule": {"kind": "constant", "lr": 0.1}}}"#);
    assert_eq!(err.path, "base.seed");
    let err = error(
        r#"{"base": {"epochs": 2, "name": "x", "schedule": {"kind": "constant", "lr": 0.1}}}"#,
    );
    assert_eq!(err.path, "base.name");
    let err = error(r#"{"base": [1]}"#);
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("invalid_type", "base")
    );
}

#[test]
fn a_grid_value_that_makes_an_invalid_job_is_named_with_its_index() {
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "inverse_power", "lr": 0.1}},
            "grid": {"schedule.power": [0.5, 0.75, -1]}}"#,
    );
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("out_of_range", "grid.schedule.power[2]")
    );
    assert_eq!(
        err.message,
        "grid value -1 for schedule.power makes an invalid job: `power` must be a finite number >= 0, got -1"
    );

    // A whole schedule as a grid value: the path goes on inside the value.
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}},
            "grid": {"schedule": [{"kind": "constant", "lr": 0.1}, {"kind": "constant", "lr": -2}]}}"#,
    );
    assert_eq!(err.path, "grid.schedule[1].lr");

    // An interplay: warmup_steps from the grid against the base's max_steps.
    let err = error(
        r#"{"base": {"epochs": 9, "schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 5}},
            "grid": {"schedule.warmup_steps": [0, 5]}}"#,
    );
    assert_eq!(err.path, "grid.schedule.warmup_steps[1]");
}

#[test]
fn a_variant_that_makes_an_invalid_job_is_named_by_its_field() {
    let err = error(
        r#"{"base": {"epochs": 30, "schedule": {"kind": "constant", "lr": 0.1}},
            "variants": [{"name": "ok"}, {"name": "bad", "schedule": {"kind": "cosine", "lr": 0.3, "max_steps": 4, "warmup_steps": 5}}]}"#,
    );
    assert_eq!(err.path, "variants[1].schedule.warmup_steps");
    assert!(
        err.message
            .starts_with("variant \"bad\" makes an invalid job: "),
        "{}",
        err.message
    );

    let err = error(
        r#"{"base": {"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}}, "variants": [{"epochs": 0}]}"#,
    );
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("out_of_range", "variants[0].epochs")
    );
    assert!(
        err.message.starts_with("variant variants[0] makes"),
        "{}",
        err.message
    );
}

#[test]
fn an_invalid_base_is_blamed_on_the_base() {
    let err = error(
        r#"{"base": {"epochs": 3, "schedule": {"kind": "inverse_power", "lr": -0.1}},
            "grid": {"schedule.power": [0.25]}}"#,
    );
    assert_eq!(err.path, "base.schedule.lr");
    assert!(
        err.message
            .starts_with("the base request makes an invalid job in config \"power=0.25\": "),
        "{}",
        err.message
    );
    let err = error(
        r#"{"base": {"epochs": 3, "batch_size": 0, "schedule": {"kind": "constant", "lr": 0.1}}}"#,
    );
    assert_eq!(err.path, "base.batch_size");
    assert!(
        err.message
            .starts_with("the base request makes an invalid job: "),
        "{}",
        err.message
    );
}

#[test]
fn variants_merge_into_the_base_as_a_merge_patch() {
    let plan = plan(
        r#"{"base": {"epochs": 3, "train_limit": 100, "optimizer": {"momentum": 0.5},
                     "schedule": {"kind": "inverse_power", "lr": 0.1, "power": 0.25}},
            "variants": [{"schedule": {"lr": 0.2}, "optimizer": {"nesterov": true}, "train_limit": null}],
            "seeds": [0]}"#,
    )
    .unwrap();
    let job = &plan.configs[0].job;
    assert_eq!(
        job["schedule"],
        json!({"kind": "inverse_power", "lr": 0.2, "power": 0.25})
    );
    assert_eq!(job["optimizer"], json!({"momentum": 0.5, "nesterov": true}));
    assert!(job.get("train_limit").is_none());
    assert_eq!(
        serde_json::to_value(&plan.configs[0].overrides).unwrap(),
        json!({"optimizer.nesterov": true, "schedule.lr": 0.2, "train_limit": null})
    );
    assert_eq!(
        plan.configs[0].name,
        "nesterov=true,lr=0.2,train_limit=null"
    );
}

#[test]
fn configs_are_named_from_their_overrides_and_names_are_unique() {
    let got = names(
        r#"{"base": {"epochs": 5, "schedule": {"kind": "warmup", "steps": 1,
                     "then": {"kind": "constant", "lr": 0.1}}},
            "grid": {"schedule.then.lr": [0.2]}, "seeds": [0]}"#,
    );
    assert_eq!(got, ["lr=0.2"]);
    // Two overrides ending in the same key use their full paths.
    let got = names(
        r#"{"base": {"epochs": 5, "schedule": {"kind": "warmup", "steps": 1, "begin_lr": 0.01,
                     "then": {"kind": "linear", "start_lr": 0.1, "end_lr": 0.0, "steps": 4}}},
            "grid": {"schedule.steps": [1], "schedule.then.steps": [3]}, "seeds": [0]}"#,
    );
    assert_eq!(got, ["schedule.steps=1,schedule.then.steps=3"]);
    // Unnamed variants alike get #2; strings read bare, schedules by kind.
    let got = names(
        r#"{"base": {"epochs": 5, "schedule": {"kind": "constant", "lr": 0.1}},
            "variants": [{"schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 5}},
                         {"schedule": {"kind": "cosine", "lr": 0.2, "max_steps": 5}},
                         {"schedule_unit": "step"}, {}, {"name": "schedule=cosine#2"}],
            "seeds": [0]}"#,
    );
    assert_eq!(
        got,
        [
            "schedule=cosine",
            "schedule=cosine#3",
            "schedule_unit=step",
            "base",
            "schedule=cosine#2"
        ]
    );
}

#[test]
fn explicit_variant_names_must_be_unique_and_reasonable() {
    let err = error(
        r#"{"base": {"epochs": 5, "schedule": {"kind": "constant", "lr": 0.1}},
            "variants": [{"name": "a"}, {"name": " a "}]}"#,
    );
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("duplicate_value", "variants[1].name")
    );
    let err = error(
        r#"{"base": {"epochs": 5, "schedule": {"kind": "constant", "lr": 0.1}}, "variants": [{"name": "  "}]}"#,
    );
    assert_eq!(err.path, "variants[0].name");
    let long = "x".repeat(101);
    let err = error(&format!(
        r#"{{"name": "{long}", "base": {{"epochs": 5, "schedule": {{"kind": "constant", "lr": 0.1}}}}}}"#
    ));
    assert_eq!(err.path, "name");
}

#[test]
fn member_names_fit_the_job_name_limit() {
    assert_eq!(MAX_MEMBER_NAME_LEN, crate::job::MAX_NAME_LEN);
    let sweep = "s".repeat(100);
    let variant = "v".repeat(100);
    let plan = plan(&format!(
        r#"{{"name": "{sweep}", "base": {{"epochs": 2, "schedule": {{"kind": "constant", "lr": 0.1}}}},
            "variants": [{{"name": "{variant}"}}], "seeds": [18446744073709551615]}}"#
    ))
    .unwrap();
    let name = &plan.members[0].name;
    assert_eq!(name.chars().count(), MAX_MEMBER_NAME_LEN);
    assert!(name.starts_with(&format!("{sweep}/vvv")), "{name}");
    assert!(name.ends_with("v…/seed=18446744073709551615"), "{name}");
}

#[test]
fn grid_values_and_sizes_are_limited() {
    let base = r#""base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}"#;
    let err = error(&format!(r#"{{{base}, "grid": {{"schedule.lr": []}}}}"#));
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("too_small", "grid.schedule.lr")
    );
    let many: Vec<String> = (0..101)
        .map(|i| format!("{}", f64::from(i) / 1000.0))
        .collect();
    let err = error(&format!(
        r#"{{{base}, "grid": {{"schedule.lr": [{}]}}}}"#,
        many.join(",")
    ));
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("too_large", "grid.schedule.lr")
    );
    let err = error(&format!(
        r#"{{{base}, "grid": {{"schedule.lr": [0.1, 0.2, 0.1]}}}}"#
    ));
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("duplicate_value", "grid.schedule.lr[2]")
    );

    // 10 × 10 configs × 10 seeds = 1,000 jobs is the limit; 1,100 is over it.
    let ten: Vec<String> = (1..=10)
        .map(|i| format!("{}", f64::from(i) / 100.0))
        .collect();
    let ten = ten.join(",");
    let at_limit = format!(
        r#"{{{base}, "grid": {{"schedule.lr": [{ten}], "batch_size": [1,2,3,4,5,6,7,8,9,10]}}, "repeats": 10}}"#
    );
    assert_eq!(plan(&at_limit).unwrap().members.len(), 1000);
    let over = format!(
        r#"{{{base}, "grid": {{"schedule.lr": [{ten}], "batch_size": [1,2,3,4,5,6,7,8,9,10]}},
             "variants": [{{}}, {{"epochs": 3}}, {{"epochs": 4}}, {{"epochs": 5}}, {{"epochs": 6}},
                          {{"epochs": 7}}, {{"epochs": 8}}, {{"epochs": 9}}, {{"epochs": 10}}, {{"epochs": 11}}],
             "repeats": 10}}"#
    );
    let err = error(&over);
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("too_large", "grid")
    );
    assert_eq!(
        err.message,
        "the sweep would run 110 configs × 10 seeds = 1100 jobs; at most 1000"
    );
}

#[test]
fn early_stopping_rules_are_checked_against_the_configs() {
    let with = |rule: &str| {
        format!(
            r#"{{"base": {{"epochs": 10, "schedule": {{"kind": "constant", "lr": 0.1}}}}, "early_stopping": {rule}}}"#
        )
    };
    let err = error(&with(
        r#"{"kind": "asha", "metric": "test_loss", "mode": "max", "grace_period": 1}"#,
    ));
    assert_eq!(err.path, "early_stopping.mode");
    assert!(
        err.message.contains("mode must be `min`"),
        "{}",
        err.message
    );
    let err = error(&with(
        r#"{"kind": "asha", "metric": "test_acc", "grace_period": 0}"#,
    ));
    assert_eq!(err.path, "early_stopping.grace_period");
    let err = error(&with(
        r#"{"kind": "asha", "metric": "test_acc", "grace_period": 10}"#,
    ));
    assert_eq!(err.path, "early_stopping.grace_period");
    assert!(
        err.message.contains("the longest config's epochs (10)"),
        "{}",
        err.message
    );
    let err = error(&with(
        r#"{"kind": "asha", "metric": "test_acc", "grace_period": 4, "max_t": 3}"#,
    ));
    assert_eq!(err.path, "early_stopping.max_t");
    let err = error(&with(
        r#"{"kind": "asha", "metric": "test_acc", "grace_period": 1, "reduction_factor": 1}"#,
    ));
    assert_eq!(err.path, "early_stopping.reduction_factor");
    let err = error(&with(
        r#"{"kind": "median", "metric": "test_acc", "warmup_epochs": 9}"#,
    ));
    assert_eq!(err.path, "early_stopping.warmup_epochs");
    let err = error(&with(
        r#"{"kind": "median", "metric": "test_acc", "n_startup": 0}"#,
    ));
    assert_eq!(err.path, "early_stopping.n_startup");

    let ok = plan(&with(
        r#"{"kind": "median", "metric": "train_loss", "warmup_epochs": 8}"#,
    ))
    .unwrap();
    let Some(StoppingParams::Median(median)) = ok.early_stopping else {
        panic!("median expected");
    };
    assert_eq!(
        (median.n_startup, median.warmup_epochs, median.synchronous),
        (3, 8, false)
    );
    assert_eq!(median.mode, crate::sweep::Mode::Min);

    // max_t defaults to the longest config.
    let mixed = plan(
        r#"{"base": {"epochs": 10, "schedule": {"kind": "constant", "lr": 0.1}},
            "grid": {"epochs": [4, 12]}, "early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 1}}"#,
    )
    .unwrap();
    let Some(StoppingParams::Asha(asha)) = mixed.early_stopping else {
        panic!("asha expected");
    };
    assert_eq!(asha.max_t, 12);
    assert_eq!(mixed.config_epochs(), [4, 12]);
}

#[test]
fn max_concurrent_must_be_positive() {
    let err = error(
        r#"{"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}, "max_concurrent": 0}"#,
    );
    assert_eq!(err.path, "max_concurrent");
}

#[test]
fn every_member_is_checked_by_the_validator() {
    let request = parse(EXPONENT);
    let seen = std::cell::RefCell::new(Vec::new());
    let plan = expand(&request, |job| {
        seen.borrow_mut()
            .push(job["name"].as_str().unwrap_or("").to_string());
        validate_job(job)
    })
    .unwrap();
    let seen = seen.into_inner();
    assert_eq!(seen.len(), 15);
    assert_eq!(
        seen,
        plan.members
            .iter()
            .map(|m| m.name.clone())
            .collect::<Vec<_>>()
    );
}
