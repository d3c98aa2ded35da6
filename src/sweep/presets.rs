//! Ready-made sweeps for the chapter's questions, served at
//! `GET /v1/sweeps/presets`; each request is submittable as is.

use serde::Serialize;
use serde_json::{json, Value};

/// A named sweep request with the question it answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    pub name: &'static str,
    /// The question, in one sentence.
    pub question: &'static str,
    /// A `POST /v1/sweeps` body.
    pub request: Value,
}

/// Every preset.
pub fn presets() -> Vec<Preset> {
    vec![chapter(), exponent(), warmup_length(), best_fixed()]
}

/// The preset called `name`.
pub fn preset(name: &str) -> Option<Preset> {
    presets().into_iter().find(|p| p.name == name)
}

fn chapter() -> Preset {
    let variant = |name: &str, schedule: Value| json!({"name": name, "schedule": schedule});
    Preset {
        name: "chapter",
        question: "Which of the chapter's six schedules trains this LeNet best in 30 epochs, and which of them can three seeds not tell apart?",
        request: json!({
            "name": "chapter",
            "base": {"epochs": 30, "batch_size": 256},
            "variants": [
                variant("fixed", json!({"kind": "constant", "lr": 0.3})),
                variant("square-root", json!({"kind": "inverse_power", "lr": 0.1, "power": 0.5})),
                variant("factor", json!({"kind": "factor", "lr": 2.0, "factor": 0.9, "min_lr": 0.01})),
                variant("multi-factor", json!({"kind": "multi_factor", "lr": 0.5, "milestones": [15, 30], "factor": 0.5})),
                variant("cosine", json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20})),
                variant("cosine-warmup", json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20, "warmup_steps": 5})),
            ],
            "seeds": [0, 1, 2]
        }),
    }
}

fn exponent() -> Preset {
    Preset {
        name: "exponent",
        question: "How does convergence change with the exponent of the inverse-power schedule lr·(t+1)^(−power), from 0.25 to 1.0 (0.5 is the square root)?",
        request: json!({
            "name": "exponent",
            "base": {
                "epochs": 30,
                "batch_size": 256,
                "schedule": {"kind": "inverse_power", "lr": 0.1, "power": 0.5}
            },
            "grid": {"schedule.power": [0.25, 0.5, 0.75, 1.0]},
            "seeds": [0, 1, 2],
            "early_stopping": {
                "kind": "asha", "metric": "test_acc", "mode": "max",
                "grace_period": 2, "reduction_factor": 3
            }
        }),
    }
}

fn warmup_length() -> Preset {
    Preset {
        name: "warmup_length",
        question: "How long should the warm-up of a 30-epoch cosine from 0.3 to 0.01 last: 0, 1, 2, 5 or 10 epochs?",
        request: json!({
            "name": "warmup_length",
            "base": {
                "epochs": 30,
                "batch_size": 256,
                "schedule": {"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 30, "warmup_steps": 0}
            },
            "grid": {"schedule.warmup_steps": [0, 1, 2, 5, 10]},
            "seeds": [0, 1, 2]
        }),
    }
}

fn best_fixed() -> Preset {
    Preset {
        name: "best_fixed",
        question: "What is the best model a fixed learning rate can give in 30 epochs, trying rates from 0.05 to 0.5?",
        request: json!({
            "name": "best_fixed",
            "base": {
                "epochs": 30,
                "batch_size": 256,
                "schedule": {"kind": "constant", "lr": 0.1}
            },
            "grid": {"schedule.lr": [0.05, 0.1, 0.2, 0.3, 0.4, 0.5]},
            "seeds": [0, 1, 2]
        }),
    }
}
