//! Query strings: one parser for every endpoint, with 400s that name the parameter.
//!
//! Parameters may repeat (`status=queued&status=running`); an unknown one is an
//! error listing the known ones, so a typo (`limt=10`) is not silently ignored.

use std::collections::HashMap;
use std::str::FromStr;

use super::error::ApiError;

/// The parameters of one request, checked against the ones its endpoint knows.
#[derive(Debug, Default)]
pub struct QueryParams {
    values: HashMap<String, Vec<String>>,
}

impl QueryParams {
    /// Parses `raw` (the part after `?`), refusing parameters not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|err| ApiError::bad_query("", format!("unreadable query string: {err}")))?;
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad_query(
                    &key,
                    format!(
                        "unknown query parameter `{key}`, expected one of {}",
                        allowed.join(", ")
                    ),
                ));
            }
            values.entry(key).or_default().push(value);
        }
        Ok(QueryParams { values })
    }

    /// Every value of `name`, in order; comma-separated lists are split and blanks dropped.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .into_iter()
            .flatten()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|word| !word.is_empty())
            .collect()
    }

    /// The last value of `name` (a repeated parameter's last value wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|values| values.last())
            .map(String::as_str)
    }

    /// `name` parsed as `T`, if present; `expected` describes a valid value for the error.
    pub fn parse_opt<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value.parse::<T>().map(Some).map_err(|_| {
                ApiError::bad_query(name, format!("{name} must be {expected}, got `{value}`"))
            }),
        }
    }

    /// A `true`/`false` parameter; `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(value) => Err(ApiError::bad_query(
                name,
                format!("{name} must be true or false, got `{value}`"),
            )),
        }
    }

    /// An integer in `range`, `default` when absent.
    pub fn int_in(
        &self,
        name: &str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, ApiError> {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        match self.parse_opt::<u32>(name, &expected)? {
            None => Ok(default),
            Some(n) if range.contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_query(
                name,
                format!("{name} must be {expected}, got `{n}`"),
            )),
        }
    }

    /// A page size: `default` when absent, else an integer in `1..=max`.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        let expected = format!("between 1 and {max}");
        match self.parse_opt::<u32>("limit", &expected)? {
            None => Ok(default),
            Some(limit) if (1..=max).contains(&limit) => Ok(limit),
            Some(limit) => Err(ApiError::bad_query(
                "limit",
                format!("limit must be {expected}, got `{limit}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<QueryParams, ApiError> {
        QueryParams::parse(Some(raw), &["status", "limit", "from", "flag"])
    }

    fn path_of(err: ApiError) -> Option<String> {
        match err {
            ApiError::Client { path, .. } => path,
            ApiError::Internal(_) => None,
        }
    }

    #[test]
    fn repeated_and_comma_separated_values_are_one_list() {
        let q = parse("status=queued,running&status=failed&status=").unwrap();
        assert_eq!(q.list("status"), vec!["queued", "running", "failed"]);
    }

    #[test]
    fn unknown_parameters_and_bad_values_name_the_parameter() {
        assert_eq!(
            path_of(parse("colour=red").unwrap_err()).as_deref(),
            Some("colour")
        );
        for raw in ["limit=0", "limit=1001", "limit=x"] {
            let err = parse(raw).unwrap().limit(50, 1000).unwrap_err();
            assert_eq!(path_of(err).as_deref(), Some("limit"), "{raw}");
        }
        let err = parse("from=-1")
            .unwrap()
            .parse_opt::<u64>("from", "≥ 0")
            .unwrap_err();
        assert_eq!(path_of(err).as_deref(), Some("from"));
    }

    #[test]
    fn flags_and_bounded_integers_name_the_parameter() {
        let q = parse("flag=true&limit=7").unwrap();
        assert!(q.flag("flag").unwrap());
        assert!(!q.flag("status").unwrap());
        assert_eq!(q.int_in("limit", 3, 1..=10).unwrap(), 7);
        assert_eq!(q.int_in("from", 3, 1..=10).unwrap(), 3);
        assert_eq!(
            path_of(parse("flag=yes").unwrap().flag("flag").unwrap_err()).as_deref(),
            Some("flag")
        );
        let err = parse("limit=11")
            .unwrap()
            .int_in("limit", 3, 1..=10)
            .unwrap_err();
        assert_eq!(path_of(err).as_deref(), Some("limit"));
    }

    #[test]
    fn defaults_apply_when_absent() {
        let q = parse("").unwrap();
        assert_eq!(q.limit(50, 1000).unwrap(), 50);
        assert_eq!(q.parse_opt::<u64>("from", "x").unwrap(), None);
    }
}
