//! Dotted paths into a job request: `epochs`, `optimizer.momentum`,
//! `schedule.then.lr`, `schedule.phases[1].steps`, `schedule.milestones[0]`.
//!
//! Syntax: keys (`[A-Za-z_][A-Za-z0-9_]*`) separated by dots, each followed
//! by any number of `[index]`s. The same form as the paths of lrlab's error
//! bodies, so a path copied from a 422 works as a grid path.
//!
//! A grid path must exist in the base request, so a typo is caught before a
//! thousand jobs are generated. One exception: the *last* key may be absent
//! when it is a field with a default of the object it lands in — a job
//! field (`batch_size`, `optimizer`, `schedule_unit`, …), an optimizer field
//! (`optimizer.momentum`, also when `optimizer` itself is absent), a field
//! of the schedule's kind (`schedule.power` of an `inverse_power`, per the
//! schedule catalog) or a phase's `steps`. Array indices must exist.

use serde_json::{Map, Value};

use crate::schedule::catalog;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Job-request fields that may be absent (they have defaults) and so may be
/// set by a grid path. `name` and `seed` are not among them: a sweep sets both.
pub(crate) const OPTIONAL_JOB_FIELDS: [&str; 8] = [
    "model",
    "dataset",
    "batch_size",
    "optimizer",
    "schedule_unit",
    "train_limit",
    "test_limit",
    "priority",
];

/// Fields of `optimizer`, all with defaults.
pub(crate) const OPTIMIZER_FIELDS: [&str; 4] = ["kind", "momentum", "nesterov", "weight_decay"];

/// Parses a path; the error says what is wrong with it.
pub(crate) fn parse(path: &str) -> Result<Vec<Segment>, String> {
    if path.is_empty() {
        return Err("a path must not be empty".to_string());
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(format!(
                "`{path}` is not a path: expected keys like `schedule.lr` or `schedule.phases[1].steps`"
            ));
        }
        segments.push(Segment::Key(key.to_string()));
        while !rest.is_empty() {
            let index = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(digits, tail)| {
                    let ok = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
                    ok.then(|| digits.parse::<usize>().ok().map(|i| (i, tail)))
                        .flatten()
                });
            let Some((index, tail)) = index else {
                return Err(format!(
                    "`{path}` is not a path: an index must be written `[n]` with n a number"
                ));
            };
            segments.push(Segment::Index(index));
            rest = tail;
        }
    }
    Ok(segments)
}

/// What kind of object a path step is in, to know which absent keys have defaults.
#[derive(Clone, Copy)]
enum Context<'a> {
    Job,
    Optimizer,
    Schedule(Option<&'a str>),
    Phases,
    Phase,
    Other,
}

impl<'a> Context<'a> {
    fn child(self, key: &str, value: Option<&'a Value>) -> Context<'a> {
        let kind = || value.and_then(|v| v.get("kind")).and_then(Value::as_str);
        match (self, key) {
            (Context::Job, "optimizer") => Context::Optimizer,
            (Context::Job, "schedule")
            | (Context::Schedule(_), "then")
            | (Context::Phase, "schedule") => Context::Schedule(kind()),
            (Context::Schedule(_), "phases") => Context::Phases,
            _ => Context::Other,
        }
    }

    fn has_default(self, key: &str) -> bool {
        match self {
            Context::Job => OPTIONAL_JOB_FIELDS.contains(&key),
            Context::Optimizer => OPTIMIZER_FIELDS.contains(&key),
            Context::Schedule(Some(kind)) => catalog()
                .iter()
                .find(|info| info.kind == kind)
                .is_some_and(|info| info.fields.iter().any(|f| f.name == key)),
            Context::Phase => key == "steps",
            Context::Schedule(None) | Context::Phases | Context::Other => false,
        }
    }
}

/// Checks that `segments` can be set in `job` (see the module docs); the
/// error names the first step that fails, relative to the job.
pub(crate) fn check_settable(job: &Value, segments: &[Segment]) -> Result<(), String> {
    let mut current = Some(job);
    let mut context = Context::Job;
    let mut walked = String::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match segment {
            Segment::Key(key) => {
                let here = if walked.is_empty() {
                    key.clone()
                } else {
                    format!("{walked}.{key}")
                };
                match current {
                    Some(Value::Object(map)) => {
                        let child = map.get(key);
                        if child.is_none() {
                            let creatable = matches!(context, Context::Job) && key == "optimizer";
                            if !(context.has_default(key) && (last || creatable)) {
                                return Err(format!(
                                    "`{here}` is not in the base request (and is not a field with a default there)"
                                ));
                            }
                        }
                        context = context.child(key, child);
                        current = child;
                    }
                    // Inside an object the path itself creates (`optimizer`).
                    None if context.has_default(key) && last => {}
                    Some(other) => return Err(not_container(&walked, other, "an object")),
                    None => return Err(format!("`{here}` is not in the base request")),
                }
                walked = here;
            }
            Segment::Index(index) => {
                let here = format!("{walked}[{index}]");
                match current {
                    Some(Value::Array(items)) => {
                        let Some(item) = items.get(*index) else {
                            return Err(format!(
                                "`{here}` is not in the base request: `{walked}` has {} elements",
                                items.len()
                            ));
                        };
                        context = match context {
                            Context::Phases => Context::Phase,
                            _ => Context::Other,
                        };
                        current = Some(item);
                    }
                    Some(other) => return Err(not_container(&walked, other, "an array")),
                    None => return Err(format!("`{here}` is not in the base request")),
                }
                walked = here;
            }
        }
    }
    Ok(())
}

fn not_container(path: &str, found: &Value, expected: &str) -> String {
    let kind = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("`{path}` is {kind} in the base request, not {expected}")
}

/// Sets `segments` in `job` to `value`, creating the last key (and an
/// absent object on the way). Call [`check_settable`] first; a path that
/// does not fit is ignored here rather than panicking.
pub(crate) fn set(job: &mut Map<String, Value>, segments: &[Segment], value: Value) {
    let Some((Segment::Key(first), rest)) = segments.split_first() else {
        return;
    };
    if rest.is_empty() {
        job.insert(first.clone(), value);
        return;
    }
    let child = job
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    set_value(child, rest, value);
}

fn set_value(target: &mut Value, segments: &[Segment], value: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *target = value;
        return;
    };
    let child = match (first, target) {
        (Segment::Key(key), Value::Object(map)) => {
            if rest.is_empty() {
                map.insert(key.clone(), value);
                return;
            }
            map.entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()))
        }
        (Segment::Index(i), Value::Array(items)) => match items.get_mut(*i) {
            Some(item) => item,
            None => return,
        },
        _ => return,
    };
    set_value(child, rest, value);
}

/// Whether an error at `path` concerns a field set at `touched`: one is the
/// other or lies inside it (`schedule` and `schedule.lr`, `schedule.phases`
/// and `schedule.phases[0]`, but not `schedule.lr` and `schedule.lr_max`).
pub(crate) fn overlaps(path: &str, touched: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        outer.is_empty()
            || inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    inside(path, touched) || inside(touched, path) && !path.is_empty()
}
