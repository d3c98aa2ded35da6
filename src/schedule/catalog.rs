//! A machine-readable description of every schedule kind, so that a client
//! can build a form for a spec (served as `GET /v1/schedules/kinds`).
//!
//! A unit test checks that it lists exactly the fields the parser accepts,
//! with the defaults the parser fills in.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{json, Value};

/// One schedule kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindInfo {
    /// The `kind` tag.
    pub kind: &'static str,
    /// One line on what the schedule is for.
    pub summary: &'static str,
    /// `lr(t)` in plain text.
    pub formula: &'static str,
    /// Whether the rate depends on metrics observed during training.
    pub adaptive: bool,
    /// A complete, valid spec of this kind, to start a form from.
    pub example: Value,
    /// Every field besides `kind`.
    pub fields: Vec<FieldInfo>,
}

/// One field of a kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldInfo {
    pub name: &'static str,
    /// `number`, `integer`, `boolean`, `string` (one of `allowed`), `array`
    /// (of `items` or of `item_type`) or `schedule` (a nested spec).
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub required: bool,
    /// The value used when the field is left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// When the default is another field's value: that field's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_from: Option<&'static str>,
    pub description: &'static str,
    /// The rule the value must satisfy, e.g. `>= 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<&'static str>,
    /// The accepted strings of an enumerated field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<&'static str>,
    /// Element type of a plain array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_type: Option<&'static str>,
    /// Fields of each element of an array of objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<FieldInfo>,
}

impl FieldInfo {
    fn new(name: &'static str, ty: &'static str, description: &'static str) -> Self {
        FieldInfo {
            name,
            ty,
            required: true,
            default: None,
            default_from: None,
            description,
            constraint: None,
            allowed: Vec::new(),
            item_type: None,
            items: Vec::new(),
        }
    }
    fn default(mut self, value: Value) -> Self {
        self.required = false;
        self.default = Some(value);
        self
    }
    fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    fn constraint(mut self, rule: &'static str) -> Self {
        self.constraint = Some(rule);
        self
    }
    fn allowed(mut self, values: &[&'static str]) -> Self {
        self.allowed = values.to_vec();
        self
    }
}

fn rate(name: &'static str, description: &'static str) -> FieldInfo {
    FieldInfo::new(name, "number", description).constraint("finite, >= 0")
}
fn factor(name: &'static str, description: &'static str) -> FieldInfo {
    FieldInfo::new(name, "number", description).constraint("finite, > 0")
}
fn steps(name: &'static str, description: &'static str) -> FieldInfo {
    FieldInfo::new(name, "integer", description).constraint(">= 1")
}

/// Every kind, in the order of the README's table.
pub fn catalog() -> &'static [KindInfo] {
    static CATALOG: OnceLock<Vec<KindInfo>> = OnceLock::new();
    CATALOG.get_or_init(build)
}

