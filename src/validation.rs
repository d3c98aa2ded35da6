//! Field errors: what every validator of client input reports.
//!
//! One error type with a stable code and a dotted field path, shared by the
//! schedule engine, the training configuration, jobs and sweeps, so a client
//! handles every 422 the same way and a nested document (a schedule inside a
//! job inside a sweep) only prefixes the path on the way out.

use thiserror::Error;

/// The class of a rule a field breaks: a stable word clients match on.
///
/// Shared by every validator of request fields (schedules, training
/// configurations, jobs, sweeps), so one client-side table covers them all
/// and `openapi.yaml` can list them ([`FieldCode::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldCode {
    /// A field the object does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong JSON type.
    InvalidType,
    /// A value of the right type that is not allowed.
    InvalidValue,
    /// A word that is not one of an enumeration's values (`"model": "resnet"`).
    UnknownValue,
    /// A schedule `kind` lrlab does not know.
    UnknownKind,
    /// A number outside its allowed range.
    OutOfRange,
    /// A list that must be strictly increasing is not.
    NotIncreasing,
    /// Schedules nested deeper than allowed.
    TooDeep,
    /// A list or spec larger than allowed.
    TooLarge,
    /// A dotted path (a sweep's grid key) that cannot be parsed.
    InvalidPath,
    /// A dotted path that names no field of the document.
    UnknownPath,
    /// A field that may not be set here (a sweep sets it itself).
    ReservedField,
    /// Two fields that cannot be given together.
    ConflictingFields,
    /// A value that must be unique appears twice.
    DuplicateValue,
    /// A list or document with fewer items than required.
    TooSmall,
}

impl FieldCode {
    /// Every code, for documentation checks.
    pub const ALL: [FieldCode; 16] = [
        FieldCode::UnknownField,
        FieldCode::MissingField,
        FieldCode::InvalidType,
        FieldCode::InvalidValue,
        FieldCode::UnknownValue,
        FieldCode::UnknownKind,
        FieldCode::OutOfRange,
        FieldCode::NotIncreasing,
        FieldCode::TooDeep,
        FieldCode::TooLarge,
        FieldCode::InvalidPath,
        FieldCode::UnknownPath,
        FieldCode::ReservedField,
        FieldCode::ConflictingFields,
        FieldCode::DuplicateValue,
        FieldCode::TooSmall,
    ];

    /// The code as it appears in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldCode::UnknownField => "unknown_field",
            FieldCode::MissingField => "missing_field",
            FieldCode::InvalidType => "invalid_type",
            FieldCode::InvalidValue => "invalid_value",
            FieldCode::UnknownValue => "unknown_value",
            FieldCode::UnknownKind => "unknown_kind",
            FieldCode::OutOfRange => "out_of_range",
            FieldCode::NotIncreasing => "not_increasing",
            FieldCode::TooDeep => "too_deep",
            FieldCode::TooLarge => "too_large",
            FieldCode::InvalidPath => "invalid_path",
            FieldCode::UnknownPath => "unknown_path",
            FieldCode::ReservedField => "reserved_field",
            FieldCode::ConflictingFields => "conflicting_fields",
            FieldCode::DuplicateValue => "duplicate_value",
            FieldCode::TooSmall => "too_small",
        }
    }

    /// Classifies one of serde's error messages (`unknown field …`,
    /// `missing field …`, `invalid type …`, `unknown variant …`); anything else
    /// is an invalid value.
    pub fn of_serde_message(message: &str) -> FieldCode {
        if message.starts_with("unknown field") {
            FieldCode::UnknownField
        } else if message.starts_with("missing field") {
            FieldCode::MissingField
        } else if message.starts_with("invalid type") {
            FieldCode::InvalidType
        } else if message.starts_with("unknown variant") {
            FieldCode::UnknownValue
        } else {
            FieldCode::InvalidValue
        }
    }

    /// Whether serde reports this class at the parent object, naming the
    /// field only inside the message (so the path must be completed).
    pub fn names_a_field(self) -> bool {
        matches!(self, FieldCode::UnknownField | FieldCode::MissingField)
    }
}

