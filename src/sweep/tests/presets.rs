use serde_json::json;

use super::validate_job;
use crate::job::JobRequest;
use crate::sweep::path::{OPTIMIZER_FIELDS, OPTIONAL_JOB_FIELDS};
use crate::sweep::warnings::DEFAULT_BATCH_SIZE;
use crate::sweep::{
    canonical_json, expand, preset, presets, sweep_warnings, StoppingParams, SweepRequest,
};

fn request(name: &str) -> SweepRequest {
    let preset = preset(name).unwrap_or_else(|| panic!("preset {name}"));
    serde_json::from_value(preset.request).unwrap()
}

#[test]
fn every_preset_expands_into_jobs_the_job_api_accepts() {
    let all = presets();
    assert_eq!(
        all.iter().map(|p| p.name).collect::<Vec<_>>(),
        ["chapter", "exponent", "warmup_length", "best_fixed"]
    );
    for preset in all {
        let request: SweepRequest = serde_json::from_value(preset.request.clone()).unwrap();
        assert_eq!(request.name.as_deref(), Some(preset.name));
        assert!(preset.question.ends_with('?'), "{}", preset.question);
        // `expand` runs every member through the real job validator.
        let plan =
            expand(&request, validate_job).unwrap_or_else(|e| panic!("{}: {e:?}", preset.name));
        assert_eq!(plan.seeds, [0, 1, 2]);
        for member in &plan.members {
            let job: JobRequest = serde_json::from_value(member.job.clone()).unwrap();
            let spec = job
                .into_spec(|| unreachable!("members carry their seed"))
                .unwrap();
            assert_eq!(spec.seed, member.seed);
            assert_eq!(spec.epochs, 30);
            assert_eq!(spec.batch_size, 256);
            assert_eq!(spec.name, member.name);
        }
        // The canonical form is stable.
        assert_eq!(canonical_json(&request), canonical_json(&request.clone()));
    }
}

#[test]
fn the_chapter_preset_runs_its_six_schedules_without_early_stopping() {
    let plan = expand(&request("chapter"), validate_job).unwrap();
    let names: Vec<&str> = plan.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "fixed",
            "square-root",
            "factor",
            "multi-factor",
            "cosine",
            "cosine-warmup"
        ]
    );
    assert_eq!(plan.members.len(), 18);
    assert_eq!(plan.early_stopping, None);
    assert_eq!(
        plan.configs[5].job["schedule"],
        json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20, "warmup_steps": 5})
    );
    assert_eq!(plan.configs[2].job["schedule"]["min_lr"], json!(0.01));
}

#[test]
fn the_exponent_preset_uses_asha_over_four_powers() {
    let plan = expand(&request("exponent"), validate_job).unwrap();
    let names: Vec<&str> = plan.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["power=0.25", "power=0.5", "power=0.75", "power=1.0"]
    );
    let Some(StoppingParams::Asha(asha)) = plan.early_stopping else {
        panic!("asha expected");
    };
    assert_eq!(
        (asha.grace_period, asha.reduction_factor, asha.max_t),
        (2, 3, 30)
    );
    assert_eq!(asha.rungs(), [2, 6, 18]);
    assert!(sweep_warnings(&plan, 60_000).is_empty());
}

#[test]
fn the_warmup_and_fixed_rate_presets_sweep_one_field() {
    let plan = expand(&request("warmup_length"), validate_job).unwrap();
    let warmups: Vec<u64> = plan
        .configs
        .iter()
        .map(|c| c.job["schedule"]["warmup_steps"].as_u64().unwrap())
        .collect();
    assert_eq!(warmups, [0, 1, 2, 5, 10]);
    assert!(plan
        .configs
        .iter()
        .all(|c| c.job["schedule"]["max_steps"] == json!(30)));
    let plan = expand(&request("best_fixed"), validate_job).unwrap();
    assert_eq!(plan.configs.len(), 6);
    assert_eq!(plan.configs[0].name, "lr=0.05");
    assert_eq!(
        plan.configs[5].job["schedule"],
        json!({"kind": "constant", "lr": 0.5})
    );
}

#[test]
fn the_sweep_knows_the_job_requests_optional_fields_and_defaults() {
    // Every field the grid may set without the base naming it is a real job field…
    let samples = json!({
        "model": "lenet", "dataset": "fashion-mnist", "batch_size": 128, "optimizer": {},
        "schedule_unit": "step", "train_limit": 10, "test_limit": 10, "priority": 1
    });
    for field in OPTIONAL_JOB_FIELDS {
        let mut job = json!({"epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}});
        job[field] = samples[field].clone();
        assert!(validate_job(&job).is_ok(), "{field}");
    }
    let samples = json!({"kind": "sgd", "momentum": 0.5, "nesterov": true, "weight_decay": 0.1});
    for field in OPTIMIZER_FIELDS {
        let mut job = json!({"epochs": 1, "optimizer": {"momentum": 0.5}, "schedule": {"kind": "constant", "lr": 0.1}});
        job["optimizer"][field] = samples[field].clone();
        assert!(validate_job(&job).is_ok(), "optimizer.{field}");
    }
    // …and the warnings assume the job's default batch size.
    let job: JobRequest =
        serde_json::from_value(json!({"epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}}))
            .unwrap();
    assert_eq!(u64::from(job.batch_size), DEFAULT_BATCH_SIZE);
}

/// The README's queue-throughput sweep is the chapter preset cut short: the same six
/// configs and seeds, so its figures speak for the preset's groups.
#[test]
fn the_readme_small_chapter_file_is_the_chapter_preset_cut_short() {
    let small: SweepRequest = crate::validation::from_json_slice(include_bytes!(
        "../../../docs/sweeps/chapter-small.json"
    ))
    .unwrap();
    let small_plan = expand(&small, validate_job).unwrap();
    let full_plan = expand(&request("chapter"), validate_job).unwrap();
    let configs = |plan: &crate::sweep::SweepPlan| {
        plan.configs
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(configs(&small_plan), configs(&full_plan));
    assert_eq!(small_plan.seeds, full_plan.seeds);
    for member in &small_plan.members {
        let job: JobRequest = serde_json::from_value(member.job.clone()).unwrap();
        let spec = job
            .into_spec(|| unreachable!("members carry their seed"))
            .unwrap();
        assert_eq!(
            (spec.epochs, spec.train_limit, spec.test_limit),
            (3, Some(20_000), Some(2_000))
        );
    }
}
