//! The store: the only code that writes SQL. SQLite by default (one file, one writer
//! connection), or PostgreSQL when several replicas share one database; the same queries
//! run on both. New objects and audit events go through the group-committing writer task
//! (`writer.rs`).

mod acme;
mod audit;
mod cache;
mod conns;
mod engines;
mod error;
mod grants;
mod leader;
mod leases;
mod objects;
pub(crate) mod pg_backup;
mod tokens;
mod writer;

pub(crate) use acme::{
    AccountRow, AcmeCertificate, AuthzRow, ChallengeRow, EabKeyRow, NewOrder, NonceGuard, OrderRow,
    Prefetch, Prefetched,
};
pub(crate) use audit::SealRow;
pub(crate) use engines::EngineConfig;
pub(crate) use error::StoreError;
pub(crate) use leases::{CertificateRow, IssuerRow, LeaseRow};
pub(crate) use objects::{
    match_key, AddIf, DateColumn, LocateQuery, NewObject, ObjectRow, Replacement, UsageDraw,
};
pub(crate) use tokens::TokenRow;
pub(crate) use writer::{audit_hash, AuditEvent, GENESIS};

/// Lease states as stored.
pub(crate) mod lease_state {
    pub(crate) use super::leases::{ACTIVE, REVOKED};
}

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Executor};

mod sql;
use sql::Flag;

/// Read connections to a SQLite store (WAL: readers do not wait for the writer).
const READERS: usize = 4;

/// How long a PostgreSQL connection may sit idle in the pool and still be lent without a
/// check that the server has kept it (HikariCP's `aliveBypassWindowMs` is the same idea).
const PING_WHEN_IDLE: Duration = Duration::from_secs(1);

/// Which database a store lives in, from the `[store] url` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// An SQLite file (the embedded default, `DATA/strongroom.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL database, which several replicas may share.
    Postgres(String),
}

impl Location {
    /// Reads a store URL: `sqlite://PATH`, `sqlite:PATH`, `postgres://...` or
    /// `postgresql://...`.
    pub(crate) fn parse(url: &str) -> Option<Location> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Some(Location::Postgres(url.to_owned()));
        }
        match url.strip_prefix("sqlite://").or(url.strip_prefix("sqlite:")) {
            Some(p) if !p.is_empty() => Some(Location::Sqlite(PathBuf::from(p))),
            _ => None,
        }
    }

    /// The location for messages: the SQLite path, or the PostgreSQL URL without its
    /// password.
    pub(crate) fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact_password(url),
        }
    }
}

/// `scheme://user:secret@host/db?password=secret` as `scheme://user:***@host/db?password=***`.
fn redact_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out =
        match base.split_once("://").and_then(|(s, rest)| Some((s, rest.rsplit_once('@')?))) {
            Some((scheme, (userinfo, host))) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_owned(),
            },
            None => base.to_owned(),
        };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{out}?{}", params.join("&"));
    }
    out
}

/// The SQL dialect in use, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Handle on the database; cheap to clone. The pools use sqlx's `Any` driver, so one set
/// of queries (portable SQL with `$N` parameters) serves SQLite and PostgreSQL.
#[derive(Clone)]
pub(crate) struct Store {
    read: conns::Conns,
    write: conns::Conns,
    writer: writer::Writer,
    backend: Backend,
    leader: leader::Leadership,
    /// The PostgreSQL URL, for the leader election's own connection.
    url: Option<String>,
    /// Rows as last read (`cache.rs`).
    caches: std::sync::Arc<cache::Caches>,
}

