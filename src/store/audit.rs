//! The audit trail: every operation and access decision becomes one row. Events go through
//! a bounded channel to one writer task that commits them in batches, so auditing a Get
//! does not cost a disk flush of its own; a full channel slows callers down rather than
//! dropping events.

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// One audited event.
#[derive(Debug, Clone)]
pub(crate) struct AuditEvent {
    pub(crate) at: i64,
    pub(crate) principal: String,
    pub(crate) protocol: &'static str,
    pub(crate) operation: String,
    pub(crate) object_id: Option<String>,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

enum Msg {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// Where events are sent; cheap to clone.
#[derive(Clone)]
pub(crate) struct AuditSink {
    tx: mpsc::Sender<Msg>,
}

impl AuditSink {
    /// Starts the writer task on `store`.
    pub(crate) fn start(store: Store) -> AuditSink {
        let (tx, mut rx) = mpsc::channel::<Msg>(4096);
        tokio::spawn(async move {
            let mut msgs = Vec::with_capacity(256);
            while rx.recv_many(&mut msgs, 256).await > 0 {
                let mut events = Vec::with_capacity(msgs.len());
                let mut waiting = Vec::new();
                for m in msgs.drain(..) {
                    match m {
                        Msg::Event(e) => events.push(e),
                        Msg::Flush(done) => waiting.push(done),
                    }
                }
                if !events.is_empty() {
                    if let Err(e) = store.append_audit(&events).await {
                        tracing::error!(error = %e, lost = events.len(), "audit write failed");
                    }
                }
                for done in waiting {
                    let _ = done.send(());
                }
            }
        });
        AuditSink { tx }
    }

    /// Records an event (waits while the writer is behind).
    pub(crate) async fn record(&self, event: AuditEvent) {
        if self.tx.send(Msg::Event(event)).await.is_err() {
            tracing::error!("audit writer has stopped");
        }
    }

    /// Waits until every event recorded before this call is committed.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl Store {
    /// Appends events in one transaction.
    pub(crate) async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO audit (at, principal, protocol, operation, object_id, outcome, detail) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.at)
            .bind(&e.principal)
            .bind(e.protocol)
            .bind(&e.operation)
            .bind(&e.object_id)
            .bind(&e.outcome)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Audit events about `object_id`, oldest first, as (principal, operation, outcome).
    #[cfg(test)]
    pub(crate) async fn audit_for_object(
        &self,
        object_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT principal, operation, outcome FROM audit WHERE object_id = ? ORDER BY seq",
        )
        .bind(object_id)
        .fetch_all(&self.read)
        .await?)
    }
}
