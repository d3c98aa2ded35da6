//! `JobPlan`: a job spec that satisfies every rule, ready to warn about, store and train.
//!
//! The one place a job is checked. The API builds a plan from a request, sweeps
//! build one per member, `lrlab train` builds one from its flags, and a worker
//! rebuilds one from the spec it reads back from the database (a trust
//! boundary) — always with [`JobPlan::new`], so every path applies the same
//! rules and reports the same field paths.

use super::spec::{InvalidJob, JobRequest, JobSpec, FASHION_MNIST_TRAIN_LEN, MAX_NAME_LEN};
use crate::schedule::Schedule;
use crate::train::TrainPlan;
use crate::validation::FieldCode;

/// A checked job: its spec, its compiled training plan and its length.
#[derive(Debug, Clone)]
pub struct JobPlan {
    spec: JobSpec,
    train: TrainPlan,
    total_steps: u64,
}

impl JobPlan {
    /// Checks every rule of `spec`; errors name the field (`epochs`,
    /// `schedule.then.max_steps`, `optimizer.momentum`, `train_limit`, `name`).
    pub fn new(spec: JobSpec) -> Result<JobPlan, InvalidJob> {
        let train = TrainPlan::new(spec.train_config())?;
        for (path, limit) in [
            ("train_limit", spec.train_limit),
            ("test_limit", spec.test_limit),
        ] {
            if limit == Some(0) {
                return Err(InvalidJob::new(
                    FieldCode::OutOfRange,
                    path,
                    format!("{path} must be at least 1 (leave it out to use the whole split)"),
                ));
            }
        }
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(InvalidJob::new(
                FieldCode::InvalidValue,
                "name",
                format!("name must have 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
            return Err(InvalidJob::new(
                FieldCode::InvalidValue,
                "name",
                format!(
                    "name contains U+{:04X}, a control or invisible character; names are for people to read",
                    u32::from(c)
                ),
            ));
        }
        let spec = JobSpec {
            name: name.to_string(),
            ..spec
        };
        let total_steps = spec.total_steps(FASHION_MNIST_TRAIN_LEN);
        Ok(JobPlan {
            spec,
            train,
            total_steps,
        })
    }

    /// Fills the request's defaults ([`JobRequest::into_spec`]) and checks the result.
    pub fn from_request(
        request: JobRequest,
        draw_seed: impl FnOnce() -> u64,
    ) -> Result<JobPlan, InvalidJob> {
        JobPlan::new(request.into_spec(draw_seed)?)
    }

    /// Parses a JSON job request and plans it; shape errors name the field too.
    pub fn from_json(
        request: &serde_json::Value,
        draw_seed: impl FnOnce() -> u64,
    ) -> Result<JobPlan, InvalidJob> {
        let request: JobRequest = crate::validation::from_json_value(request)?;
        JobPlan::from_request(request, draw_seed)
    }

    /// The normalized spec: every default filled in.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The spec, taken out of the plan.
    pub fn into_spec(self) -> JobSpec {
        self.spec
    }

    /// What the trainer runs.
    pub fn train(&self) -> &TrainPlan {
        &self.train
    }

    /// The compiled schedule.
    pub fn schedule(&self) -> &Schedule {
        self.train.schedule()
    }

    /// Updates over the whole job on the full Fashion-MNIST training split (cut by
    /// `train_limit`); the worker corrects it once the data is loaded.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }
}

/// Characters a name may not hold: controls (NUL, tab, newline, escapes) and the invisible
/// formatting characters (zero-width space and joiners, direction overrides, the BOM) that
/// make two names look alike or a name print differently from what it is.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(request: serde_json::Value) -> Result<JobPlan, InvalidJob> {
        JobPlan::from_json(&request, || 7)
    }

    #[test]
    fn defaults_are_filled_and_the_seed_drawn_once() {
        let plan = plan(json!({"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}})).unwrap();
        let spec = plan.spec();
        assert_eq!(
            (spec.name.as_str(), spec.batch_size, spec.seed),
            ("constant", 256, 7)
        );
        assert_eq!(plan.total_steps(), 3 * 235);
        assert_eq!(plan.schedule().lr(0), 0.1);
    }

    #[test]
    fn every_rule_names_its_field() {
        let base = json!({"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}});
        let with = |field: &str, value: serde_json::Value| {
            let mut request = base.clone();
            request[field] = value;
            request
        };
        for (request, path) in [
            (with("epochs", json!(0)), "epochs"),
            (with("batch_size", json!(60_001)), "batch_size"),
            (with("train_limit", json!(0)), "train_limit"),
            (with("name", json!("   ")), "name"),
            (
                with("optimizer", json!({"momentum": 1.5})),
                "optimizer.momentum",
            ),
            (
                with("schedule", json!({"kind": "constant", "lr": -1})),
                "schedule.lr",
            ),
            (with("schedule", json!({"kind": "constant"})), "schedule.lr"),
            (with("colour", json!("red")), "colour"),
        ] {
            let err = plan(request.clone()).unwrap_err();
            assert_eq!(err.path, path, "{request}");
        }
    }

    #[test]
    fn names_with_controls_or_invisible_characters_are_refused_and_others_kept() {
        let named = |name: &str| {
            plan(json!({"name": name, "epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}}))
        };
        for bad in [
            "a\u{0}b",
            "a\nb",
            "co\u{200B}sine",
            "\u{202E}enisoc",
            "\u{FEFF}bom",
        ] {
            let err = named(bad).unwrap_err();
            assert_eq!(err.path, "name", "{bad:?}");
            assert!(err.message.contains("U+"), "{}", err.message);
        }
        for good in ["cosine 0.3→0.01", "café", "学习率", "warm-up (5) 🔥", "a b"] {
            assert_eq!(named(good).unwrap().spec().name, good);
        }
    }

    #[test]
    fn a_stored_spec_plans_to_the_same_spec() {
        let first = plan(json!({"name": " sqrt ", "epochs": 2, "schedule": {"kind": "inverse_power", "lr": 0.1}})).unwrap();
        assert_eq!(first.spec().name, "sqrt");
        let again = JobPlan::new(first.spec().clone()).unwrap();
        assert_eq!(again.spec(), first.spec());
    }
}