fn build() -> Vec<KindInfo> {
    let kind = |kind, summary, formula, fields| KindInfo {
        kind,
        summary,
        formula,
        adaptive: false,
        example: examples(kind),
        fields,
    };
    vec![
        kind(
            "constant",
            "The same rate at every step.",
            "lr",
            vec![rate("lr", "The rate.")],
        ),
        kind(
            "inverse_power",
            "Decays like an inverse power of the step; power 0.5 is the square-root schedule.",
            "lr·(t+1)^(−power)",
            vec![
                rate("lr", "Rate at step 0."),
                FieldInfo::new("power", "number", "Exponent of the decay.")
                    .default(json!(0.5))
                    .constraint("finite, >= 0"),
            ],
        ),
        kind(
            "factor",
            "Multiplies the rate by `factor` every step, down to `min_lr`.",
            "max(min_lr, lr·factor^t)",
            vec![
                rate("lr", "Rate at step 0."),
                factor("factor", "Multiplier per step (> 1 grows, saturating at the largest f64)."),
                rate("min_lr", "Floor of the rate.").default(json!(0.0)),
            ],
        ),
        kind(
            "step",
            "Multiplies the rate by `factor` every `step_size` steps (PyTorch StepLR).",
            "lr·factor^⌊t/step_size⌋",
            vec![
                rate("lr", "Rate at step 0."),
                steps("step_size", "Steps between two reductions."),
                factor("factor", "Multiplier at each reduction."),
            ],
        ),
        kind(
            "multi_factor",
            "Multiplies the rate by `factor` at each milestone step (PyTorch MultiStepLR: at the milestone itself).",
            "lr·factor^(number of milestones m with m ≤ t)",
            vec![
                rate("lr", "Rate at step 0."),
                FieldInfo {
                    item_type: Some("integer"),
                    ..FieldInfo::new("milestones", "array", "Steps at which the rate is multiplied by `factor`.")
                        .constraint("integers >= 0, strictly increasing, at most 10000 in a spec")
                },
                factor("factor", "Multiplier at each milestone."),
            ],
        ),
        kind(
            "cosine",
            "Half-cosine decay from `lr` to `final_lr` over `max_steps`, with an optional linear warm-up inside those steps.",
            "t < w: b + (lr−b)·t/w; w ≤ t ≤ T: final_lr + (lr−final_lr)·(1+cos(π(t−w)/(T−w)))/2; t > T: final_lr",
            vec![
                rate("lr", "Rate at the end of the warm-up (step 0 without one)."),
                rate("final_lr", "Rate from `max_steps` on.").default(json!(0.0)),
                steps("max_steps", "T: the step at which `final_lr` is reached."),
                FieldInfo::new("warmup_steps", "integer", "w: linear warm-up steps, taken out of `max_steps`.")
                    .default(json!(0))
                    .constraint(">= 0, < max_steps"),
                rate("warmup_begin_lr", "b: rate at step 0 when warming up.").default(json!(0.0)),
            ],
        ),
        kind(
            "polynomial",
            "Polynomial decay from `lr` to `final_lr` over `max_steps`.",
            "t ≤ T: final_lr + (lr−final_lr)·(1−t/T)^power; t > T: final_lr",
            vec![
                rate("lr", "Rate at step 0."),
                rate("final_lr", "Rate from `max_steps` on.").default(json!(0.0)),
                steps("max_steps", "T: the step at which `final_lr` is reached."),
                FieldInfo::new("power", "number", "Exponent; 1 is a straight line.")
                    .default(json!(1.0))
                    .constraint("finite, > 0"),
            ],
        ),
        kind(
            "linear",
            "A straight line from `start_lr` to `end_lr` over `steps`, then `end_lr`.",
            "t < n: start_lr + (end_lr−start_lr)·t/n; t ≥ n: end_lr",
            vec![
                rate("start_lr", "Rate at step 0."),
                rate("end_lr", "Rate from step `steps` on."),
                steps("steps", "n: length of the ramp."),
            ],
        ),
        kind(
            "cosine_restarts",
            "SGDR: cosine decays that restart at `lr`, each period `period_mult` times longer than the last.",
            "in the current period of length Ti = T0·m^i at offset tc: final_lr + (lr−final_lr)·(1+cos(π·tc/Ti))/2",
            vec![
                rate("lr", "Rate at the start of each period."),
                rate("final_lr", "Rate the cosine approaches at the end of a period.").default(json!(0.0)),
                steps("period", "T0: length of the first period."),
                FieldInfo::new("period_mult", "integer", "m: growth of the period after each restart.")
                    .default(json!(1))
                    .constraint(">= 1"),
            ],
        ),
        kind(
            "cyclic",
            "Smith's (2017) cyclical rate between `base_lr` and `max_lr`, with PyTorch CyclicLR's modes and values.",
            "cycle = ⌊1 + t/(up+down)⌋, x = 1 + t/(up+down) − cycle; rise = x/r if x ≤ r else (x−1)/(r−1), r = up/(up+down); lr = base_lr + (max_lr−base_lr)·rise·scale, scale = 1 (triangular), 1/2^(cycle−1) (triangular2), gamma^t (exp_range)",
            vec![
                rate("base_lr", "Lower bound of the cycle."),
                rate("max_lr", "Upper bound of the cycle.").constraint("finite, >= base_lr"),
                steps("step_size_up", "Steps from `base_lr` up to `max_lr`."),
                FieldInfo {
                    default_from: Some("step_size_up"),
                    ..steps("step_size_down", "Steps from `max_lr` back down; defaults to `step_size_up`.").optional()
                },
                FieldInfo::new("mode", "string", "How the amplitude changes between cycles.")
                    .default(json!("triangular"))
                    .allowed(&["triangular", "triangular2", "exp_range"]),
                factor("gamma", "Per-step amplitude multiplier of `exp_range`.").default(json!(1.0)),
            ],
        ),
        kind(
            "one_cycle",
            "The 1cycle policy, with PyTorch OneCycleLR's values for steps 0..total_steps−1 and its last value after.",
            "initial = max_lr/div_factor, min = initial/final_div_factor; phases end at pct_start·N−1 and N−1 (three_phase: pct_start·N−1, 2·pct_start·N−2, N−1) and anneal initial→max_lr→min (three_phase: initial→max_lr→initial→min); cos anneal: end + (start−end)/2·(cos(π·p)+1), linear: start + (end−start)·p, p = position in the phase",
            vec![
                rate("max_lr", "Peak rate."),
                FieldInfo::new("total_steps", "integer", "N: length of the cycle.").constraint(">= 2"),
                FieldInfo::new("pct_start", "number", "Fraction of the steps spent rising.")
                    .default(json!(0.3))
                    .constraint("0 < pct_start < 1, pct_start·total_steps > 1"),
                FieldInfo::new("anneal", "string", "Shape of each phase.")
                    .default(json!("cos"))
                    .allowed(&["cos", "linear"]),
                factor("div_factor", "Initial rate = max_lr / div_factor.").default(json!(25.0)),
                factor("final_div_factor", "Final rate = initial rate / final_div_factor.").default(json!(1e4)),
                FieldInfo::new("three_phase", "boolean", "Fall back to the initial rate before the final decay.")
                    .default(json!(false)),
            ],
        ),
        kind(
            "warmup",
            "A warm-up in front of another schedule, which then starts at its own step 0.",
            "t < w: linear: b + (then(0)−b)·t/w, constant: b; t ≥ w: then(t−w)",
            vec![
                steps("steps", "w: warm-up length."),
                rate("begin_lr", "b: rate at step 0.").default(json!(0.0)),
                FieldInfo::new("mode", "string", "Ramp towards `then`'s first rate, or hold `begin_lr`.")
                    .default(json!("linear"))
                    .allowed(&["linear", "constant"]),
                FieldInfo::new("then", "schedule", "The schedule after the warm-up.")
                    .constraint("nested at most 16 deep"),
            ],
        ),
        kind(
            "sequential",
            "Phases that run one after another, each from its own step 0.",
            "phase k covers steps start_k .. start_k+steps_k; lr(t) = phase_k.schedule(t − start_k)",
            vec![FieldInfo {
                items: vec![
                    steps("steps", "Length of the phase; required on all but the last phase, which runs on.").optional(),
                    FieldInfo::new("schedule", "schedule", "The phase's schedule."),
                ],
                ..FieldInfo::new("phases", "array", "The phases, in order.")
                    .constraint("at least 1, at most 64 in a spec")
            }],
        ),
        KindInfo {
            adaptive: true,
            ..kind(
                "reduce_on_plateau",
                "Adaptive (PyTorch ReduceLROnPlateau): multiplies the rate by `factor` when the monitored metric has not improved for more than `patience` epochs. Previews show `lr` throughout.",
                "starts at lr; after more than `patience` epochs without improvement: lr = max(lr·factor, min_lr), then `cooldown` epochs of grace",
                vec![
                    rate("lr", "Initial rate."),
                    FieldInfo::new("factor", "number", "Multiplier at each reduction.")
                        .default(json!(0.1))
                        .constraint("0 < factor < 1"),
                    FieldInfo::new("patience", "integer", "Epochs without improvement tolerated.")
                        .default(json!(10))
                        .constraint(">= 0"),
                    FieldInfo::new("threshold", "number", "Least change that counts as an improvement.")
                        .default(json!(1e-4))
                        .constraint("finite, >= 0"),
                    FieldInfo::new("threshold_mode", "string", "rel: relative to the best value; abs: absolute.")
                        .default(json!("rel"))
                        .allowed(&["rel", "abs"]),
                    FieldInfo::new("monitor", "string", "The per-epoch metric (losses: lower is better; accuracy: higher).")
                        .default(json!("test_loss"))
                        .allowed(&["test_loss", "train_loss", "test_acc"]),
                    FieldInfo::new("cooldown", "integer", "Epochs to wait after a reduction before counting again.")
                        .default(json!(0))
                        .constraint(">= 0"),
                    rate("min_lr", "Floor of the rate.").default(json!(0.0)),
                ],
            )
        },
    ]
}

