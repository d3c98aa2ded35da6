//! Why a job failed: a stable code and a sentence, stored with the job.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The class of a job's failure: a stable word clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// A loss or a metric became NaN or infinite: the rate is too high for this model.
    Diverged,
    /// Fashion-MNIST could not be found or read.
    DataUnavailable,
    /// The device is unknown, not compiled in, or failed.
    Device,
    /// A checkpoint or weights file could not be written or read.
    Checkpoint,
    /// The job's results could not be stored.
    Store,
    /// The stored spec no longer satisfies the rules (it was edited, or the rules changed).
    InvalidSpec,
    /// The schedule produced a rate that cannot be used.
    InvalidSchedule,
    /// A tensor operation failed: a bug or an exhausted device.
    Internal,
    /// Training panicked; the worker carried on with the next job.
    InternalPanic,
}

impl FailureCode {
    /// Every code, for documentation checks.
    pub const ALL: [FailureCode; 9] = [
        FailureCode::Diverged,
        FailureCode::DataUnavailable,
        FailureCode::Device,
        FailureCode::Checkpoint,
        FailureCode::Store,
        FailureCode::InvalidSpec,
        FailureCode::InvalidSchedule,
        FailureCode::Internal,
        FailureCode::InternalPanic,
    ];

    /// The code as stored and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::Diverged => "diverged",
            FailureCode::DataUnavailable => "data_unavailable",
            FailureCode::Device => "device",
            FailureCode::Checkpoint => "checkpoint",
            FailureCode::Store => "store",
            FailureCode::InvalidSpec => "invalid_spec",
            FailureCode::InvalidSchedule => "invalid_schedule",
            FailureCode::Internal => "internal",
            FailureCode::InternalPanic => "internal_panic",
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureCode::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| format!("unknown failure code `{s}`"))
    }
}

/// Lets tests and callers compare a code with its word directly.
impl PartialEq<&str> for FailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a job failed: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: FailureCode,
    pub message: String,
}

impl JobError {
    /// A failure with its explanation, as clients will read it: absolute paths of the
    /// server's file system are cut to their last component ([`redact_paths`]).
    pub fn new(code: FailureCode, message: impl Into<String>) -> JobError {
        JobError {
            code,
            message: redact_paths(&message.into()),
        }
    }
}

/// `text` with every absolute path (`/var/lib/lrlab/artifacts/7/checkpoint.safetensors`)
/// cut to `…/checkpoint.safetensors`. A job's error is served to whoever may read the job,
/// and the layout of the server's disks is none of their business; the file name is kept,
/// since it says what was wrong. The server log keeps the whole message.
pub fn redact_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('/') {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        // A path starts at a word boundary: `1/2`, `a/b` or a URL's `//` are not
        // absolute paths.
        let at_boundary = before
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '[' | '='));
        let end = from
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ')' | ']' | ',' | ';')
            })
            .unwrap_or(from.len());
        let (token, after) = from.split_at(end);
        // A trailing colon or period ends the sentence, not the path.
        let path = token.trim_end_matches([':', '.']);
        let tail = &token[path.len()..];
        match path.rsplit_once('/') {
            Some((dirs, name)) if at_boundary && !dirs.is_empty() => {
                out.push('…');
                out.push('/');
                out.push_str(name);
                out.push_str(tail);
            }
            _ => out.push_str(token),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_paths;

    #[test]
    fn absolute_paths_keep_only_their_file_name() {
        assert_eq!(
            redact_paths("checkpoint /var/lib/lrlab/artifacts/7/checkpoint.safetensors is corrupt"),
            "checkpoint …/checkpoint.safetensors is corrupt"
        );
        assert_eq!(
            redact_paths(
                "no Fashion-MNIST in \"/usr/share/datasets/fashion-mnist\": missing train-images"
            ),
            "no Fashion-MNIST in \"…/fashion-mnist\": missing train-images"
        );
        assert_eq!(
            redact_paths("cannot open /home/ana/data/t10k.gz: No such file"),
            "cannot open …/t10k.gz: No such file"
        );
        assert_eq!(redact_paths("(/srv/a/b, /srv/c)"), "(…/b, …/c)");
    }

    #[test]
    fn text_without_absolute_paths_is_unchanged() {
        for text in [
            "the rate 1/2 is fine",
            "download from https://example.test/data/x.gz failed",
            "diverged at epoch 3, step 120: loss is NaN",
            "a/b/c is relative",
            "/",
            "",
        ] {
            assert_eq!(redact_paths(text), text);
        }
    }
}
