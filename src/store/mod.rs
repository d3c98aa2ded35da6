//! The job store: every SQL statement lrlab runs lives in this module.
//!
//! SQLite (embedded, one file) is the default and only backend today. The API
//! and the workers call the functions here and never see SQL, so a PostgreSQL
//! backend for several machines can be added beside this one later.

mod jobs;
mod metrics;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use jobs::{CancelOutcome, DeleteOutcome, JobError, JobFilter, JobRecord, NewJob, Submitted};
pub use metrics::MetricSummary;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures of the job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL `{url}`: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not open the database `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("stored JSON of job {job} is unreadable: {source}")]
    CorruptJson {
        job: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not encode JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

/// A handle on the job database; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating it if missing) the SQLite database at `url`, e.g.
    /// `sqlite://lrlab.db`, and brings its schema up to date.
    ///
    /// WAL mode lets readers (the API) run while a worker writes; the busy
    /// timeout makes concurrent writers wait instead of failing; foreign
    /// keys make deleting a job delete its metrics.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::InvalidUrl {
                url: url.to_string(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_string(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (at shutdown, so the WAL is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
