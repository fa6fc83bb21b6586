//! The writer task: group commit for new objects and audit events. Callers hand it work
//! through a bounded channel; it applies everything waiting in one transaction (one disk
//! flush), each new object under its own savepoint so one failure does not sink the rest,
//! and answers each caller once the transaction is durable. Audit events are fire-and-
//! forget but never dropped: a full channel slows callers down.

use std::collections::HashMap;
use std::sync::Arc;

use kmip::attributes::Attribute;
use sqlx::sqlite::SqlitePool;
use sqlx::Sqlite;
use tokio::sync::{mpsc, oneshot};

use super::objects::{insert_attribute, NewObject};
use super::{ObjectRow, Store, StoreError};

/// One audited event: who did what to which object, and how it ended.
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

pub(super) enum Job {
    Insert {
        row: ObjectRow,
        attributes: Vec<Attribute>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Audit(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// Most jobs in one transaction.
const BATCH: usize = 512;

pub(super) fn start(pool: SqlitePool) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(4096);
    tokio::spawn(async move {
        let mut jobs = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut jobs, BATCH).await > 0 {
            commit(&pool, &mut jobs).await;
        }
    });
    tx
}

async fn commit(pool: &SqlitePool, jobs: &mut Vec<Job>) {
    let mut replies = Vec::new();
    let mut flushes = Vec::new();
    let outcome: Result<(), sqlx::Error> = async {
        let mut tx = pool.begin().await?;
        for job in jobs.drain(..) {
            match job {
                Job::Insert { row, attributes, done } => {
                    let r = insert(&mut tx, NewObject { row, attributes: &attributes }).await;
                    replies.push((done, r));
                }
                Job::Audit(e) => append_audit(&mut tx, &e).await?,
                Job::Flush(done) => flushes.push(done),
            }
        }
        tx.commit().await
    }
    .await;
    match outcome {
        Ok(()) => {
            for (done, r) in replies {
                let _ = done.send(r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store batch commit failed");
            let e = Arc::new(e);
            for (done, _) in replies {
                let _ = done.send(Err(StoreError::Commit(e.clone())));
            }
        }
    }
    for done in flushes {
        let _ = done.send(());
    }
}

/// Inserts one object and its attributes under a savepoint.
async fn insert(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    new: NewObject<'_>,
) -> Result<(), StoreError> {
    let mut sp = sqlx::Connection::begin(&mut **tx).await?;
    let r = &new.row;
    sqlx::query(
        "INSERT INTO objects (id, object_type, owner, state, sub_type, key_format, \
         sealed_material, kek_label, initial_date, activation_date, deactivation_date, \
         last_change_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(r.object_type)
    .bind(&r.owner)
    .bind(r.state)
    .bind(r.sub_type)
    .bind(r.key_format)
    .bind(&r.sealed_material)
    .bind(&r.kek_label)
    .bind(r.initial_date)
    .bind(r.activation_date)
    .bind(r.deactivation_date)
    .bind(r.last_change_date)
    .execute(&mut *sp)
    .await?;
    let mut next_index = HashMap::<&str, i64>::new();
    for a in new.attributes {
        let idx = next_index.entry(a.name.as_str()).or_insert(0);
        insert_attribute(&mut sp, &r.id, a, *idx).await?;
        *idx += 1;
    }
    sp.commit().await?;
    Ok(())
}

async fn append_audit(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    e: &AuditEvent,
) -> Result<(), sqlx::Error> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.writer.send(job).await.map_err(|_| StoreError::WriterStopped)
    }

    /// Inserts an object with its attributes; returns once the insert is durable.
    pub(crate) async fn insert_object(&self, new: NewObject<'_>) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let attributes = new.attributes.to_vec();
        self.send(Job::Insert { row: new.row, attributes, done }).await?;
        wait.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Records an audit event (committed with the next batch).
    pub(crate) async fn audit(&self, event: AuditEvent) {
        if self.send(Job::Audit(event)).await.is_err() {
            tracing::error!("audit writer has stopped; event lost");
        }
    }

    /// Waits until everything sent before this call is committed.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
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
