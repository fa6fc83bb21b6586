//! The store's connections. SQLite's are opened once and lent from here rather than from
//! sqlx's pool: the pool pings every connection it takes back, from a task it spawns, and
//! on SQLite that ping is one more round trip to the connection's worker thread (with the
//! task's wake-up, more than most queries cost). PostgreSQL keeps sqlx's pool, which also
//! replaces connections the server dropped.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Semaphore, SemaphorePermit};

use super::StoreError;

/// Where a query gets its connection.
#[derive(Clone)]
pub(super) enum Conns {
    Pool(AnyPool),
    Held(std::sync::Arc<Held>),
}

/// Connections opened once; `free` counts the slots not lent out.
pub(super) struct Held {
    slots: Vec<Mutex<Option<AnyConnection>>>,
    free: Semaphore,
}

/// A connection lent for one query or transaction; it goes back when dropped.
pub(super) enum Conn<'a> {
    Pooled(PoolConnection<Any>),
    // Fields drop in order: the slot is unlocked before its permit is returned.
    Held { conn: MappedMutexGuard<'a, AnyConnection>, _permit: SemaphorePermit<'a> },
}

impl Conns {
    /// `n` connections taken out of `pool` for good (its options and `after_connect` apply).
    pub(super) async fn hold(pool: &AnyPool, n: usize) -> Result<Conns, StoreError> {
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            slots.push(Mutex::new(Some(pool.acquire().await?.detach())));
        }
        Ok(Conns::Held(std::sync::Arc::new(Held { slots, free: Semaphore::new(n) })))
    }

    /// A connection, once one is free.
    pub(super) async fn get(&self) -> Result<Conn<'_>, StoreError> {
        let held = match self {
            Conns::Pool(pool) => return Ok(Conn::Pooled(pool.acquire().await?)),
            Conns::Held(held) => held,
        };
        let permit = held.free.acquire().await.map_err(|_| StoreError::Closed)?;
        // A permit means a slot is unlocked; another task may take the first one tried.
        for slot in &held.slots {
            if let Ok(guard) = slot.try_lock() {
                return match MutexGuard::try_map(guard, Option::as_mut) {
                    Ok(conn) => Ok(Conn::Held { conn, _permit: permit }),
                    Err(_) => Err(StoreError::Closed),
                };
            }
        }
        Err(StoreError::Closed)
    }

    /// Closes the connections, waiting for those lent out to come back.
    pub(super) async fn close(&self) {
        match self {
            Conns::Pool(pool) => pool.close().await,
            Conns::Held(held) => {
                held.free.close();
                for slot in &held.slots {
                    if let Some(conn) = slot.lock().await.take() {
                        let _ = sqlx::Connection::close(conn).await;
                    }
                }
            }
        }
    }
}

impl Conn<'_> {
    /// Starts a transaction on this connection.
    pub(super) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, Any>, sqlx::Error> {
        sqlx::Connection::begin(&mut **self).await
    }
}

impl Deref for Conn<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Held { conn, .. } => conn,
        }
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Held { conn, .. } => conn,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn lends_each_connection_to_one_caller_and_closes() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let conns = Conns::hold(&pool, 2).await.unwrap();
        let a = conns.get().await.unwrap();
        let b = conns.get().await.unwrap();
        // A third caller waits until one comes back.
        assert!(tokio::time::timeout(Duration::from_millis(50), conns.get()).await.is_err());
        drop(a);
        let mut c =
            tokio::time::timeout(Duration::from_secs(5), conns.get()).await.unwrap().unwrap();
        sqlx::query("SELECT 1").execute(&mut *c).await.unwrap();
        drop((b, c));
        conns.close().await;
        assert!(matches!(conns.get().await, Err(StoreError::Closed)));
    }
}
