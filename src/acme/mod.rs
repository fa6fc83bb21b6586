//! The ACME server (RFC 8555) on the HTTPS listener: accounts bound to their JWS keys,
//! orders for DNS and IP identifiers (RFC 8738), authorizations proven with http-01 or
//! dns-01, finalization with a CSR, certificates from the HSM-held CA, and revocation into
//! the CRL. The HTTP side (JWS checks, URLs, problem documents) is in `crate::http::acme`;
//! this module holds the rules and the validation.

pub(crate) mod ari;
pub(crate) mod dns;
pub(crate) mod issue;
pub(crate) mod jws;
mod tls_alpn;
mod validate;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ca::CaError;
use crate::store::{Prefetch, Prefetched, Store, StoreError};

/// How long a nonce stays usable, and how many may be outstanding.
const NONCE_LIFETIME: Duration = Duration::from_secs(3600);
const MAX_NONCES: usize = 200_000;
/// Orders and authorizations expire if not completed in time.
pub(crate) const ORDER_LIFETIME: i64 = 7 * 24 * 3600;
/// The longest a challenge's validation may take, all its connections and lookups
/// together; after it, the validation fails.
pub(crate) const VALIDATION_DEADLINE: Duration = Duration::from_secs(60);
/// An order processing for longer than this (seconds) was left by a replica that stopped
/// mid-finalize: a finalize may claim it again. Signing one certificate takes milliseconds.
pub(crate) const FINALIZE_STALE_SECS: i64 = 300;
/// At most this many identifiers in one order.
pub(crate) const MAX_IDENTIFIERS: usize = 100;

/// ACME errors; each maps to a problem document type (RFC 8555 §6.7).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcmeError {
    #[error("{0}")]
    Malformed(String),
    #[error("the nonce is missing, unknown or already used")]
    BadNonce,
    #[error("unsupported signature algorithm: {0}")]
    BadSignatureAlgorithm(String),
    #[error("unacceptable account key: {0}")]
    BadPublicKey(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A request from a deactivated (or revoked) account: 401, not 403 (RFC 8555 §7.3.6).
    #[error("the account is {0}")]
    AccountNotValid(String),
    /// A contact URL of a scheme the server does not take (RFC 8555 §7.3).
    #[error("{0}")]
    UnsupportedContact(String),
    /// A mailto: contact that is not one address (RFC 8555 §7.3).
    #[error("{0}")]
    InvalidContact(String),
    #[error("no account exists with this key")]
    AccountDoesNotExist,
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    OrderNotReady(String),
    #[error("{0}")]
    BadCsr(String),
    #[error("{0}")]
    RejectedIdentifier(String),
    #[error("{0}")]
    InvalidProfile(String),
    #[error("{0}")]
    UnsupportedIdentifier(String),
    #[error("the certificate is already revoked")]
    AlreadyRevoked,
    #[error("another order already replaces that certificate")]
    AlreadyReplaced,
    #[error("revocation reason {0} is not allowed (RFC 5280 codes 0-6, 9 and 10)")]
    BadRevocationReason(i64),
    #[error("content type must be application/jose+json")]
    UnsupportedMediaType,
    #[error("this server requires an external account binding for new accounts")]
    ExternalAccountRequired,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("HSM error: {0}")]
    Hsm(#[from] crate::hsm::HsmError),
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("certificate authority error: {0}")]
    Ca(#[from] CaError),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl AcmeError {
    /// The problem type's last part and the HTTP status.
    pub(crate) fn kind(&self) -> (&'static str, u16) {
        match self {
            AcmeError::Malformed(_) => ("malformed", 400),
            AcmeError::BadNonce => ("badNonce", 400),
            AcmeError::BadSignatureAlgorithm(_) => ("badSignatureAlgorithm", 400),
            AcmeError::BadPublicKey(_) => ("badPublicKey", 400),
            AcmeError::Unauthorized(_) => ("unauthorized", 403),
            AcmeError::AccountNotValid(_) => ("unauthorized", 401),
            AcmeError::UnsupportedContact(_) => ("unsupportedContact", 400),
            AcmeError::InvalidContact(_) => ("invalidContact", 400),
            AcmeError::AccountDoesNotExist => ("accountDoesNotExist", 400),
            AcmeError::NotFound(_) => ("malformed", 404),
            AcmeError::OrderNotReady(_) => ("orderNotReady", 403),
            AcmeError::BadCsr(_) => ("badCSR", 400),
            AcmeError::RejectedIdentifier(_) => ("rejectedIdentifier", 400),
            AcmeError::InvalidProfile(_) => ("invalidProfile", 400),
            AcmeError::UnsupportedIdentifier(_) => ("unsupportedIdentifier", 400),
            AcmeError::AlreadyRevoked => ("alreadyRevoked", 400),
            AcmeError::AlreadyReplaced => ("alreadyReplaced", 409),
            AcmeError::BadRevocationReason(_) => ("badRevocationReason", 400),
            AcmeError::UnsupportedMediaType => ("malformed", 415),
            AcmeError::ExternalAccountRequired => ("externalAccountRequired", 400),
            AcmeError::Conflict(_) => ("malformed", 409),
            AcmeError::RateLimited(_) => ("rateLimited", 429),
            AcmeError::Ca(CaError::NameConstraints(_)) => ("rejectedIdentifier", 400),
            AcmeError::Store(e) if e.is_input() => ("malformed", 400),
            AcmeError::Store(_) | AcmeError::Ca(_) | AcmeError::Join(_) | AcmeError::Hsm(_) => {
                ("serverInternal", 500)
            }
        }
    }

    /// The problem document (RFC 7807), without internal details.
    pub(crate) fn problem(&self) -> Value {
        let (kind, status) = self.kind();
        let detail = if status == 500 {
            "internal error; see the server log".into()
        } else {
            self.to_string()
        };
        let mut doc = problem(kind, &detail);
        doc["status"] = status.into();
        if let AcmeError::BadSignatureAlgorithm(_) = self {
            doc["algorithms"] = json!(["ES256", "ES384", "RS256", "EdDSA"]);
        }
        doc
    }
}

