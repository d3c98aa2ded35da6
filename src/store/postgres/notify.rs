//! `LISTEN`/`NOTIFY`: messages between the processes that share the database (a job was
//! queued; a job's events), so idle workers wake at once and any API replica streams any
//! job. Delivery is best effort: polling and the store stay the truth.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::PostgresStore;
use crate::store::StoreError;

/// The one channel lrlab's processes talk on.
const CHANNEL: &str = "lrlab";
/// Messages received but not handled yet; more are dropped (the receiver lags).
const BUFFER: usize = 1024;
/// How long a listener whose connection broke waits before it connects again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl PostgresStore {
    pub(super) async fn notify(&self, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Listens on one connection of the pool until the receiver is dropped or the pool
    /// closes; a broken connection is replaced (what was sent meanwhile is missed).
    pub(super) async fn listen(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    () = sender.closed() => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) => {
                        if let Err(mpsc::error::TrySendError::Closed(_)) =
                            sender.try_send(notification.payload().to_string())
                        {
                            return;
                        }
                    }
                    Ok(None) => {
                        tracing::info!("the database connection for notifications broke; listening again (polling covers what was missed)");
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for notifications; retrying");
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                    }
                }
            }
        });
        Ok(receiver)
    }
}
