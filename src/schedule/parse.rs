//! Parsing untrusted JSON into a [`ScheduleSpec`] with full field paths.
//!
//! Serde's derived code for an internally tagged enum buffers the content
//! and loses the path of an error inside a variant, so the `kind` tag is read
//! here by hand, each variant's fields are deserialized with
//! `serde_path_to_error`, and the nested schedules of `warmup` and
//! `sequential` are parsed recursively with their paths. The size limits are
//! enforced *before* recursing or copying, so no input can exhaust the stack
//! or the memory.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{join, FieldCode, SpecError};
use super::limits::{MAX_DEPTH, MAX_MILESTONES, MAX_PHASES};
use super::spec::{
    Constant, Cosine, CosineRestarts, Cyclic, CyclicFields, Factor, InversePower, Linear,
    MultiFactor, OneCycle, Phase, Polynomial, ReduceOnPlateau, ScheduleSpec, Sequential, Step,
    Warmup, WarmupFields, KINDS,
};

/// Running totals over the whole spec, for the limits that span nodes.
#[derive(Default)]
struct Totals {
    phases: usize,
    milestones: usize,
}

impl ScheduleSpec {
    /// Parses an untrusted JSON spec, filling in defaults.
    ///
    /// Unknown fields, missing fields, wrong types and unknown kinds are
    /// rejected with the full path of the field (`then.bogus`,
    /// `phases[1].schedule.lr`). The structural limits (depth, phases,
    /// milestones) are enforced here too, but the value rules are not: call
    /// [`ScheduleSpec::validate`] or use [`Schedule::from_json`](super::Schedule::from_json),
    /// which does both.
    pub fn from_json(value: &Value) -> Result<ScheduleSpec, SpecError> {
        parse_node(value, "", 1, &mut Totals::default())
    }
}

fn parse_node(
    value: &Value,
    path: &str,
    depth: usize,
    totals: &mut Totals,
) -> Result<ScheduleSpec, SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::new(
            FieldCode::TooDeep,
            path,
            format!("schedules may be nested at most {MAX_DEPTH} deep (warmup/sequential)"),
        ));
    }
    let Some(obj) = value.as_object() else {
        return Err(SpecError::new(
            FieldCode::InvalidType,
            path,
            format!(
                "expected a schedule object with a `kind` field, found {}",
                describe(value)
            ),
        ));
    };
    let kind_path = join(path, "kind");
    let kind = match obj.get("kind") {
        None => {
            return Err(SpecError::new(
                FieldCode::MissingField,
                kind_path,
                format!("missing field `kind`; valid kinds: {}", KINDS.join(", ")),
            ))
        }
        Some(Value::String(k)) => k.as_str(),
        Some(other) => {
            return Err(SpecError::new(
                FieldCode::InvalidType,
                kind_path,
                format!("`kind` must be a string, found {}", describe(other)),
            ))
        }
    };
    let fields = |skip: &[&str]| -> Value {
        let map: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "kind" && !skip.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(map)
    };
    Ok(match kind {
        "constant" => ScheduleSpec::Constant(leaf::<Constant>(fields(&[]), path)?),
        "inverse_power" => ScheduleSpec::InversePower(leaf::<InversePower>(fields(&[]), path)?),
        "factor" => ScheduleSpec::Factor(leaf::<Factor>(fields(&[]), path)?),
        "step" => ScheduleSpec::Step(leaf::<Step>(fields(&[]), path)?),
        "multi_factor" => {
            if let Some(Value::Array(ms)) = obj.get("milestones") {
                totals.milestones += ms.len();
                if totals.milestones > MAX_MILESTONES {
                    return Err(SpecError::new(
                        FieldCode::TooLarge,
                        join(path, "milestones"),
                        format!("a spec may list at most {MAX_MILESTONES} milestones in total"),
                    ));
                }
            }
            ScheduleSpec::MultiFactor(leaf::<MultiFactor>(fields(&[]), path)?)
        }
        "cosine" => ScheduleSpec::Cosine(leaf::<Cosine>(fields(&[]), path)?),
        "polynomial" => ScheduleSpec::Polynomial(leaf::<Polynomial>(fields(&[]), path)?),
        "linear" => ScheduleSpec::Linear(leaf::<Linear>(fields(&[]), path)?),
        "cosine_restarts" => {
            ScheduleSpec::CosineRestarts(leaf::<CosineRestarts>(fields(&[]), path)?)
        }
        "cyclic" => ScheduleSpec::Cyclic(Cyclic::from(leaf::<CyclicFields>(fields(&[]), path)?)),
        "one_cycle" => ScheduleSpec::OneCycle(leaf::<OneCycle>(fields(&[]), path)?),
        "reduce_on_plateau" => {
            ScheduleSpec::ReduceOnPlateau(leaf::<ReduceOnPlateau>(fields(&[]), path)?)
        }
        "warmup" => {
            let own = leaf::<WarmupFields>(fields(&["then"]), path)?;
            let then_path = join(path, "then");
            let then = obj.get("then").ok_or_else(|| missing(&then_path, "then"))?;
            let then = parse_node(then, &then_path, depth + 1, totals)?;
            ScheduleSpec::Warmup(Warmup {
                steps: own.steps,
                begin_lr: own.begin_lr,
                mode: own.mode,
                then: Box::new(then),
            })
        }
        "sequential" => ScheduleSpec::Sequential(parse_sequential(obj, path, depth, totals)?),
        other => {
            return Err(SpecError::new(
                FieldCode::UnknownKind,
                kind_path,
                format!("unknown kind `{other}`; valid kinds: {}", KINDS.join(", ")),
            ))
        }
    })
}