/// A problem document of ACME error type `kind`.
pub(crate) fn problem(kind: &str, detail: &str) -> Value {
    json!({ "type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail })
}

/// Where validation connects (`[acme]` settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AcmeSettings {
    pub(crate) http01_port: u16,
    pub(crate) tls_alpn01_port: u16,
    /// The DNS server for validation; `None` means the system's.
    pub(crate) dns_resolver: Option<std::net::SocketAddr>,
    /// Validity of issued certificates, in seconds.
    pub(crate) validity: i64,
    /// How long an order, with its authorizations and challenges, is kept once it and
    /// its certificate have expired, in seconds.
    pub(crate) order_retention: i64,
    /// Most orders an account may have pending or ready at once.
    pub(crate) max_open_orders: i64,
    /// New accounts must be bound to an external account key made with the admin API.
    pub(crate) eab_required: bool,
    /// Identifiers authorized by policy, without a challenge (internal services).
    pub(crate) preauthorized: Vec<Preauthorized>,
    /// Certificate profiles orders choose from (`meta.profiles`), in name order; never
    /// empty: without `[acme.profiles.*]` there is one, `default`, from `validity`.
    pub(crate) profiles: Vec<Profile>,
    /// The profile of orders that name none.
    pub(crate) default_profile: String,
}

/// A certificate profile (`[acme.profiles.NAME]`, draft-aaron-acme-profiles): what a
/// certificate ordered under it is like, and which identifiers it may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) description: String,
    /// Validity of its certificates, in seconds.
    pub(crate) validity: i64,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    /// Identifiers it may name (the `preauthorized` rule forms); empty: any. With
    /// `excluded_identifiers`, the profile's name constraints (RFC 5280 §4.2.1.10 permitted
    /// and excluded subtrees, applied to orders).
    pub(crate) identifiers: Vec<Preauthorized>,
    /// Identifiers it may never name, whatever `identifiers` permits.
    pub(crate) excluded_identifiers: Vec<Preauthorized>,
    /// Whether its certificates name where to check revocation (CRL distribution point,
    /// OCSP) when `[ca] url` is set; very short-lived certificates may go without.
    pub(crate) revocation_pointers: bool,
    /// Whether its certificates are recorded (inventory, revocation, CRLs, OCSP). `false`
    /// is the no-store mode for very high volumes of short-lived certificates: the order
    /// keeps the certificate for download only.
    pub(crate) store: bool,
    /// Key types a CSR may carry (`p256`, `p384`, `rsa2048`, ... as
    /// [`crate::der::KeyKind::name`]); empty: any the CA can certify.
    pub(crate) key_types: Vec<String>,
}

