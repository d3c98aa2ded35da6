//! Expanding a sweep request into configs × seeds, each a validated job.
//!
//! Configs are the cartesian product of the grid (every path's values in
//! the client's order, the last path varying fastest), followed by each
//! variant as a config of its own — variants are not crossed with the grid,
//! so a sweep can put "cosine" next to "inverse_power with power 0.25…1.0".
//! With neither grid nor variants the base request is the one config, which
//! makes "run this job on five seeds" a sweep too.
//!
//! Every member job is checked by the caller's job validator, and an error
//! is reported at the sweep field that produced the offending value: the
//! grid value (`grid.schedule.power[2]`), the variant field
//! (`variants[0].schedule.max_steps`) or else the base (`base.schedule.lr`).

use serde_json::{Map, Value};

use super::error::{FieldCode, FieldError};
use super::merge::merge_into;
use super::naming::{config_name, member_name, unique};
use super::ordered::Ordered;
use super::path::{self, overlaps};
use super::plan::{ConfigOrigin, Member, SweepConfig, SweepPlan};
use super::request::SweepRequest;
use super::rules::{check_size, check_variants, grid_axes, sweep_name, Axis, RESERVED};
use super::stopping::resolve_early_stopping;

/// Which sweep field set an override, to blame it for an invalid job.
#[derive(Clone, Copy)]
enum Blame {
    Grid { axis: usize, value: usize },
    Variant { index: usize },
}

/// A config before naming and validation.
struct Draft {
    origin: ConfigOrigin,
    overrides: Vec<(String, Value)>,
    blames: Vec<Blame>,
    job: Map<String, Value>,
    explicit_name: Option<String>,
}

/// Validates `request` and expands it into configs and member jobs.
/// `validate_job` checks one complete job request (with `name` and `seed`)
/// and reports errors with paths relative to it (`schedule.lr`).
pub fn expand<F>(request: &SweepRequest, validate_job: F) -> Result<SweepPlan, FieldError>
where
    F: Fn(&Value) -> Result<(), FieldError>,
{
    let name = sweep_name(request.name.as_deref())?;
    let Value::Object(base) = &request.base else {
        return Err(FieldError::new(
            FieldCode::InvalidType,
            "base",
            "base must be a job request (a JSON object)",
        ));
    };
    for (field, why) in RESERVED {
        if base.contains_key(field) {
            return Err(FieldError::new(
                FieldCode::ReservedField,
                format!("base.{field}"),
                why,
            ));
        }
    }
    let seeds = request.resolved_seeds()?;
    let axes = grid_axes(request, &request.base)?;
    check_variants(request)?;
    check_size(request, &axes, seeds.len())?;

    let drafts = drafts(request, base, &axes);
    let names = names(&drafts)?;
    let mut configs = Vec::with_capacity(drafts.len());
    let mut members = Vec::with_capacity(drafts.len() * seeds.len());
    for (index, (draft, config_name)) in drafts.into_iter().zip(names).enumerate() {
        for &seed in &seeds {
            let name = member_name(&name, &config_name, seed);
            let mut job = draft.job.clone();
            job.insert("name".to_string(), Value::String(name.clone()));
            job.insert("seed".to_string(), Value::from(seed));
            let job = Value::Object(job);
            validate_job(&job).map_err(|err| blame(err, &draft, &config_name, &axes, request))?;
            members.push(Member {
                config: index,
                seed,
                name,
                job,
            });
        }
        let epochs = config_epochs(&draft)?;
        configs.push(SweepConfig {
            index,
            name: config_name,
            origin: draft.origin,
            overrides: draft.overrides.into_iter().collect::<Ordered<Value>>(),
            job: Value::Object(draft.job),
            epochs,
        });
    }
    let epochs: Vec<u32> = configs.iter().map(|c| c.epochs).collect();
    let early_stopping = resolve_early_stopping(request.early_stopping.as_ref(), &epochs)?;
    if request.max_concurrent == Some(0) {
        return Err(FieldError::new(
            FieldCode::OutOfRange,
            "max_concurrent",
            "max_concurrent must be at least 1 (leave it out for no limit of the sweep's own)",
        ));
    }
    let (metric, mode) = request.metric();
    Ok(SweepPlan {
        name,
        configs,
        seeds,
        members,
        metric,
        mode,
        early_stopping,
        max_concurrent: request.max_concurrent,
        lockstep: request.lockstep,
    })
}

