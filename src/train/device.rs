//! Device names as users type them ([`DeviceSpec`], parsed once from the configuration),
//! and the candle devices they open.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use super::TrainError;

/// A device as configured: `cpu`, `cuda:N` or `metal:N`. Parsed once when the
/// configuration is read; a worker opens its device once with [`DeviceSpec::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The host CPU (all rayon threads).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// An Apple GPU by ordinal (needs the `metal` feature).
    Metal(usize),
}

impl DeviceSpec {
    /// Opens the device. GPU backends only exist when lrlab is built with the matching
    /// cargo feature; asking for one in a build without it is an error that says how to get
    /// it, rather than a silent CPU run.
    pub fn open(self) -> Result<Device, TrainError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => cuda(ordinal),
            DeviceSpec::Metal(ordinal) => metal(ordinal),
        }
    }

    /// Whether this is the CPU.
    pub fn is_cpu(self) -> bool {
        self == DeviceSpec::Cpu
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = TrainError;

    /// Accepts `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (kind, ordinal) = match s.split_once(':') {
            Some((kind, n)) => {
                let n: usize = n.parse().map_err(|_| {
                    TrainError::Device(format!("bad device ordinal in {s:?}: expected e.g. cuda:0"))
                })?;
                (kind, n)
            }
            None => (s, 0),
        };
        match kind {
            "cpu" if !s.contains(':') => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
            "metal" => Ok(DeviceSpec::Metal(ordinal)),
            _ => Err(TrainError::Device(format!(
                "unknown device {s:?}: expected cpu, cuda, cuda:N, metal or metal:N"
            ))),
        }
    }
}

/// Parses a device name and opens the device.
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    s.parse::<DeviceSpec>()?.open()
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize) -> Result<Device, TrainError> {
    Device::new_cuda(ordinal).map_err(|e| unavailable(&format!("cuda:{ordinal}"), e))
}

#[cfg(not(feature = "cuda"))]
fn cuda(ordinal: usize) -> Result<Device, TrainError> {
    Err(TrainError::Device(format!(
        "cuda:{ordinal} requested but this lrlab was built without CUDA support; \
         rebuild with `cargo build --release --features cuda`"
    )))
}

#[cfg(feature = "metal")]
fn metal(ordinal: usize) -> Result<Device, TrainError> {
    Device::new_metal(ordinal).map_err(|e| unavailable(&format!("metal:{ordinal}"), e))
}

/// A device that exists in this build but cannot be opened (no GPU, no driver, a bad ordinal).
///
/// With `RUST_BACKTRACE` set candle wraps its errors as `WithBacktrace`, whose message is the
/// cause followed by the whole captured stack; for a device the user named, the cause is the
/// message and the stack is noise, so only the innermost error is kept.
#[cfg(any(feature = "cuda", feature = "metal", test))]
fn unavailable(name: &str, mut err: candle_core::Error) -> TrainError {
    while let candle_core::Error::WithBacktrace { inner, .. } = err {
        err = *inner;
    }
    TrainError::Device(format!("{name} is not available: {err}"))
}

#[cfg(not(feature = "metal"))]
fn metal(ordinal: usize) -> Result<Device, TrainError> {
    Err(TrainError::Device(format!(
        "metal:{ordinal} requested but this lrlab was built without Metal support; \
         rebuild with `cargo build --release --features metal`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["cpu", "cuda:0", "cuda:3", "metal:1"] {
            assert_eq!(name.parse::<DeviceSpec>().unwrap().to_string(), name);
        }
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
    }

    #[test]
    fn cpu_parses_and_junk_is_rejected_with_the_valid_names() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        for bad in ["gpu", "cpu:1", "cuda:x", ""] {
            let err = parse_device(bad).unwrap_err();
            assert_eq!(err.code(), "device", "{bad}");
        }
        let msg = parse_device("tpu").unwrap_err().to_string();
        assert!(msg.contains("cuda:N"), "{msg}");
    }

    #[test]
    fn an_unavailable_device_reports_the_cause_without_the_backtrace() {
        let cause = candle_core::Error::Msg("no CUDA-capable device is detected".into());
        let wrapped = candle_core::Error::WithBacktrace {
            inner: Box::new(cause),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            wrapped.to_string().lines().count() > 1,
            "candle prints the stack"
        );
        let err = unavailable("cuda:3", wrapped);
        assert_eq!(err.code(), "device");
        assert_eq!(
            err.to_string(),
            "device: cuda:3 is not available: no CUDA-capable device is detected"
        );
    }

    /// Runs in the CUDA build (CI: against the stub driver, which has no device; on a GPU host
    /// there is no 100th GPU either). One line whatever `RUST_BACKTRACE` says.
    #[cfg(feature = "cuda")]
    #[test]
    fn a_missing_cuda_device_is_a_clean_device_error_naming_it() {
        let err = parse_device("cuda:99").unwrap_err();
        assert_eq!(err.code(), "device", "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("device: cuda:99 is not available: "),
            "{msg}"
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_enable_it() {
        let msg = parse_device("cuda:0").unwrap_err().to_string();
        assert!(msg.contains("--features cuda"), "{msg}");
    }
}