impl Profile {
    /// The profile used when none is configured: `validity`, serverAuth and clientAuth.
    pub(crate) fn builtin(validity: i64) -> Profile {
        Profile {
            name: "default".into(),
            description: "TLS server and client (mTLS) certificates".into(),
            validity,
            server_auth: true,
            client_auth: true,
            identifiers: Vec::new(),
            excluded_identifiers: Vec::new(),
            revocation_pointers: true,
            store: true,
            key_types: Vec::new(),
        }
    }

    /// Whether an order under this profile may name `identifier`: excluded never,
    /// otherwise when permitted (or nothing is listed as permitted).
    pub(crate) fn allows(&self, identifier: &Identifier) -> bool {
        !self.excluded_identifiers.iter().any(|p| p.excludes(identifier))
            && (self.identifiers.is_empty()
                || self.identifiers.iter().any(|p| p.matches(identifier)))
    }
}

impl AcmeSettings {
    /// The profile named `name`, or the default one for `None`.
    pub(crate) fn profile(&self, name: Option<&str>) -> Option<&Profile> {
        let name = name.unwrap_or(&self.default_profile);
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// A pre-authorization rule (`[acme] preauthorized`): a DNS name, `*.SUFFIX` for every
/// name under SUFFIX (wildcards included), or an IP network in CIDR form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Preauthorized {
    Name(String),
    Under(String),
    Network(IpAddr, u8),
}

impl Preauthorized {
    /// Parses one rule; `None` if it is none of the three forms.
    pub(crate) fn parse(rule: &str) -> Option<Preauthorized> {
        let rule = rule.trim().to_ascii_lowercase();
        if let Some((ip, bits)) = rule.split_once('/') {
            let ip: IpAddr = ip.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(Preauthorized::Network(ip, bits));
        }
        if let Ok(ip) = rule.parse::<IpAddr>() {
            return Some(Preauthorized::Network(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        let check = |name: &str| {
            Identifier { kind: "dns".into(), value: name.to_owned() }
                .checked()
                .ok()
                .map(|i| i.value)
        };
        match rule.strip_prefix("*.") {
            Some(suffix) => check(suffix).map(Preauthorized::Under),
            None => check(&rule).map(Preauthorized::Name),
        }
    }

    /// As an exclusion: whether any name `id` stands for matches. A wildcard `*.BASE`
    /// stands for every name one label under BASE, so the rules `x.BASE` and `*.BASE`
    /// exclude it.
    fn excludes(&self, id: &Identifier) -> bool {
        let base = id.value.strip_prefix("*.").filter(|_| id.kind == "dns");
        let overlaps = match (self, base) {
            (Preauthorized::Name(n), Some(base)) => {
                n.split_once('.').is_some_and(|(_, parent)| parent == base)
            }
            (Preauthorized::Under(suffix), Some(base)) => suffix == base,
            _ => false,
        };
        overlaps || self.matches(id)
    }

    /// As a permission: whether every name `id` stands for matches.
    fn matches(&self, id: &Identifier) -> bool {
        match (self, id.kind.as_str()) {
            (Preauthorized::Name(n), "dns") => &id.value == n,
            (Preauthorized::Under(suffix), "dns") => {
                let name = id.value.trim_start_matches("*.");
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            (Preauthorized::Network(net, bits), "ip") => {
                let Ok(ip) = id.value.parse::<IpAddr>() else { return false };
                let (a, b) = match (net, ip) {
                    (IpAddr::V4(n), IpAddr::V4(i)) => {
                        (u128::from(u32::from(*n)) << 96, u128::from(u32::from(i)) << 96)
                    }
                    (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(*n), u128::from(i)),
                    _ => return false,
                };
                let mask = if *bits == 0 { 0 } else { u128::MAX << (128 - u32::from(*bits)) };
                a & mask == b & mask
            }
            _ => false,
        }
    }
}

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings {
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolver: None,
            validity: 86_400,
            order_retention: 30 * 86_400,
            max_open_orders: 300,
            eab_required: false,
            preauthorized: Vec::new(),
            profiles: vec![Profile::builtin(86_400)],
            default_profile: "default".into(),
        }
    }
}

/// Nonces handed out and not used yet (RFC 8555 §6.5). In memory for a store one process
/// serves (a restart invalidates them, and clients retry with a fresh one on badNonce as
/// the RFC requires); in the store when replicas share it, so any replica accepts a nonce
/// another issued, once. A replica records them [`NONCE_STOCK`] at a time and hands them
/// out from memory: one write per that many answers instead of one per answer.
enum Nonces {
    Memory(Mutex<HashMap<String, Instant>>),
    Shared { store: Store, stock: Mutex<Stock> },
}

/// Nonces a replica has recorded in the store and not handed out yet.
#[derive(Default)]
struct Stock {
    nonces: Vec<String>,
    /// When they were recorded (they expire [`NONCE_LIFETIME`] after).
    at: Option<Instant>,
}

/// Nonces a replica records at once.
const NONCE_STOCK: usize = 64;

/// The ACME service state shared by the handlers.
#[derive(Clone)]
pub(crate) struct Acme {
    pub(crate) settings: AcmeSettings,
    nonces: Arc<Nonces>,
    pub(crate) resolver: dns::Resolver,
    /// Orders this process is finalizing. With a store only this process serves, this is
    /// what keeps a second finalize of the same order out (where replicas use the order's
    /// stored `processing` status), which saves a disk flush per issuance.
    finalizing: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Accounts read to authenticate requests, by id, when one process serves the store
    /// (`None` with replicas, where another may deactivate or re-key an account). This
    /// process is then the only writer of accounts and forgets one whenever it changes it.
    accounts: Option<Arc<Mutex<AccountCache>>>,
    /// With replicas: each account as this replica last read it, by id. Only a hint,
    /// since another replica may change it: a write made on its strength checks, in its
    /// own statement, that the account is still as read (see `store::NonceGuard`).
    hints: Option<Arc<Mutex<HashMap<String, crate::store::AccountRow>>>>,
    /// Validations that may run at once; more wait their turn, so that a flood of
    /// challenges cannot make this server open connections without bound.
    validations: Arc<tokio::sync::Semaphore>,
}

/// Challenge validations under way at once, at most.
const MAX_VALIDATIONS: usize = 64;

/// Most accounts kept in [`Acme::account`]'s cache; past that it starts again.
const MAX_CACHED_ACCOUNTS: usize = 10_000;

/// Cached accounts and a count of changes, so that a read racing a change is not cached.
#[derive(Default)]
struct AccountCache {
    changes: u64,
    accounts: HashMap<String, crate::store::AccountRow>,
}

/// Keeps `account` in `accounts`, starting again past [`MAX_CACHED_ACCOUNTS`].
fn remember(
    accounts: &mut HashMap<String, crate::store::AccountRow>,
    account: &crate::store::AccountRow,
) {
    if accounts.len() >= MAX_CACHED_ACCOUNTS {
        accounts.clear();
    }
    accounts.insert(account.id.clone(), account.clone());
}

/// An order claimed for finalizing ([`Acme::claim_finalize`]), released when dropped.
pub(crate) struct FinalizeClaim {
    orders: Arc<Mutex<std::collections::HashSet<String>>>,
    id: String,
}

impl Drop for FinalizeClaim {
    fn drop(&mut self) {
        if let Ok(mut orders) = self.orders.lock() {
            orders.remove(&self.id);
        }
    }
}

impl Acme {
    /// With `shared_nonces`, nonces live in that store (see [`Nonces`]).
    pub(crate) fn new(settings: AcmeSettings, shared_nonces: Option<Store>) -> Acme {
        let resolver = dns::Resolver::new(settings.dns_resolver);
        let nonces = match shared_nonces {
            Some(store) => Nonces::Shared { store, stock: Mutex::default() },
            None => Nonces::Memory(Mutex::default()),
        };
        let accounts = matches!(nonces, Nonces::Memory(_)).then(Arc::default);
        let hints = matches!(nonces, Nonces::Shared { .. }).then(Arc::default);
        let nonces = Arc::new(nonces);
        let validations = Arc::new(tokio::sync::Semaphore::new(MAX_VALIDATIONS));
        Acme {
            settings,
            nonces,
            resolver,
            finalizing: Arc::default(),
            accounts,
            hints,
            validations,
        }
    }

    /// The account `id`, to authenticate a request: from memory when this process alone
    /// serves the store, else from the store.
    pub(crate) async fn account(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<crate::store::AccountRow>, StoreError> {
        let Some(cache) = &self.accounts else { return store.acme_account(id).await };
        let cached = cache.lock().ok().map(|c| (c.accounts.get(id).cloned(), c.changes));
        let changes = match cached {
            Some((Some(account), _)) => return Ok(Some(account)),
            Some((None, changes)) => changes,
            None => return store.acme_account(id).await,
        };
        let account = store.acme_account(id).await?;
        if let (Some(a), Ok(mut c)) = (&account, cache.lock()) {
            // An account changed since the read started may be stale: not kept.
            if c.changes == changes {
                remember(&mut c.accounts, a);
            }
        }
        Ok(account)
    }

    /// Forgets the cached account `id`, after the store's copy changed (or, on a replica,
    /// may have).
    pub(crate) fn forget_account(&self, id: &str) {
        if let Some(Ok(mut c)) = self.accounts.as_ref().map(|c| c.lock()) {
            c.changes += 1;
            c.accounts.remove(id);
        }
        if let Some(Ok(mut hints)) = self.hints.as_ref().map(|h| h.lock()) {
            hints.remove(id);
        }
    }

    /// Account `id` as this replica last read it (see [`Acme::hints`]); none elsewhere.
    pub(crate) fn account_hint(&self, id: &str) -> Option<crate::store::AccountRow> {
        self.hints.as_ref()?.lock().ok()?.get(id).cloned()
    }

    /// Claims order `id` for finalizing in this process; `None` when it is already being
    /// finalized here.
    pub(crate) fn claim_finalize(&self, id: &str) -> Option<FinalizeClaim> {
        let mut orders = self.finalizing.lock().ok()?;
        orders
            .insert(id.to_owned())
            .then(|| FinalizeClaim { orders: self.finalizing.clone(), id: id.to_owned() })
    }

    /// A fresh nonce.
    pub(crate) async fn nonce(&self) -> Result<String, StoreError> {
        let fresh = || jws::encode(&crate::util::random_bytes(16));
        let issued = match &*self.nonces {
            Nonces::Memory(issued) => issued,
            Nonces::Shared { store, stock } => {
                // A stock recorded more than half a lifetime ago is dropped (its nonces
                // expire in the store; the leader purges them).
                let taken = stock.lock().ok().and_then(|mut s| {
                    let young = s.at.is_some_and(|at| at.elapsed() < NONCE_LIFETIME / 2);
                    if young {
                        s.nonces.pop()
                    } else {
                        None
                    }
                });
                if let Some(nonce) = taken {
                    return Ok(nonce);
                }
                let mut recorded: Vec<String> = (0..NONCE_STOCK).map(|_| fresh()).collect();
                let expires = crate::util::now() + NONCE_LIFETIME.as_secs() as i64;
                store.insert_acme_nonces(&recorded, expires).await?;
                let nonce = recorded.swap_remove(0); // NONCE_STOCK is not 0
                if let Ok(mut s) = stock.lock() {
                    *s = Stock { nonces: recorded, at: Some(Instant::now()) };
                }
                return Ok(nonce);
            }
        };
        let nonce = fresh();
        #[allow(clippy::unwrap_used)] // a poisoned lock means a panic elsewhere already
        let mut issued = issued.lock().unwrap();
        if issued.len() >= MAX_NONCES {
            let now = Instant::now();
            issued.retain(|_, at| now.duration_since(*at) < NONCE_LIFETIME);
            if issued.len() >= MAX_NONCES {
                // Still full: the oldest half goes (their holders get badNonce and retry).
                let mut ages: Vec<Instant> = issued.values().copied().collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                issued.retain(|_, at| *at > cut);
            }
        }
        issued.insert(nonce.clone(), Instant::now());
        Ok(nonce)
    }

    /// Uses up a nonce; false if it was never issued, already used or expired.
    pub(crate) async fn consume(&self, nonce: &str) -> Result<bool, StoreError> {
        match &*self.nonces {
            Nonces::Memory(issued) => {
                #[allow(clippy::unwrap_used)]
                let mut issued = issued.lock().unwrap();
                Ok(issued.remove(nonce).is_some_and(|at| at.elapsed() < NONCE_LIFETIME))
            }
            Nonces::Shared { store, .. } => {
                store.consume_acme_nonce(nonce, crate::util::now()).await
            }
        }
    }

    /// Consumes `nonce` and reads account `id` (a `kid`-signed request): in one store round
    /// trip on replicas, where neither is kept in memory, and there with what `also` names
    /// (elsewhere the caches hold it, and nothing is read for it here). Whether the nonce
    /// was good (the account is not read when it was not, here), the account, and what
    /// `also` found.
    pub(crate) async fn consume_reading_account(
        &self,
        store: &Store,
        nonce: &str,
        id: &str,
        also: Prefetch<'_>,
    ) -> Result<(bool, Option<crate::store::AccountRow>, Option<Prefetched>), StoreError> {
        if let Nonces::Shared { store: shared, .. } = &*self.nonces {
            let now = crate::util::now();
            let read = shared.consume_acme_nonce_reading_account(nonce, now, id, also).await?;
            if let Some(Ok(mut hints)) = self.hints.as_ref().map(|h| h.lock()) {
                match &read.1 {
                    Some(account) => remember(&mut hints, account),
                    None => {
                        hints.remove(id);
                    }
                }
            }
            return Ok(read);
        }
        if !self.consume(nonce).await? {
            return Ok((false, None, None));
        }
        Ok((true, self.account(store, id).await?, None))
    }

    /// Forgets expired shared nonces (background work of the leading replica).
    pub(crate) async fn purge_nonces(&self) -> Result<(), StoreError> {
        if let Nonces::Shared { store, .. } = &*self.nonces {
            store.purge_acme_nonces(crate::util::now()).await?;
        }
        Ok(())
    }

    /// Deletes orders, with their authorizations and challenges, once they and their
    /// certificates have been expired for `[acme] order_retention` (background work of the
    /// leading replica, every minute): a thousand per transaction, at most ten
    /// transactions a time, so that a backlog (the first run after an upgrade) does not
    /// hold up the other background work. How many went.
    pub(crate) async fn purge_orders(&self, store: &Store) -> Result<usize, StoreError> {
        const PER_TRANSACTION: i64 = 1000;
        let cutoff = crate::util::now() - self.settings.order_retention;
        let mut purged = 0;
        for _ in 0..10 {
            let n = store.purge_acme_orders(cutoff, PER_TRANSACTION).await?;
            purged += n;
            if (n as i64) < PER_TRANSACTION {
                break;
            }
        }
        Ok(purged)
    }

    /// Whether policy authorizes `identifier` without a challenge.
    pub(crate) fn preauthorized(&self, identifier: &Identifier) -> bool {
        self.settings.preauthorized.iter().any(|p| p.matches(identifier))
    }

    /// Checks challenge `token` for `identifier` with `kind`; `Err` is the problem document.
    pub(crate) async fn validate(
        &self,
        kind: &str,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Value> {
        // The semaphore is never closed.
        let _turn = self.validations.acquire().await.ok();
        let run = async {
            match kind {
                "http-01" => validate::http01(self, identifier, token, key_authorization).await,
                "dns-01" => validate::dns01(self, identifier, key_authorization).await,
                "tls-alpn-01" => tls_alpn::validate(self, identifier, key_authorization).await,
                other => Err(problem("malformed", &format!("unsupported challenge type {other}"))),
            }
        };
        tokio::time::timeout(VALIDATION_DEADLINE, run).await.unwrap_or_else(|_| {
            let secs = VALIDATION_DEADLINE.as_secs();
            Err(problem("connection", &format!("validation took longer than {secs} s")))
        })
    }
}

/// An order's identifier (RFC 8555 §7.1.3, RFC 8738 for IP addresses).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Identifier {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) value: String,
}

/// Whether a name's last label is a number, decimal or `0x` hex (the WHATWG URL
/// standard's "ends in a number"): no top-level domain (RFC 1123 §2.1), but what a system
/// resolver reads as an IPv4 address (`127.1`, `2130706433`, `0x7f000001`).
fn ends_in_a_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or_default();
    match last.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
    }
}

impl Identifier {
    /// Checks and normalises an identifier from a request: DNS names in lower case without a
    /// trailing dot (wildcards need dns-01), IP addresses in canonical form.
    pub(crate) fn checked(self) -> Result<Identifier, AcmeError> {
        match self.kind.as_str() {
            "dns" => {
                let v = self.value.trim_end_matches('.').to_ascii_lowercase();
                let body = v.strip_prefix("*.").unwrap_or(&v);
                let ok = !body.is_empty()
                    && v.len() <= 253
                    && body.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                    && body.parse::<IpAddr>().is_err()
                    && !ends_in_a_number(body);
                if !ok {
                    return Err(AcmeError::RejectedIdentifier(format!(
                        "{:?} is not a valid DNS name",
                        self.value
                    )));
                }
                Ok(Identifier { kind: "dns".into(), value: v })
            }
            "ip" => {
                let ip: IpAddr = self.value.parse().map_err(|_| {
                    AcmeError::RejectedIdentifier(format!("{:?} is not an IP address", self.value))
                })?;
                // Another spelling of an IPv4 address, which rules on IPv4 ranges would miss.
                if ip.to_canonical() != ip {
                    return Err(AcmeError::RejectedIdentifier(format!(
                        "{ip} is an IPv4-mapped address; name the IPv4 address {}",
                        ip.to_canonical()
                    )));
                }
                Ok(Identifier { kind: "ip".into(), value: ip.to_string() })
            }
            other => Err(AcmeError::UnsupportedIdentifier(format!(
                "identifier type {other:?} is not supported (dns and ip are)"
            ))),
        }
    }

