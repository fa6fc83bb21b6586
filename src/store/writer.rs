//! The writer task: group commit for new objects and audit events. Callers hand it work
//! through bounded channels; it applies everything waiting in one transaction (one disk
//! flush, few statements), and answers each caller once the transaction is durable. If
//! that transaction fails, each insert is retried alone so one bad insert cannot fail the
//! others. Audit events are fire-and-forget but never dropped: a full channel slows
//! callers down, and events the store refuses are kept and tried again (with a bounded
//! backlog, past which senders wait). They have a channel of their own, which the task
//! leaves alone while it lets them gather, so the events of a busy server do not wake it
//! one by one.

use super::conns::Conns;
use kmip::attributes::Attribute;
use sqlx::Any;
use tokio::sync::{mpsc, oneshot};

use super::objects::{attribute_values, indexed, NewObject, INSERT_ATTRIBUTES};
use super::sql::{flag, insert_rows, Batch, Row};
use super::{ObjectRow, Store, StoreError};

/// Longest object id an audit record keeps (longer ones are cut, marked with `…`).
const MAX_AUDIT_ID: usize = 1024;

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

/// Work someone waits for.
pub(super) enum Job {
    Insert {
        row: Box<ObjectRow>,
        attributes: Vec<Attribute>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Answered once everything sent before it is committed, audit events included.
    Flush(oneshot::Sender<()>),
}

/// The writer task's two inboxes.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    audit: mpsc::Sender<AuditEvent>,
}

/// Most jobs in one transaction.
const BATCH: usize = 512;
/// How long audit events may wait for company before they are committed.
const AUDIT_LINGER: std::time::Duration = std::time::Duration::from_millis(10);
/// Room in each inbox.
const QUEUE: usize = 4096;
/// Most audit events held while the store refuses them.
const MAX_BACKLOG: usize = 65_536;
/// Waits before storing refused audit events again: doubling from the first to the last.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn start(pool: Conns) -> Writer {
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<Job>(QUEUE);
    let (audit_tx, mut audit_rx) = mpsc::channel::<AuditEvent>(QUEUE);
    tokio::spawn(async move {
        let mut jobs = Vec::with_capacity(BATCH);
        let mut events = Vec::with_capacity(BATCH);
        // Events the store refused so far are kept, first in line, and tried again.
        let mut retry = RETRY_FIRST;
        loop {
            let open = tokio::select! {
                n = jobs_rx.recv_many(&mut jobs, BATCH) => n > 0,
                _ = tokio::time::sleep(retry), if !events.is_empty() => true,
                // A backlog this large stops taking events: senders wait, and so does the
                // work they audit, rather than events being lost.
                n = audit_rx.recv_many(&mut events, BATCH), if events.len() < MAX_BACKLOG => {
                    // Nobody waits on audit events: let more gather (the inbox is not
                    // watched meanwhile, so they wake nobody) and share one disk flush,
                    // cut short by work someone waits for.
                    if n > 0 {
                        tokio::select! {
                            _ = tokio::time::sleep(AUDIT_LINGER) => {}
                            _ = jobs_rx.recv_many(&mut jobs, BATCH) => {}
                        }
                    }
                    n > 0
                }
            };
            // Every event sent before a flush is in the inbox by now (within the bound).
            while events.len() < MAX_BACKLOG {
                let Ok(e) = audit_rx.try_recv() else { break };
                events.push(e);
            }
            if !open {
                while let Ok(job) = jobs_rx.try_recv() {
                    jobs.push(job);
                }
            }
            let started = std::time::Instant::now();
            let refused = !events.is_empty() && retry > RETRY_FIRST;
            store_some(&pool, &mut jobs, &mut events, refused).await;
            crate::metrics::observe("store_commit", started.elapsed());
            retry = match events.is_empty() {
                true => RETRY_FIRST,
                false => (retry * 2).min(RETRY_MAX),
            };
            if !open {
                // The last chances at shutdown.
                for _ in 0..3 {
                    if events.is_empty() {
                        break;
                    }
                    tokio::time::sleep(retry).await;
                    store_some(&pool, &mut jobs, &mut events, true).await;
                }
                if !events.is_empty() {
                    tracing::error!(lost = events.len(), "audit events could not be stored");
                }
                break;
            }
        }
    });
    Writer { jobs: jobs_tx, audit: audit_tx }
}

