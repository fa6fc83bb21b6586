//! Dynamic credentials: secrets that exist only for a lease. The database engine creates
//! users in PostgreSQL and MariaDB/MySQL; the PKI engine issues short-lived certificates.
//! Leases are stored, renewable up to a maximum, and revoked on expiry by the reaper
//! (`leases.rs`), also for leases that expired while the service was down.

pub(crate) mod database;
mod db_engine;
mod leases;
pub(crate) mod password;
pub(crate) mod pki;

use std::sync::Arc;

pub(crate) use leases::run_reaper;

use crate::ca::{Ca, CaError};
use crate::hsm::{Hsm, HsmError};
use crate::store::{Store, StoreError};

/// The secrets engines' shared handle: store, HSM and CA. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Creds {
    store: Store,
    hsm: Hsm,
    ca: Arc<Ca>,
    /// Each authority's last CRL built, by issuer id, reused until a revocation happens or
    /// it ages (see `pki::crl`).
    crl: Arc<tokio::sync::Mutex<std::collections::HashMap<String, pki::CachedCrl>>>,
    /// When the default issuer's CRL was built (Unix seconds; 0: not yet), readable without
    /// waiting for a build in progress.
    crl_built_at: Arc<std::sync::atomic::AtomicI64>,
    /// Per connection, held while one of its passwords is rotated (its root's, a static
    /// role's user's): two at once could leave the database with one password and the
    /// store with the other.
    rotating: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Static roles whose rotation failed: attempts so far and when to try again.
    static_retry: Arc<std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>>,
}

/// Who a lease is issued to, and when that holder's own authority ends (a token's
/// expiry): as in Vault, a credential's lease never outlives the token it was issued to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Holder<'a> {
    /// `token:ACCESSOR` or a certificate subject.
    pub(crate) identity: &'a str,
    pub(crate) until: Option<i64>,
}

impl Holder<'_> {
    /// `ttl` (seconds from `now`) shortened to end by the holder's expiry.
    fn cap(&self, now: i64, ttl: i64) -> i64 {
        self.until.map_or(ttl, |until| ttl.min(until.saturating_sub(now)))
    }

    /// For a certificate's lease, which lasts as long as the certificate: as with Vault's
    /// PKI certificates, it does not end with the token, so a short-lived token can issue
    /// a service its certificate (revoking the token still revokes it).
    fn for_certificate(self) -> Self {
        Holder { until: None, ..self }
    }
}

/// Errors of the secrets engines.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("lease {0:?} does not exist or is no longer active")]
    NoLease(String),
    #[error("the managed database refused: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot reach the managed database: {0}")]
    Unreachable(String),
    #[error("connection_url is not usable: {0}")]
    BadUrl(String),
    #[error("statement template: {0}")]
    Template(String),
    #[error("stored {kind} {name:?} is damaged: {source}")]
    Corrupt {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// A named configuration of an engine (for policies' `create`, which makes new ones but
/// does not replace existing ones).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Named {
    Connection,
    Role,
    StaticRole,
    PkiRole,
}

impl Creds {
    /// Whether the configuration `what` named `name` exists.
    pub(crate) async fn exists(&self, what: Named, name: &str) -> Result<bool, CredsError> {
        let kind = match what {
            Named::Connection => db_engine::KIND_CONNECTION,
            Named::Role => db_engine::KIND_ROLE,
            Named::StaticRole => db_engine::KIND_STATIC_ROLE,
            Named::PkiRole => pki::KIND_PKI_ROLE,
        };
        Ok(self.store.engine_config(kind, name).await?.is_some())
    }

    /// The rotation lock of connection `db` (see `rotating`).
    fn rotation_lock(&self, db: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.rotating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(db.to_owned()).or_default().clone()
    }

    pub(crate) fn new(store: Store, hsm: Hsm, ca: Arc<Ca>) -> Creds {
        Creds {
            store,
            hsm,
            ca,
            crl: Arc::default(),
            crl_built_at: Arc::default(),
            rotating: Arc::default(),
            static_retry: Arc::default(),
        }
    }

    /// Seals a secret under the HSM's key-encryption key, bound to `aad`.
    async fn seal(&self, secret: &str, aad: String) -> Result<Vec<u8>, CredsError> {
        let secret = secret.as_bytes().to_vec();
        Ok(self.hsm.seal_async(secret, aad).await?.bytes)
    }

    /// Opens what [`Creds::seal`] sealed with the same `aad`.
    async fn open(&self, sealed: Vec<u8>, aad: String) -> Result<String, CredsError> {
        let bytes = self.hsm.open_sealed_async(sealed, aad).await?;
        String::from_utf8(bytes)
            .map_err(|_| CredsError::Invalid("sealed secret is not text".into()))
    }

    /// Names of the configuration documents of `kind`.
    async fn names(&self, kind: &str) -> Result<Vec<String>, CredsError> {
        Ok(self.store.engine_configs(kind).await?.into_iter().map(|c| c.name).collect())
    }

    /// Loads and parses the configuration document `kind`/`name`.
    async fn config<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        name: &str,
    ) -> Result<(T, crate::store::EngineConfig), CredsError> {
        let row = self
            .store
            .engine_config(kind, name)
            .await?
            .ok_or_else(|| CredsError::NotFound { kind, name: name.to_owned() })?;
        let parsed = serde_json::from_str(&row.body).map_err(|source| CredsError::Corrupt {
            kind,
            name: name.to_owned(),
            source,
        })?;
        Ok((parsed, row))
    }
}

/// A list given as a JSON array of strings or as one comma-separated string.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum StringList {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub(crate) fn comma_separated(self) -> Vec<String> {
        match self {
            StringList::None => Vec::new(),
            StringList::One(s) => {
                s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
            }
            StringList::Many(v) => v,
        }
    }

    /// Statements: a single string stays one template (it may hold several `;` statements).
    pub(crate) fn statements(self) -> Vec<String> {
        match self {
            StringList::None => Vec::new(),
            StringList::One(s) => vec![s],
            StringList::Many(v) => v,
        }
    }
}

/// Checks a name used in API paths and lease ids: 1 to 64 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), CredsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CredsError::Invalid(format!("{what} {name:?} must be 1 to 64 of A-Z a-z 0-9 _ - .")))
    }
}
