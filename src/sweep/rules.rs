//! The rules a sweep request must satisfy before any job is generated:
//! names, reserved fields, grid paths and values, and the size limits.

use serde_json::Value;

use super::error::{FieldCode, FieldError};
use super::path::{self, overlaps, Segment};
use super::request::{SweepRequest, MAX_GRID_VALUES, MAX_MEMBERS, MAX_SWEEP_NAME_LEN};

/// Job fields a sweep sets itself, with the reason given when a request sets them.
pub(crate) const RESERVED: [(&str, &str); 2] = [
    (
        "seed",
        "seeds are the sweep's own axis: list them in `seeds` (or give `repeats`)",
    ),
    (
        "name",
        "member jobs are named from the sweep's and the config's names: set the sweep's `name` (or a variant's)",
    ),
];

/// One grid path, parsed.
pub(crate) struct Axis<'a> {
    pub path: &'a str,
    pub segments: Vec<Segment>,
    pub values: &'a [Value],
}

pub(crate) fn sweep_name(name: Option<&str>) -> Result<String, FieldError> {
    let Some(name) = name else {
        return Ok("sweep".to_string());
    };
    checked_name(name, "name")
}

fn checked_name(name: &str, path: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_SWEEP_NAME_LEN {
        return Err(FieldError::new(
            FieldCode::InvalidValue,
            path,
            format!("{path} must have 1 to {MAX_SWEEP_NAME_LEN} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

pub(crate) fn grid_axes<'a>(
    request: &'a SweepRequest,
    base: &Value,
) -> Result<Vec<Axis<'a>>, FieldError> {
    let mut axes: Vec<Axis<'a>> = Vec::with_capacity(request.grid.len());
    for (path, values) in request.grid.iter() {
        let at = format!("grid.{path}");
        let segments = path::parse(path)
            .map_err(|message| FieldError::new(FieldCode::InvalidPath, &at, message))?;
        if let Some(Segment::Key(first)) = segments.first() {
            if let Some((_, why)) = RESERVED.iter().find(|(field, _)| field == first) {
                return Err(FieldError::new(FieldCode::ReservedField, &at, *why));
            }
        }
        if let Some(earlier) = axes.iter().find(|a| overlaps(path, a.path)) {
            return Err(FieldError::new(
                FieldCode::ConflictingFields,
                &at,
                format!(
                    "grid path `{path}` overlaps grid path `{}`: each field may be varied once",
                    earlier.path
                ),
            ));
        }
        path::check_settable(base, &segments)
            .map_err(|message| FieldError::new(FieldCode::UnknownPath, &at, message))?;
        if values.is_empty() {
            return Err(FieldError::new(
                FieldCode::TooSmall,
                &at,
                format!("grid path `{path}` must list at least one value"),
            ));
        }
        if values.len() > MAX_GRID_VALUES {
            return Err(FieldError::new(
                FieldCode::TooLarge,
                &at,
                format!(
                    "grid path `{path}` lists {} values; at most {MAX_GRID_VALUES}",
                    values.len()
                ),
            ));
        }
        if let Some(i) = (1..values.len()).find(|&i| values[..i].contains(&values[i])) {
            return Err(FieldError::new(
                FieldCode::DuplicateValue,
                format!("{at}[{i}]"),
                format!("grid value {} for {path} is listed twice", values[i]),
            ));
        }
        axes.push(Axis {
            path,
            segments,
            values,
        });
    }
    Ok(axes)
}

pub(crate) fn check_variants(request: &SweepRequest) -> Result<(), FieldError> {
    for (i, variant) in request.variants.iter().enumerate() {
        if let Some(name) = &variant.name {
            checked_name(name, &format!("variants[{i}].name"))?;
        }
        if variant.overrides.contains_key("seed") {
            return Err(FieldError::new(
                FieldCode::ReservedField,
                format!("variants[{i}].seed"),
                RESERVED[0].1,
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_size(
    request: &SweepRequest,
    axes: &[Axis],
    seeds: usize,
) -> Result<(), FieldError> {
    let grid = if axes.is_empty() {
        0
    } else {
        axes.iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .unwrap_or(usize::MAX)
    };
    let configs = match grid.saturating_add(request.variants.len()) {
        0 => 1,
        n => n,
    };
    let jobs = configs.saturating_mul(seeds);
    if jobs > MAX_MEMBERS {
        let path = if !axes.is_empty() { "grid" } else { "variants" };
        return Err(FieldError::new(
            FieldCode::TooLarge,
            path,
            format!(
                "the sweep would run {configs} configs × {seeds} seeds = {jobs} jobs; at most {MAX_MEMBERS}"
            ),
        ));
    }
    Ok(())
}