/// Commits `jobs` and the first events waiting (a batch's worth: a statement has a bound
/// on its parameters), leaving in `events` those the store refused, first in line. While
/// events are being `refused`, the jobs commit on their own, so the group commit goes on;
/// and an event the store refuses while it takes others (one it will never take) is
/// dropped, logged, rather than holding up the rest for ever.
async fn store_some(
    pool: &Conns,
    jobs: &mut Vec<Job>,
    events: &mut Vec<AuditEvent>,
    refused: bool,
) {
    let first: Vec<AuditEvent> = events.drain(..events.len().min(BATCH)).collect();
    let mut unstored = match refused {
        true => {
            commit(pool, jobs, Vec::new()).await;
            commit(pool, &mut Vec::new(), first).await
        }
        false => commit(pool, jobs, first).await,
    };
    if refused && unstored.len() > 1 {
        // One by one: if some go in, the store is up, and refuses the others for good.
        let tried = unstored.len();
        let mut kept = Vec::new();
        for event in std::mem::take(&mut unstored) {
            if apply(pool, &[], std::slice::from_ref(&event)).await.is_err() {
                kept.push(event);
            }
        }
        if kept.len() < tried {
            for e in kept.drain(..) {
                tracing::error!(principal = %e.principal, operation = %e.operation,
                    "audit event dropped: the store refuses it");
            }
        }
        unstored = kept;
    }
    events.splice(0..0, unstored);
}

/// Commits `jobs` and `events`; returns the events that could not be stored.
async fn commit(pool: &Conns, jobs: &mut Vec<Job>, events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    let mut objects = Vec::new();
    let mut dones = Vec::new();
    let mut flushes = Vec::new();
    for job in jobs.drain(..) {
        match job {
            Job::Insert { row, attributes, done } => {
                objects.push((*row, attributes));
                dones.push(done);
            }
            Job::Flush(done) => flushes.push(done),
        }
    }
    let all: Vec<NewObject<'_>> = objects
        .iter()
        .map(|(row, attributes)| NewObject { row: row.clone(), attributes })
        .collect();
    // Optimistically everything in one transaction. Should it fail, redo each insert in a
    // transaction of its own, so one bad insert does not fail the others.
    let unstored = match apply(pool, &all, &events).await {
        Ok(()) => {
            for done in dones {
                let _ = done.send(Ok(()));
            }
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = all.len(), "batch commit failed; retrying one by one");
            for (new, done) in all.iter().zip(dones) {
                let _ = done.send(apply(pool, std::slice::from_ref(new), &[]).await);
            }
            match apply(pool, &[], &events).await {
                Ok(()) => Vec::new(),
                Err(e) => {
                    tracing::error!(error = %e, waiting = events.len(), "audit events could not be stored yet; retrying");
                    events
                }
            }
        }
    };
    for done in flushes {
        let _ = done.send(());
    }
    unstored
}

/// Inserts objects, their attributes and audit events in one transaction, with one
/// statement for all object rows, one for all attribute rows and one for all events (a
/// statement per 1024 parameters), sent as one [`Batch`]: one round trip, and with audit
/// events the chain's head first (two on SQLite, four on PostgreSQL).
async fn apply(
    pool: &Conns,
    objects: &[NewObject<'_>],
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    if objects.is_empty() && events.is_empty() {
        return Ok(());
    }
    let mut conn = pool.get().await?;
    let mut batch = Batch::for_conn(&conn);
    let rows: Vec<&ObjectRow> = objects.iter().map(|new| &new.row).collect();
    batch.insert_rows(INSERT_OBJECTS, 14, &rows, object_values);
    let mut attribute_rows = Vec::new();
    for new in objects {
        attribute_rows.extend(indexed(&new.row.id, new.attributes));
    }
    batch.insert_rows(INSERT_ATTRIBUTES, 5, &attribute_rows, attribute_values);
    if events.is_empty() {
        return batch.commit(&mut conn).await.map(|_| ());
    }
    batch
        .commit_after(&mut conn, LOCK_AUDIT_HEAD, |head, batch| append_audit(batch, head, events))
        .await
}

/// The chain hash of one audit record: SHA-256 over the previous hash, the sequence
/// number, the time and every field, length-prefixed so no two records hash alike. The
/// fields are principal, protocol, operation, object id, outcome and detail.
pub(crate) fn audit_hash(prev: &[u8], seq: i64, at: i64, fields: [Option<&str>; 6]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for field in fields {
        match field {
            None => h.update([0u8]),
            Some(text) => {
                h.update([1u8]);
                h.update((text.len() as u64).to_be_bytes());
                h.update(text.as_bytes());
            }
        }
    }
    h.finalize().to_vec()
}

impl AuditEvent {
    fn chain_fields(&self) -> [Option<&str>; 6] {
        [
            Some(self.principal.as_str()),
            Some(self.protocol),
            Some(self.operation.as_str()),
            self.object_id.as_deref(),
            Some(self.outcome.as_str()),
            self.detail.as_deref(),
        ]
    }
}

/// The hash before the first chained record.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Locks the audit chain's head and returns it: a write, so several processes writing to
/// one database (the server and the command line) take turns and each sees the latest
/// head.
const LOCK_AUDIT_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash";

/// Adds `events` to the hash chain after `head` (locked by [`LOCK_AUDIT_HEAD`] in the same
/// transaction). Only this function adds records, and it moves the head in the same
/// transaction (the migration that made the head set it to the records already there).
fn append_audit(batch: &mut Batch, head: (i64, Option<Vec<u8>>), events: &[AuditEvent]) {
    let (mut seq, head_hash) = head;
    // Sequence numbers are assigned here, under the lock, so they are part of the hash.
    let mut prev = head_hash.unwrap_or_else(|| GENESIS.to_vec());
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let hash = audit_hash(&prev, seq, e.at, e.chain_fields());
        rows.push((seq, e, hash.clone()));
        prev = hash;
    }
    batch.insert_rows(
        "INSERT INTO audit (seq, at, principal, protocol, operation, object_id, outcome, \
         detail, hash) VALUES ",
        9,
        &rows,
        |b, (seq, e, hash)| {
            b.bind(*seq)
                .bind(e.at)
                .bind(e.principal.clone())
                .bind(e.protocol)
                .bind(e.operation.clone())
                .bind(e.object_id.clone())
                .bind(e.outcome.clone())
                .bind(e.detail.clone())
                .bind(hash.clone());
        },
    );
    batch
        .add("UPDATE audit_head SET seq = ")
        .bind(seq)
        .push(", hash = ")
        .bind(prev)
        .push(" WHERE id = 1");
}