    pub(crate) fn is_wildcard(&self) -> bool {
        self.kind == "dns" && self.value.starts_with("*.")
    }

    /// The challenge types that can prove this identifier.
    pub(crate) fn challenge_types(&self) -> &'static [&'static str] {
        if self.is_wildcard() {
            &["dns-01"]
        } else if self.kind == "ip" {
            &["http-01", "tls-alpn-01"]
        } else {
            &["http-01", "dns-01", "tls-alpn-01"]
        }
    }
}

/// The associated data sealing EAB key `id`.
pub(crate) fn eab_aad(id: &str) -> String {
    format!("acme-eab/{id}")
}

/// The key authorization of a challenge token (RFC 8555 §8.1).
pub(crate) fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> Result<Identifier, AcmeError> {
        Identifier { kind: kind.into(), value: value.into() }.checked()
    }

    #[test]
    fn identifiers_are_checked_and_normalised() {
        assert_eq!(id("dns", "Svc.Example.").unwrap().value, "svc.example");
        assert!(id("dns", "*.svc.example").unwrap().is_wildcard());
        assert_eq!(id("ip", "::0001").unwrap().value, "::1");
        for bad in ["", "a..b", "-a.b", "a_b.c", "10.0.0.1", "*.", &"a".repeat(64), "127.1"] {
            assert!(matches!(id("dns", bad), Err(AcmeError::RejectedIdentifier(_))), "{bad:?}");
        }
        for bad in ["2130706433", "0x7f.1", "a.b.3", "0x7f000001", "0x7f.0x0.0x0.0x1", "a.0x"] {
            assert!(matches!(id("dns", bad), Err(AcmeError::RejectedIdentifier(_))), "{bad:?}");
        }
        assert!(id("dns", "a3.b4").is_ok());
        assert!(id("dns", "a.0xg").is_ok(), "not hex");
        assert!(matches!(id("ip", "::ffff:10.0.0.1"), Err(AcmeError::RejectedIdentifier(_))));
        assert!(matches!(id("email", "a@b"), Err(AcmeError::UnsupportedIdentifier(_))));
    }

