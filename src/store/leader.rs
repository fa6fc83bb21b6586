//! Which replica runs the background work (time-driven KMIP state changes, lease expiry,
//! CRL refresh, audit sealing): the one holding a PostgreSQL session advisory lock, taken
//! on a connection of its own. PostgreSQL releases the lock when that connection or the
//! process dies (or, by TCP keepalives set on it, some 11 seconds after its host went
//! away), and another replica takes it at its next try, so the work moves within seconds. An SQLite store has one serving process: it always leads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::Connection as _;
use tokio::sync::watch;

use super::{Backend, Store, StoreError};

/// The advisory lock's key ("STRONG" in ASCII): one per database.
const LOCK_KEY: i64 = 0x5354_524F_4E47;
/// How often a follower tries to take the lock and the leader checks its connection.
const TICK: Duration = Duration::from_secs(2);

/// Whether this process leads; shared by the store's clones.
#[derive(Clone, Debug)]
pub(crate) struct Leadership(Arc<AtomicBool>);

impl Leadership {
    pub(super) fn new(leads: bool) -> Leadership {
        Leadership(Arc::new(AtomicBool::new(leads)))
    }

    fn set(&self, leads: bool) {
        if self.0.swap(leads, Ordering::SeqCst) != leads {
            if leads {
                tracing::info!("this replica now runs the background work");
            } else {
                tracing::warn!("this replica no longer runs the background work");
            }
        }
    }
}

/// Lets PostgreSQL notice within seconds that the host on the other end of a lock's
/// connection is gone: it learns of a dead process at once (its socket closes), of a dead
/// or cut-off host only by TCP keepalive, hours by default, and keeps the lock until then.
/// Each setting on its own, so that one a server lacks (tcp_user_timeout before 12) does
/// not undo the others.
async fn keep_alive(conn: &mut AnyConnection) {
    for set in [
        "SET tcp_keepalives_idle = 5",
        "SET tcp_keepalives_interval = 2",
        "SET tcp_keepalives_count = 3",
        "SET tcp_user_timeout = 10000",
    ] {
        if let Err(e) = sqlx::raw_sql(set).execute(&mut *conn).await {
            tracing::warn!(error = %e, set, "cannot set a keepalive on a lock's connection");
        }
    }
}

/// The advisory lock's key that replicas take while they set up what they share.
const BOOTSTRAP_KEY: i64 = 0x5354_524F_4E48;

/// Held while a replica does what no other may do at the same time ([`Store::bootstrap`],
/// [`Store::exclusive`]): a PostgreSQL session advisory lock on a connection of its own,
/// freed when that connection closes (on release, on drop, or when the process dies).
pub(crate) struct ReplicaLock(Option<AnyConnection>);

impl ReplicaLock {
    /// Lets the next replica in.
    pub(crate) async fn release(self) {
        if let Some(conn) = self.0 {
            // Closing the connection frees its locks.
            let _ = conn.close().await;
        }
    }
}

impl Store {
    /// Waits until no other replica is setting up what all share (the HSM's key-encryption
    /// and CA keys, the first issuers, the first admin token), then keeps the others out
    /// until released: replicas started together on an empty token and database would
    /// otherwise each make their own. PostgreSQL only; an SQLite store has one server.
    pub(crate) async fn bootstrap(&self) -> Result<ReplicaLock, StoreError> {
        self.advisory_lock(BOOTSTRAP_KEY, false).await
    }

    /// Waits (up to a minute, then fails) until no other replica holds `what` (a TDE
    /// key's creation, a managed database's password rotations), then keeps the others
    /// out of it until released. On SQLite, which one process serves, it holds nothing:
    /// the caller's own lock serialises its tasks.
    pub(crate) async fn exclusive(&self, what: &str) -> Result<ReplicaLock, StoreError> {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(what.as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        self.advisory_lock(i64::from_be_bytes(key), true).await
    }

    /// The session lock `key` on a connection of its own; `bounded`: waiting at most a
    /// minute for it (a holder that is stuck must not hang its callers' requests).
    async fn advisory_lock(&self, key: i64, bounded: bool) -> Result<ReplicaLock, StoreError> {
        let Some(url) = &self.url else { return Ok(ReplicaLock(None)) };
        let mut conn = AnyConnection::connect(url).await?;
        keep_alive(&mut conn).await;
        if bounded {
            sqlx::raw_sql("SET lock_timeout = '60s'").execute(&mut conn).await?;
        }
        sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut conn).await?;
        Ok(ReplicaLock(Some(conn)))
    }

    /// Whether background work should run here now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader.0.load(Ordering::SeqCst)
    }

    /// Takes part in the election until `stopped` turns true (PostgreSQL stores; SQLite
    /// stores lead from the start). On shutdown the lock's connection is closed, which
    /// hands the work over at once.
    pub(crate) async fn run_election(&self, mut stopped: watch::Receiver<bool>) {
        let Some(url) = self.url.clone() else { return };
        debug_assert_eq!(self.backend, Backend::Postgres);
        while !*stopped.borrow() {
            match AnyConnection::connect(&url).await {
                Ok(mut conn) => {
                    keep_alive(&mut conn).await;
                    self.hold_or_wait(&mut conn, &mut stopped).await;
                    if *stopped.borrow() {
                        // Closing the connection below hands the work over.
                        self.leader.0.store(false, Ordering::SeqCst);
                    } else {
                        self.leader.set(false);
                    }
                    let _ = conn.close().await;
                }
                Err(e) => tracing::warn!(error = %e, "leader election cannot reach the store"),
            }
            let _ = tokio::time::timeout(TICK, stopped.changed()).await;
        }
    }

    /// Tries for the lock every tick; once held, checks the connection every tick. Returns
    /// when the connection fails or on shutdown.
    async fn hold_or_wait(&self, conn: &mut AnyConnection, stopped: &mut watch::Receiver<bool>) {
        loop {
            let check = async {
                if self.is_leader() {
                    sqlx::query("SELECT 1").execute(&mut *conn).await.map(|_| ())
                } else {
                    let (won,) = sqlx::query_as::<_, (bool,)>("SELECT pg_try_advisory_lock($1)")
                        .bind(LOCK_KEY)
                        .fetch_one(&mut *conn)
                        .await?;
                    self.leader.set(won);
                    Ok(())
                }
            };
            // A leader cut off from the store steps down within a few ticks, about when
            // the store gives its lock to another.
            match tokio::time::timeout(3 * TICK, check).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leader election lost its store connection");
                    return;
                }
                Err(_) => {
                    tracing::warn!("leader election's store connection stopped answering");
                    return;
                }
            }
            if tokio::time::timeout(TICK, stopped.changed()).await.is_ok() && *stopped.borrow() {
                return;
            }
        }
    }
}