pub(super) async fn insert_object_row(
    tx: &mut sqlx::Transaction<'_, Any>,
    r: &ObjectRow,
) -> Result<(), StoreError> {
    insert_rows(tx, INSERT_OBJECTS, 14, &[r], object_values).await
}

const INSERT_OBJECTS: &str = "INSERT INTO objects (id, object_type, owner, state, sub_type, \
     key_format, sealed_material, kek_label, public_material, initial_date, activation_date, \
     deactivation_date, last_change_date, fresh) VALUES ";

/// Binds an object row (14 parameters).
fn object_values(b: &mut Row<'_>, r: &&ObjectRow) {
    b.bind(r.id.clone())
        .bind(r.object_type)
        .bind(r.owner.clone())
        .bind(r.state)
        .bind(r.sub_type)
        .bind(r.key_format)
        .bind(r.sealed_material.clone())
        .bind(r.kek_label.clone())
        .bind(r.public_material.clone())
        .bind(r.initial_date)
        .bind(r.activation_date)
        .bind(r.deactivation_date)
        .bind(r.last_change_date)
        .bind(flag(r.fresh));
}

impl Store {
    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.writer.jobs.send(job).await.map_err(|_| StoreError::WriterStopped)
    }

    /// Inserts an object with its attributes; returns once the insert is durable.
    pub(crate) async fn insert_object(&self, new: NewObject<'_>) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let attributes = new.attributes.to_vec();
        self.send(Job::Insert { row: Box::new(new.row), attributes, done }).await?;
        wait.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Records an audit event (committed with the next batch).
    pub(crate) async fn audit(&self, mut event: AuditEvent) {
        // Every event must be kept, and PostgreSQL's text cannot hold U+0000, which a
        // client can put in what is recorded (an identifier it asked for, say).
        let text = [&mut event.principal, &mut event.operation, &mut event.outcome];
        for field in text.into_iter().chain(event.object_id.as_mut()).chain(event.detail.as_mut()) {
            if field.contains('\0') {
                *field = field.replace('\0', "\u{FFFD}");
            }
        }
        // The object id is indexed, and an index entry has a size limit on PostgreSQL; a
        // client may name an object with any text.
        if let Some(id) = event.object_id.as_mut().filter(|id| id.len() > MAX_AUDIT_ID) {
            let mut end = MAX_AUDIT_ID;
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            id.truncate(end);
            id.push('…');
        }
        if self.writer.audit.send(event).await.is_err() {
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
            "SELECT principal, operation, outcome FROM audit WHERE object_id = $1 ORDER BY seq",
        )
        .bind(object_id)
        .fetch_all(&mut *self.read.get().await?)
        .await?)
    }
}