fn parse_sequential(
    obj: &Map<String, Value>,
    path: &str,
    depth: usize,
    totals: &mut Totals,
) -> Result<Sequential, SpecError> {
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "kind" | "phases"))
    {
        return Err(unknown(&join(path, key), key, &["phases"]));
    }
    let phases_path = join(path, "phases");
    let items = match obj.get("phases") {
        None => return Err(missing(&phases_path, "phases")),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(SpecError::new(
                FieldCode::InvalidType,
                phases_path,
                format!(
                    "`phases` must be an array of {{steps, schedule}} objects, found {}",
                    describe(other)
                ),
            ))
        }
    };
    totals.phases += items.len();
    if totals.phases > MAX_PHASES {
        return Err(SpecError::new(
            FieldCode::TooLarge,
            phases_path,
            format!("a spec may have at most {MAX_PHASES} sequential phases in total"),
        ));
    }
    let mut phases = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{phases_path}[{i}]");
        let Some(item) = item.as_object() else {
            return Err(SpecError::new(
                FieldCode::InvalidType,
                item_path,
                format!(
                    "a phase must be an object {{steps, schedule}}, found {}",
                    describe(item)
                ),
            ));
        };
        if let Some(key) = item
            .keys()
            .find(|k| !matches!(k.as_str(), "steps" | "schedule"))
        {
            return Err(unknown(&join(&item_path, key), key, &["steps", "schedule"]));
        }
        let steps = match item.get("steps") {
            None | Some(Value::Null) => None,
            Some(v) => Some(leaf::<u64>(v.clone(), &join(&item_path, "steps"))?),
        };
        let schedule_path = join(&item_path, "schedule");
        let schedule = item
            .get("schedule")
            .ok_or_else(|| missing(&schedule_path, "schedule"))?;
        let schedule = parse_node(schedule, &schedule_path, depth + 1, totals)?;
        phases.push(Phase { steps, schedule });
    }
    Ok(Sequential { phases })
}

/// Deserializes one variant's fields, turning serde's error into a
/// [`SpecError`] whose path is `base` + the path inside the fields.
fn leaf<T: DeserializeOwned>(fields: Value, base: &str) -> Result<T, SpecError> {
    serde_path_to_error::deserialize::<_, T>(fields).map_err(|err| {
        let mut path = base.to_owned();
        for segment in err.path().iter() {
            let piece = match segment {
                serde_path_to_error::Segment::Seq { index } => format!("[{index}]"),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".to_owned(),
            };
            path = join(&path, &piece);
        }
        from_serde_message(&err.into_inner().to_string(), path)
    })
}

/// Classifies serde's message into a stable code and, for missing and
/// unknown fields, makes the path end at the field the message names.
fn from_serde_message(raw: &str, mut path: String) -> SpecError {
    let message = raw
        .replace("expected u64", "expected an integer >= 0")
        .replace("expected f64", "expected a number");
    let named = raw.split('`').nth(1).unwrap_or_default().to_owned();
    // The schedule API has always reported an unknown enumeration word as
    // `invalid_value` (its documented codes); keep that.
    let code = match FieldCode::of_serde_message(raw) {
        FieldCode::UnknownValue => FieldCode::InvalidValue,
        code => code,
    };
    if code.names_a_field()
        && !named.is_empty()
        && !path.ends_with(&format!(".{named}"))
        && path != named
    {
        path = join(&path, &named);
    }
    let field = path.rsplit('.').next().unwrap_or_default();
    let message = if field.is_empty() || message.contains(&format!("`{field}`")) {
        message
    } else {
        format!("`{field}`: {message}")
    };
    SpecError::new(code, path, message)
}

fn missing(path: &str, field: &str) -> SpecError {
    SpecError::new(
        FieldCode::MissingField,
        path,
        format!("missing field `{field}`"),
    )
}

fn unknown(path: &str, field: &str, expected: &[&str]) -> SpecError {
    let expected: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    SpecError::new(
        FieldCode::UnknownField,
        path,
        format!(
            "unknown field `{field}`, expected one of {}",
            expected.join(", ")
        ),
    )
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