    #[test]
    fn preauthorization_rules() {
        let rules: Vec<Preauthorized> = ["*.svc.internal", "db.example", "10.1.0.0/16", "::1"]
            .iter()
            .map(|r| Preauthorized::parse(r).unwrap())
            .collect();
        let acme =
            Acme::new(AcmeSettings { preauthorized: rules, ..AcmeSettings::default() }, None);
        for (kind, value, want) in [
            ("dns", "a.svc.internal", true),
            ("dns", "*.b.svc.internal", true),
            ("dns", "svc.internal", false),
            ("dns", "evilsvc.internal", false),
            ("dns", "db.example", true),
            ("dns", "x.db.example", false),
            ("ip", "10.1.200.3", true),
            ("ip", "10.2.0.1", false),
            ("ip", "::1", true),
            ("ip", "::2", false),
        ] {
            let id = Identifier { kind: kind.into(), value: value.into() };
            assert_eq!(acme.preauthorized(&id), want, "{value}");
        }
        for bad in ["", "10.0.0.0/33", "a..b", "*."] {
            assert!(Preauthorized::parse(bad).is_none(), "{bad:?}");
        }
    }

    /// A wildcard stands for the names one label under its base: excluding any of them
    /// excludes it.
    #[test]
    fn exclusions_cover_the_names_a_wildcard_stands_for() {
        let rules = ["secret.example", "*.admin.example"].map(|r| Preauthorized::parse(r).unwrap());
        let profile = Profile { excluded_identifiers: rules.to_vec(), ..Profile::builtin(60) };
        for (value, allowed) in [
            ("*.example", false),
            ("secret.example", false),
            ("*.admin.example", false),
            ("*.x.admin.example", false),
            ("x.admin.example", false),
            ("admin.example", true),
            ("*.other.example", true),
            ("*.secret.example", true),
        ] {
            let id = Identifier { kind: "dns".into(), value: value.into() };
            assert_eq!(profile.allows(&id), allowed, "{value}");
        }
    }

    #[tokio::test]
    async fn nonces_are_single_use() {
        let acme = Acme::new(AcmeSettings::default(), None);
        let n = acme.nonce().await.unwrap();
        assert!(acme.consume(&n).await.unwrap());
        assert!(!acme.consume(&n).await.unwrap());
        assert!(!acme.consume("never-issued").await.unwrap());
    }

    #[test]
    fn problems_carry_acme_types() {
        let p = AcmeError::BadNonce.problem();
        assert_eq!(p["type"], "urn:ietf:params:acme:error:badNonce");
        assert_eq!(p["status"], 400);
        let p = AcmeError::Store(StoreError::Conflict("x".into())).problem();
        assert_eq!(p["detail"], "internal error; see the server log");
    }
}