impl std::fmt::Display for FieldCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and callers compare a code with its word directly.
impl PartialEq<&str> for FieldCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<FieldCode> for &str {
    fn eq(&self, other: &FieldCode) -> bool {
        *self == other.as_str()
    }
}

/// A rule a request field breaks, with the path of the field.
///
/// Every validator in lrlab (schedules, training configurations, jobs,
/// sweeps) reports this one type; the HTTP layer turns it into a 422
/// `{"error": {"code", "message", "path"}}`. `path` names the offending field
/// relative to the validated document's root (`"then.max_steps"`,
/// `"phases[1].schedule.lr"`, `""` for the root itself); callers that embed
/// the document in a larger one use [`FieldError::prefixed`] to make it
/// absolute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct FieldError {
    /// Stable error class.
    pub code: FieldCode,
    /// Field path relative to the spec root; empty for the root.
    pub path: String,
    /// Human-readable explanation naming the field and what was expected.
    pub message: String,
}

impl FieldError {
    pub fn new(code: FieldCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            code,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Puts `prefix` in front of the path, so that an error found in a spec
    /// nested in a request body (`"schedule"`) names the field in that body
    /// (`"schedule.then.max_steps"`).
    pub fn prefixed(mut self, prefix: &str) -> FieldError {
        self.path = join(prefix, &self.path);
        self
    }
}

/// Joins two path segments: `join("then", "lr") == "then.lr"`,
/// `join("phases", "[2]") == "phases[2]"`, and an empty side disappears.
pub fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        prefix.to_owned()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}

/// Why a JSON document could not be read into a type.
#[derive(Debug, Error)]
pub enum JsonError {
    /// Not JSON at all (a syntax error or a truncated document).
    #[error(transparent)]
    Syntax(serde_json::Error),
    /// JSON of the wrong shape, at a field.
    #[error(transparent)]
    Field(FieldError),
}

/// Deserializes `T` straight from JSON text, so object keys are seen in document order;
/// errors say whether the text is not JSON or which field has the wrong shape.
pub fn from_json_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        if err.inner().is_syntax() || err.inner().is_eof() {
            return JsonError::Syntax(err.into_inner());
        }
        let path = err.path().to_string();
        JsonError::Field(field_error(path, err.inner().to_string()))
    })?;
    deserializer.end().map_err(JsonError::Syntax)?;
    Ok(value)
}

/// A serde message at `path` (serde_path_to_error's form; `.` is the root) as a field error.
fn field_error(path: String, message: String) -> FieldError {
    let parent = if path == "." { String::new() } else { path };
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(text, _)| text)
        .to_string();
    let code = FieldCode::of_serde_message(&message);
    let path = if code.names_a_field() {
        match message.split('`').nth(1) {
            Some(field) if parent != field && !parent.ends_with(&format!(".{field}")) => {
                join(&parent, field)
            }
            _ => parent,
        }
    } else {
        parent
    };
    FieldError::new(code, path, message)
}

/// Largest magnitude below which every integer is an exact f64 (2^53).
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// Writes `1.0` as `1` everywhere in `value`. JSON Schema (and so openapi.yaml) counts
/// `1.0` as an integer and JSON has one number type, but serde's integer fields refuse a
/// number written with a fraction; float fields accept integers, so this changes no
/// value. Only floats that are exact integers (|x| < 2^53) are rewritten.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64() {
                if x.fract() == 0.0 && x.abs() < EXACT_INTEGERS {
                    *n = serde_json::Number::from(x as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// Deserializes a JSON value into `T`, reporting a failure as a [`FieldError`]
/// whose path names the offending field (`optimizer.momentum`,
/// `phases[1].steps`), including the field a `missing field` / `unknown field`
/// message is about (serde reports those at the parent object).
///
/// Integral floats are read as integers (`"epochs": 1.0`), as JSON Schema counts them.
pub fn from_json_value<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, FieldError> {
    let mut value = value.clone();
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(&value)
        .map_err(|err| field_error(err.path().to_string(), err.inner().to_string()))
}