/// A valid spec of each kind (the chapter's examples where it has one).
fn examples(kind: &str) -> Value {
    match kind {
        "constant" => json!({"kind": "constant", "lr": 0.1}),
        "inverse_power" => json!({"kind": "inverse_power", "lr": 0.1, "power": 0.5}),
        "factor" => json!({"kind": "factor", "lr": 2.0, "factor": 0.9, "min_lr": 0.01}),
        "step" => json!({"kind": "step", "lr": 0.1, "step_size": 10, "factor": 0.5}),
        "multi_factor" => {
            json!({"kind": "multi_factor", "lr": 0.5, "milestones": [15, 30], "factor": 0.5})
        }
        "cosine" => {
            json!({"kind": "cosine", "lr": 0.5, "final_lr": 0.01, "max_steps": 20, "warmup_steps": 5})
        }
        "polynomial" => {
            json!({"kind": "polynomial", "lr": 0.1, "final_lr": 0.001, "max_steps": 30, "power": 2.0})
        }
        "linear" => json!({"kind": "linear", "start_lr": 0.1, "end_lr": 0.001, "steps": 30}),
        "cosine_restarts" => {
            json!({"kind": "cosine_restarts", "lr": 0.1, "final_lr": 0.001, "period": 10, "period_mult": 2})
        }
        "cyclic" => {
            json!({"kind": "cyclic", "base_lr": 0.001, "max_lr": 0.1, "step_size_up": 5, "mode": "triangular2"})
        }
        "one_cycle" => json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 30}),
        "warmup" => {
            json!({"kind": "warmup", "steps": 5, "then": {"kind": "cosine", "lr": 0.5, "final_lr": 0.01, "max_steps": 15}})
        }
        "sequential" => json!({"kind": "sequential", "phases": [
            {"steps": 5, "schedule": {"kind": "linear", "start_lr": 0.0, "end_lr": 0.1, "steps": 5}},
            {"schedule": {"kind": "step", "lr": 0.1, "step_size": 10, "factor": 0.5}}
        ]}),
        "reduce_on_plateau" => {
            json!({"kind": "reduce_on_plateau", "lr": 0.1, "factor": 0.5, "patience": 2})
        }
        _ => Value::Null,
    }
}