impl Store {
    /// Opens (creating if needed) the store and runs its migrations.
    pub(crate) async fn open(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(path) => Store::open_sqlite(path).await,
            Location::Postgres(url) => Store::open_postgres(url).await,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`: WAL, synchronous=FULL so
    /// an acknowledged write survives power loss, one writer connection so transactions
    /// never fail on lock upgrades, and a pool of read-only readers.
    pub(crate) async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let base = SqliteConnectOptions::new().filename(path);
        let url = |o: SqliteConnectOptions| AnyConnectOptions::from_url(&o.to_url_lossy());
        // A local file has no connection to lose: no ping before each query (with it every
        // query paid a second round trip to SQLite's worker thread).
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await
                    .map(drop)
                })
            })
            .connect_with(url(base.clone().create_if_missing(true))?)
            .await?;
        sqlx::migrate!("./schemas/sqlite").run(&write).await?;
        let write = conns::Conns::hold(&write, 1).await?;
        let read = AnyPoolOptions::new()
            .max_connections(READERS as u32)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(
                    async move { conn.execute("PRAGMA busy_timeout = 10000;").await.map(drop) },
                )
            })
            .connect_with(url(base.read_only(true))?)
            .await?;
        let read = conns::Conns::hold(&read, READERS).await?;
        let writer = writer::start(write.clone());
        let leader = leader::Leadership::new(true);
        let caches = std::sync::Arc::new(cache::Caches::sole());
        Ok(Store { read, write, writer, backend: Backend::Sqlite, leader, url: None, caches })
    }

    /// Opens the PostgreSQL database at `url` and runs its migrations (sqlx holds an
    /// advisory lock meanwhile, so replicas starting together migrate once). Reads and
    /// writes share one pool: PostgreSQL has no single-writer constraint.
    pub(crate) async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings each connection it lends by default: one more round trip for every
            // statement. Only a connection idle for a while is checked (the server or a
            // proxy may have dropped it meanwhile); if the check fails, the pool opens another.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(url.parse::<AnyConnectOptions>()?)
            .await?;
        sqlx::migrate!("./schemas/postgres").run(&pool).await?;
        let writer = writer::start(conns::Conns::Pool(pool.clone()));
        Ok(Store {
            read: conns::Conns::Pool(pool.clone()),
            write: conns::Conns::Pool(pool),
            writer,
            backend: Backend::Postgres,
            leader: leader::Leadership::new(false),
            url: Some(url.to_owned()),
            caches: std::sync::Arc::new(cache::Caches::shared()),
        })
    }
}

impl Store {
    /// Held by each write to objects or attributes: outdates the cached objects when it
    /// ends, however it ends.
    fn writing(&self) -> cache::Writing<'_, (ObjectRow, Vec<kmip::attributes::Attribute>)> {
        self.caches.objects.writing()
    }

    /// An empty batch of statements for this store's database.
    fn batch(&self) -> sql::Batch {
        sql::Batch::new(self.backend == Backend::Sqlite)
    }

    /// Commits `batch` on the write connection, in a task of its own so that a caller
    /// that goes away (a client that hung up) cannot stop it half-way. `then` runs once it
    /// is committed, while the connection is still held, so that what it does (keeping
    /// rows in the caches) follows the order of the commits. False, and `then` not run,
    /// when the batch's guard let nothing be written (see [`sql::Batch::guard`]).
    async fn commit(
        &self,
        batch: sql::Batch,
        then: impl FnOnce(&Store) + Send + 'static,
    ) -> Result<bool, StoreError> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut conn = store.write.get().await?;
            let written = batch.commit(&mut conn).await?;
            if written {
                then(&store);
            }
            Ok(written)
        })
        .await?
    }

    /// Outdates the cached objects, after a write that changed some.
    fn objects_changed(&self) {
        self.caches.objects.clear();
    }

    /// Empties every cache, so that the next reads are the store's.
    #[cfg(test)]
    pub(crate) fn forget_cached(&self) {
        self.caches.objects.clear();
        if let Some(c) = &self.caches.acme {
            c.orders.clear();
            c.authorizations_changed();
        }
        self.caches.certificates.clear();
        self.caches.eab.clear();
    }

    /// Whether several processes may serve this store at once (PostgreSQL), so state that
    /// one process could keep in memory must live in the store.
    pub(crate) fn is_shared(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Writes a consistent copy of the whole database to `path` (SQLite `VACUUM INTO`),
    /// also while the service runs. Key material in it stays sealed by the HSM.
    pub(crate) async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "backup copies SQLite stores; back up a PostgreSQL store with pg_dump",
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(&mut *self.read.get().await?)
            .await?;
        Ok(())
    }

    /// One sealed object (id and sealed bytes), to check a backup opens with this HSM.
    pub(crate) async fn any_sealed_object(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, sealed_material FROM objects WHERE sealed_material IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&mut *self.read.get().await?)
        .await?)
    }

    /// Closes the pools (before the database file is replaced).
    pub(crate) async fn close(&self) {
        self.flush().await;
        self.read.close().await;
        self.write.close().await;
    }

    /// Checks the database answers (for /health).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&mut *self.read.get().await?).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