fn drafts(request: &SweepRequest, base: &Map<String, Value>, axes: &[Axis]) -> Vec<Draft> {
    let mut drafts = Vec::new();
    if !axes.is_empty() {
        let mut indices = vec![0usize; axes.len()];
        loop {
            let mut job = base.clone();
            let mut overrides = Vec::with_capacity(axes.len());
            let mut blames = Vec::with_capacity(axes.len());
            for (axis_index, (axis, &value_index)) in axes.iter().zip(&indices).enumerate() {
                let value = axis.values[value_index].clone();
                path::set(&mut job, &axis.segments, value.clone());
                overrides.push((axis.path.to_string(), value));
                blames.push(Blame::Grid {
                    axis: axis_index,
                    value: value_index,
                });
            }
            drafts.push(Draft {
                origin: ConfigOrigin::Grid {
                    indices: indices.clone(),
                },
                overrides,
                blames,
                job,
                explicit_name: None,
            });
            // Advance the odometer: the last path varies fastest.
            let mut position = axes.len();
            loop {
                if position == 0 {
                    break;
                }
                position -= 1;
                indices[position] += 1;
                if indices[position] < axes[position].values.len() {
                    break;
                }
                indices[position] = 0;
            }
            if indices.iter().all(|&i| i == 0) {
                break;
            }
        }
    }
    for (index, variant) in request.variants.iter().enumerate() {
        let mut job = base.clone();
        let mut overrides = Vec::new();
        merge_into(&mut job, &variant.overrides, "", &mut overrides);
        drafts.push(Draft {
            origin: ConfigOrigin::Variant { index },
            blames: vec![Blame::Variant { index }; overrides.len()],
            overrides,
            job,
            explicit_name: variant.name.as_deref().map(|n| n.trim().to_string()),
        });
    }
    if drafts.is_empty() {
        drafts.push(Draft {
            origin: ConfigOrigin::Base,
            overrides: Vec::new(),
            blames: Vec::new(),
            job: base.clone(),
            explicit_name: None,
        });
    }
    drafts
}

fn names(drafts: &[Draft]) -> Result<Vec<String>, FieldError> {
    let mut explicit: Vec<String> = Vec::new();
    for draft in drafts {
        if let (Some(name), ConfigOrigin::Variant { index }) = (&draft.explicit_name, &draft.origin)
        {
            if explicit.contains(name) {
                return Err(FieldError::new(
                    FieldCode::DuplicateValue,
                    format!("variants[{index}].name"),
                    format!("two variants are named `{name}`: config names must be unique"),
                ));
            }
            explicit.push(name.clone());
        }
    }
    let mut taken = explicit;
    let mut names = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let name = match &draft.explicit_name {
            Some(name) => name.clone(),
            None => {
                let name = unique(config_name(&draft.overrides), &taken);
                taken.push(name.clone());
                name
            }
        };
        names.push(name);
    }
    Ok(names)
}

fn config_epochs(draft: &Draft) -> Result<u32, FieldError> {
    draft
        .job
        .get("epochs")
        .and_then(Value::as_u64)
        .and_then(|e| u32::try_from(e).ok())
        .ok_or_else(|| {
            FieldError::new(
                FieldCode::MissingField,
                "base.epochs",
                "every config needs a whole number of `epochs` (in `base` or in the variant)",
            )
        })
}

/// Rewrites a member job's error to name the sweep field behind it.
fn blame(
    err: FieldError,
    draft: &Draft,
    config: &str,
    axes: &[Axis],
    request: &SweepRequest,
) -> FieldError {
    let culprit = draft
        .overrides
        .iter()
        .zip(&draft.blames)
        .filter(|((touched, _), _)| overlaps(&err.path, touched))
        .max_by_key(|((touched, _), _)| touched.len());
    let (path, message) = match culprit {
        Some(((touched, value), Blame::Grid { axis, value: i })) => {
            let deeper = err.path.strip_prefix(touched.as_str()).unwrap_or("");
            let axis_path = axes[*axis].path;
            (
                format!("grid.{axis_path}[{i}]{deeper}"),
                format!(
                    "grid value {value} for {axis_path} makes an invalid job: {}",
                    err.message
                ),
            )
        }
        Some((_, Blame::Variant { index })) => {
            let label = request.variants[*index]
                .name
                .as_deref()
                .map_or_else(|| format!("variants[{index}]"), |n| format!("\"{n}\""));
            (
                if err.path.is_empty() {
                    format!("variants[{index}]")
                } else {
                    format!("variants[{index}].{}", err.path)
                },
                format!("variant {label} makes an invalid job: {}", err.message),
            )
        }
        None => (
            if err.path.is_empty() {
                "base".to_string()
            } else {
                format!("base.{}", err.path)
            },
            if matches!(draft.origin, ConfigOrigin::Base) {
                format!("the base request makes an invalid job: {}", err.message)
            } else {
                format!(
                    "the base request makes an invalid job in config \"{config}\": {}",
                    err.message
                )
            },
        ),
    };
    FieldError {
        code: err.code,
        path,
        message,
    }
}
