//! Leases: which worker may write for a running job, and for how long without news.
//!
//! A claim gives the worker a [`Lease`]: a random token stored on the job's row and an
//! expiry. Every write the worker makes for that job carries the token and is refused
//! with [`StoreError::LeaseLost`](super::StoreError::LeaseLost) once the row holds
//! another one, so a worker that was presumed dead (its lease expired and the job went
//! to someone else) can never overwrite the new owner's results. The rules are in
//! `docs/QUEUE.md`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::JobRecord;
use crate::job::JobId;

/// Who a worker is: its slot's name, the machine and process it runs in, and its device.
///
/// `(host, pid, name)` is unique among live workers; it keys the `workers` table and
/// is stored on the rows of the jobs it holds, so a process starting on `host` can tell
/// which running jobs belonged to a process of its machine that has died.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerIdentity {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub device: String,
}

impl WorkerIdentity {
    /// A worker of this process on this machine.
    pub fn local(name: impl Into<String>, device: impl Into<String>) -> WorkerIdentity {
        WorkerIdentity {
            name: name.into(),
            host: this_host(),
            pid: std::process::id(),
            device: device.into(),
        }
    }
}

impl fmt::Display for WorkerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.name, self.host, self.pid)
    }
}

/// The random token that proves a lease; a fresh one per claim.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// 128 random bits as hex: no two claims draw the same token in practice.
    pub fn random() -> LeaseToken {
        LeaseToken(format!("{:032x}", rand::random::<u128>()))
    }

    /// A token read back from the database.
    pub fn from_stored(token: String) -> LeaseToken {
        LeaseToken(token)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Tokens are credentials of a sort: logs show only their first characters.
impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseToken({}…)", self.0.get(..8).unwrap_or(&self.0))
    }
}

/// A worker's right to write for one running job.
///
/// Writes are fenced by the token alone; `expires_at` (the database's clock) is when
/// other processes may take the job away unless a heartbeat renews the lease first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: JobId,
    pub token: LeaseToken,
    pub expires_at: DateTime<Utc>,
}

/// A job taken from the queue, with the lease that lets its worker write for it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job: JobRecord,
    pub lease: Lease,
}

/// What a heartbeat learned: the lease's new expiry, and whether the job should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    pub expires_at: DateTime<Utc>,
    /// A cancel was requested, possibly through another process's API.
    pub cancel_requested: bool,
    /// The job's sweep stopped it early, possibly by a coordinator in another process.
    pub stop_early_requested: bool,
}

impl Renewal {
    /// Whether the job should stop at its next batch.
    pub fn stop_requested(&self) -> bool {
        self.cancel_requested || self.stop_early_requested
    }
}

/// A job whose lease expired, and where [`JobStore::requeue_expired`](super::JobStore::requeue_expired)
/// put it: back in the queue, or `canceled` / `stopped_early` when that was pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub job: JobId,
    pub status: crate::job::JobStatus,
    /// The job's sweep, whose coordinator may now have something to decide.
    pub sweep: Option<crate::sweep::SweepId>,
}

/// A running job with the worker that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub worker: WorkerIdentity,
    pub lease: Lease,
}

/// What a worker says it does in its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkerActivity {
    /// The job it trains, if any.
    pub job: Option<JobId>,
    /// Its training throughput over its last progress report, once it has one.
    pub examples_per_sec: Option<f64>,
}

impl WorkerActivity {
    /// Waiting for work.
    pub const IDLE: WorkerActivity = WorkerActivity {
        job: None,
        examples_per_sec: None,
    };

    /// Training `job`, at `examples_per_sec` when known.
    pub fn training(job: JobId, examples_per_sec: Option<f64>) -> WorkerActivity {
        WorkerActivity {
            job: Some(job),
            examples_per_sec,
        }
    }
}

/// A live worker as the `workers` table lists it (for `GET /v1/workers`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub worker: WorkerIdentity,
    /// The job it trains, if any.
    pub job: Option<JobId>,
    /// Its training throughput at its last heartbeat (while it trains).
    pub examples_per_sec: Option<f64>,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Past this instant without a heartbeat the worker is presumed gone.
    pub expires_at: DateTime<Utc>,
}

/// What a claim respects besides each sweep's `max_concurrent`: the claiming process's
/// fair-use limits. They are conditions of the claim's SQL, so a tenant at its limit is
/// passed over however many workers claim at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Running jobs one tenant may have (`--max-running-per-tenant`; `None`: no limit).
    pub max_running_per_tenant: Option<u32>,
}

impl ClaimLimits {
    /// No limit besides the sweeps' own.
    pub const NONE: ClaimLimits = ClaimLimits {
        max_running_per_tenant: None,
    };

    /// The running limit as the SQL compares it: no limit is `i64::MAX`.
    pub fn running_bound(self) -> i64 {
        self.max_running_per_tenant.map_or(i64::MAX, i64::from)
    }
}

/// How often workers renew their leases, and how long a lease lasts without renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    pub heartbeat: Duration,
    /// Several heartbeats long, so a slow statement or a short database restart does
    /// not cost a worker its job.
    pub ttl: Duration,
}

impl LeaseConfig {
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            heartbeat: LeaseConfig::DEFAULT_HEARTBEAT,
            ttl: LeaseConfig::DEFAULT_TTL,
        }
    }
}

/// This machine's name: the kernel's host name, else `$HOSTNAME`, else `localhost`.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` of this machine may still be running.
///
/// Our own pid counts as gone: at start-up nothing of this process holds a lease yet,
/// so a lease held under our pid is a previous process's (containers reuse pid 1). A
/// zombie (killed, not yet reaped by its parent) is gone too. Without `/proc` (not
/// Linux) every other process may be alive, and its jobs wait for their leases to
/// expire. A pid reused by an unrelated process also looks alive: that job, too, waits
/// for its lease.
pub fn process_may_be_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    if !proc.join("self/stat").exists() {
        return true;
    }
    match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        // `pid (command) state …`: the command may hold spaces and parentheses.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_their_debug_form_hides_most_of_them() {
        let (a, b) = (LeaseToken::random(), LeaseToken::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.as_str()), "{shown}");
    }

    #[test]
    fn this_process_counts_as_gone_and_init_as_alive() {
        assert!(!process_may_be_alive(std::process::id()));
        assert!(process_may_be_alive(1));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn exited_children_count_as_gone_before_and_after_they_are_reaped() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        // Exited but not reaped: a zombie.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z"))
        {
            std::thread::yield_now();
        }
        assert!(!process_may_be_alive(pid), "a zombie is gone");
        child.wait().expect("reap");
        assert!(!process_may_be_alive(pid), "a reaped process is gone");
    }

    #[test]
    fn the_host_name_is_never_empty() {
        assert!(!this_host().is_empty());
    }
}
