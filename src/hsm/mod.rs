//! The PKCS#11 boundary: the only module of the service that imports `cryptoki`. It owns
//! one PKCS#11 context per process, a pool of logged-in sessions, the key-encryption key
//! that seals key material leaving the HSM (AES-GCM), and the operations built on them:
//! the CA and TLS signers (`signer.rs`), key pairs held in the HSM (`asymmetric.rs`), and
//! symmetric and keyless operations (`symmetric.rs`). Blocking PKCS#11 calls run on
//! tokio's blocking pool through [`Hsm::run`].

mod asymmetric;
mod error;
mod key_cache;
mod signer;
pub(crate) mod softhsm;
mod stream;
mod symmetric;

pub(crate) use asymmetric::{Hash, Message, PairSpec, RawKey, Scheme, SERVICE_ID_PREFIX};
pub(crate) use error::HsmError;
pub(crate) use signer::{Curve, HsmKey, HsmSigner, SigningKeyType};
pub(crate) use stream::{AfterDigest, Part};
pub(crate) use symmetric::{AesMode, Derivation, MacKind, MacOutcome};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::Digest as _;

/// Label of the AES-256 key-encryption key that seals all key material leaving the HSM.
pub(crate) const KEK_LABEL: &str = "strongroom-kek-1";

/// How to reach the token.
#[derive(Clone)]
pub(crate) struct HsmSettings {
    pub(crate) module: PathBuf,
    pub(crate) token_label: String,
    pub(crate) user_pin: String,
    /// SO PIN, present when Strongroom manages the token and may initialise it.
    pub(crate) so_pin: Option<String>,
    pub(crate) max_sessions: usize,
}

/// Without the PINs, which must never reach a log.
impl std::fmt::Debug for HsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSettings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// A session copy of a token key, and what it was copied from.
#[derive(Clone, Copy)]
struct KeyCopy {
    copy: ObjectHandle,
    /// The token object copied: another process (a replica replacing the key) may destroy
    /// it, which this process learns only by looking again.
    source: ObjectHandle,
    checked: Instant,
}

/// A handle on the HSM: cheap to clone, safe to share. It reconnects by itself: an error
/// that says the device, token or library state is gone takes the connection down, and the
/// next calls (at growing intervals, 100 ms to 10 s) finalize and re-initialise the library,
/// log in again and find the key-encryption key; meanwhile calls fail at once with
/// [`HsmError::Unavailable`].
#[derive(Clone)]
pub(crate) struct Hsm {
    inner: Arc<Shared>,
}

struct Shared {
    ctx: Pkcs11,
    settings: HsmSettings,
    /// The live connection, `None` while the HSM is down.
    conn: RwLock<Option<Arc<Conn>>>,
    recovery: Mutex<Recovery>,
    /// The module is SoftHSMv2 (whose randomness is OpenSSL's DRBG).
    softhsm: bool,
}

/// A PKCS#11 module's description of itself (CK_INFO).
#[derive(Clone, Debug)]
pub(crate) struct ModuleInfo {
    pub(crate) cryptoki_version: (u8, u8),
    pub(crate) manufacturer: String,
    pub(crate) description: String,
    pub(crate) library_version: (u8, u8),
}

/// One initialisation of the library: the logged-in sessions and the objects made in them.
/// Object handles are valid only within it.
struct Conn {
    generation: u64,
    up_since: Instant,
    slot: Slot,
    idle: Mutex<Vec<Session>>,
    kek: ObjectHandle,
    /// Owns the session objects (the KEK copy, key-pair copies); used only to make them.
    anchor: Mutex<Session>,
    /// Session copies of key-pair halves, by (CKA_ID, is private).
    key_copies: Mutex<HashMap<(Vec<u8>, bool), KeyCopy>>,
    /// Session copies of the private keys of the service's own key pairs (CA, TLS,
    /// audit), by label.
    own_keys: Mutex<HashMap<String, ObjectHandle>>,
    /// Sealed secret keys opened for operations and kept, by object identifier.
    open_keys: Mutex<key_cache::KeyCache<ObjectHandle>>,
    /// Multi-part operations in progress, each in a session of its own.
    streams: Mutex<stream::Streams>,
}

/// How reconnecting goes while the HSM is down.
struct Recovery {
    generation: u64,
    next_attempt: Instant,
    delay: Duration,
    last_error: String,
    /// Connections taken down whose sessions callers still hold: the library is not
    /// re-initialised under them.
    retired: Vec<Weak<Conn>>,
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// A connection up this long had recovered: its failure starts the backoff afresh.
const STABLE: Duration = Duration::from_secs(60);
/// Most input for a call [`Hsm::run_short`] may make on an async worker thread: SoftHSM
/// encrypts this much in tens of microseconds, the time the worker spends on one TLS record.
pub(crate) const SHORT_INPUT: usize = 16 * 1024;

/// A pooled, logged-in session together with the connection it belongs to: what every
/// operation of this module gets. It dereferences to the PKCS#11 session.
pub(crate) struct HsmSession<'a> {
    session: &'a Session,
    conn: &'a Conn,
}

impl std::ops::Deref for HsmSession<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        self.session
    }
}

/// The secret keys [`Hsm::generate_sealed_secret`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretKind {
    Aes {
        bits: usize,
    },
    Des3,
    /// Generic secret bytes, for HMAC keys.
    Generic {
        bytes: usize,
    },
}

/// Key material sealed by the key-encryption key (see [`Hsm::seal`]), and which KEK.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) kek_label: &'static str,
    pub(crate) bytes: Vec<u8>,
    /// SHA-256 of the plaintext, for the KMIP Digest attribute.
    pub(crate) digest: Vec<u8>,
}

/// Format version of sealed material.
const SEALED_V1: u8 = 1;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const GCM_TAG_BITS: u64 = 128;

impl Conn {
    /// Finds (or, on the first start of a managed SoftHSM token, initialises) the token,
    /// logs in, and finds the key-encryption key, generating it only on the first start.
    fn open(
        ctx: &Pkcs11,
        settings: &HsmSettings,
        generation: u64,
        first: bool,
    ) -> Result<Conn, HsmError> {
        let slot = match (find_token(ctx, &settings.token_label)?, &settings.so_pin) {
            (Some(slot), _) => slot,
            (None, Some(so_pin)) if first => init_token(ctx, settings, so_pin)?,
            (None, _) => return Err(HsmError::TokenNotFound(settings.token_label.clone())),
        };
        let anchor = ctx.open_rw_session(slot)?;
        login(&anchor, &AuthPin::from(settings.user_pin.clone()))?;
        let token_kek = match find_kek(&anchor)? {
            Some(kek) => kek,
            None if first => generate_kek(&anchor)?,
            // A token that comes back without its KEK is not the one whose keys we hold.
            None => return Err(HsmError::KeyNotFound),
        };
        // Work with a session copy of the KEK: SoftHSM checks a file-backed token object's
        // files on every use, which tripled the cost of each seal and open. The copy keeps
        // the original's protections (sensitive, not extractable) and lives as long as the
        // anchor session this connection keeps open.
        let kek = anchor.copy_object(token_kek, &[Attribute::Token(false)])?;
        Ok(Conn {
            generation,
            up_since: Instant::now(),
            slot,
            idle: Mutex::new(Vec::new()),
            kek,
            anchor: Mutex::new(anchor),
            key_copies: Mutex::new(HashMap::new()),
            own_keys: Mutex::new(HashMap::new()),
            open_keys: Mutex::new(key_cache::KeyCache::default()),
            streams: Mutex::new(stream::Streams::default()),
        })
    }
}

impl Hsm {
    /// Loads the module, finds (or, for a managed SoftHSM token, initialises) the token,
    /// logs in, and makes sure the key-encryption key exists.
    pub(crate) fn open(settings: &HsmSettings) -> Result<Hsm, HsmError> {
        let ctx = Pkcs11::new(&settings.module)
            .map_err(|source| HsmError::Load { module: settings.module.clone(), source })?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let conn = Conn::open(&ctx, settings, 0, true)?;
        let shared = Shared {
            ctx,
            settings: settings.clone(),
            conn: RwLock::new(Some(Arc::new(conn))),
            recovery: Mutex::new(Recovery {
                generation: 0,
                next_attempt: Instant::now(),
                delay: FIRST_RETRY,
                last_error: String::new(),
                retired: Vec::new(),
            }),
            softhsm: settings
                .module
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("softhsm")),
        };
        Ok(Hsm { inner: Arc::new(shared) })
    }

    /// Whether the module is SoftHSMv2: it generates keys from OpenSSL 3's default DRBG
    /// (CTR_DRBG over AES-256). Other modules' generators are theirs to describe.
    pub(crate) fn is_softhsm(&self) -> bool {
        self.inner.softhsm
    }

    /// What the PKCS#11 module says of itself (C_GetInfo): its Cryptoki version,
    /// manufacturer, description and library version.
    pub(crate) fn module_info(&self) -> Result<ModuleInfo, HsmError> {
        let info = self.inner.ctx.get_library_info()?;
        let version = |v: cryptoki::types::Version| (v.major(), v.minor());
        Ok(ModuleInfo {
            cryptoki_version: version(info.cryptoki_version()),
            manufacturer: info.manufacturer_id().to_owned(),
            description: info.library_description().to_owned(),
            library_version: version(info.library_version()),
        })
    }

    /// Whether the connection to the HSM is up (false between a failure and reconnecting).
    pub(crate) fn is_up(&self) -> bool {
        self.inner.conn.read().is_ok_and(|c| c.is_some())
    }

    /// Runs `f` with a pooled session on the calling thread (for synchronous callers such as
    /// rustls and rcgen signing). Sessions that failed are dropped rather than reused; an
    /// error that says the HSM itself is gone takes the connection down for reconnecting.
    pub(crate) fn with_session<T>(
        &self,
        f: impl FnOnce(&HsmSession<'_>) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let conn = self.connection()?;
        let pooled = conn.idle.lock().map_err(|_| HsmError::Poisoned)?.pop();
        let session = match pooled {
            Some(s) => s,
            None => {
                let opened = self.inner.ctx.open_rw_session(conn.slot).map_err(HsmError::from);
                let opened = opened.and_then(|s| {
                    login(&s, &AuthPin::from(self.inner.settings.user_pin.clone()))?;
                    Ok(s)
                });
                match opened {
                    Ok(s) => s,
                    Err(e) => return Err(self.failed(&conn, e)),
                }
            }
        };
        let result = f(&HsmSession { session: &session, conn: &conn });
        // Sessions that failed with the session or the device are dropped, not reused.
        let reusable =
            result.as_ref().err().is_none_or(|e| !e.is_session_broken() && !e.is_device_lost());
        if reusable {
            let mut idle = conn.idle.lock().map_err(|_| HsmError::Poisoned)?;
            if idle.len() < self.inner.settings.max_sessions.max(1) {
                idle.push(session);
            }
        }
        result.map_err(|e| self.failed(&conn, e))
    }

    /// Runs `f` with a pooled session on tokio's blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hsm, &HsmSession<'_>) -> Result<T, HsmError> + Send + 'static,
    ) -> Result<T, HsmError> {
        let hsm = self.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || hsm.with_session(|s| f(&hsm, s))).await?;
        crate::metrics::observe("hsm_call", started.elapsed());
        result
    }

    /// Runs `f`, a call of microseconds (a cipher, MAC or digest over at most
    /// [`SHORT_INPUT`] bytes, an ECDSA signature, generating a secret key, sealing or
    /// opening one), with a pooled session: on this thread when the module computes in
    /// this process (SoftHSM), where handing the call to the blocking pool and back (two
    /// thread wake-ups) costs more than the call itself; on the blocking pool like
    /// [`Hsm::run`] otherwise, as a device's or a network HSM's calls may wait.
    pub(crate) async fn run_short<T: Send + 'static>(
        &self,
        input_len: usize,
        f: impl FnOnce(&Hsm, &HsmSession<'_>) -> Result<T, HsmError> + Send + 'static,
    ) -> Result<T, HsmError> {
        if !self.inner.softhsm || input_len > SHORT_INPUT {
            return self.run(f).await;
        }
        let started = Instant::now();
        let result = self.with_session(|s| f(self, s));
        crate::metrics::observe("hsm_call", started.elapsed());
        result
    }

    /// Opens a secret sealed bound to `aad` (see [`Hsm::open_sealed`]), as a short call.
    pub(crate) async fn open_sealed_async(
        &self,
        sealed: Vec<u8>,
        aad: String,
    ) -> Result<Vec<u8>, HsmError> {
        self.run_short(sealed.len(), move |h, s| h.open_sealed(s, &sealed, aad.as_bytes())).await
    }

    /// Seals `material` bound to `aad` (see [`Hsm::seal`]), as a short call.
    pub(crate) async fn seal_async(
        &self,
        material: Vec<u8>,
        aad: String,
    ) -> Result<Sealed, HsmError> {
        self.run_short(material.len(), move |h, s| h.seal(s, &material, aad.as_bytes())).await
    }

    /// The live connection, reconnecting first when the HSM is down and the next attempt is
    /// due.
    fn connection(&self) -> Result<Arc<Conn>, HsmError> {
        if let Some(conn) = self.inner.conn.read().map_err(|_| HsmError::Poisoned)?.as_ref() {
            return Ok(conn.clone());
        }
        self.reconnect()
    }

    /// Passes `e` on, first taking `conn` down when `e` says the HSM itself is gone. The
    /// first reconnection is tried at once after a connection that had been up a while;
    /// one that failed soon after reconnecting waits out the growing delay, so a token
    /// that keeps failing is not re-initialised in a loop.
    fn failed(&self, conn: &Arc<Conn>, e: HsmError) -> HsmError {
        if !e.is_device_lost() {
            return e;
        }
        // Lock order: recovery, then the connection (as in `reconnect`).
        let Ok(mut rec) = self.inner.recovery.lock() else { return e };
        let Ok(mut current) = self.inner.conn.write() else { return e };
        if current.as_ref().is_some_and(|c| c.generation == conn.generation) {
            tracing::error!(error = %e, "HSM failure; reconnecting");
            rec.retired.push(Arc::downgrade(conn));
            // Their sessions die with the connection; closing them now lets it go sooner.
            if let Ok(mut streams) = conn.streams.lock() {
                streams.clear();
            }
            rec.last_error = e.to_string();
            if conn.up_since.elapsed() > STABLE {
                rec.delay = FIRST_RETRY;
                rec.next_attempt = Instant::now();
            } else {
                rec.next_attempt = Instant::now() + rec.delay;
                rec.delay = (rec.delay * 2).min(MAX_RETRY);
            }
            *current = None;
        }
        e
    }

    /// One reconnection attempt when due: finalizes the library once no caller holds a
    /// session of the old connection, initialises it again and opens a new connection.
    fn reconnect(&self) -> Result<Arc<Conn>, HsmError> {
        let mut rec = self.inner.recovery.lock().map_err(|_| HsmError::Poisoned)?;
        // Another caller may have reconnected while this one waited for the lock.
        if let Some(conn) = self.inner.conn.read().map_err(|_| HsmError::Poisoned)?.as_ref() {
            return Ok(conn.clone());
        }
        let unavailable = |rec: &Recovery| HsmError::Unavailable(rec.last_error.clone());
        if Instant::now() < rec.next_attempt {
            return Err(unavailable(&rec));
        }
        rec.retired.retain(|old| old.strong_count() > 0);
        if !rec.retired.is_empty() {
            rec.next_attempt = Instant::now() + FIRST_RETRY;
            return Err(unavailable(&rec));
        }
        rec.generation += 1;
        let generation = rec.generation;
        let ctx = &self.inner.ctx;
        let attempt = (|| {
            // Every session of the old connection is closed by now; finalizing fails only
            // when the library was not initialised, which re-initialising mends.
            let _ = ctx.clone().finalize();
            ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
            Conn::open(ctx, &self.inner.settings, generation, false)
        })();
        match attempt {
            Ok(conn) => {
                let conn = Arc::new(conn);
                *self.inner.conn.write().map_err(|_| HsmError::Poisoned)? = Some(conn.clone());
                tracing::warn!(generation, "HSM reconnected");
                Ok(conn)
            }
            Err(e) => {
                rec.last_error = e.to_string();
                rec.next_attempt = Instant::now() + rec.delay;
                tracing::warn!(error = %e, retry_in_ms = rec.delay.as_millis() as u64, "HSM reconnection failed");
                rec.delay = (rec.delay * 2).min(MAX_RETRY);
                Err(unavailable(&rec))
            }
        }
    }

    /// Generates a secret key with C_GenerateKey and returns it sealed under the KEK.
    /// `aad` binds the sealed bytes to the object they belong to.
    pub(crate) fn generate_sealed_secret(
        &self,
        s: &HsmSession<'_>,
        kind: SecretKind,
        aad: &[u8],
    ) -> Result<Sealed, HsmError> {
        let (mechanism, key_type, bytes) = match kind {
            SecretKind::Aes { bits } => (Mechanism::AesKeyGen, KeyType::AES, Some(bits / 8)),
            // Three 56-bit keys with their parity bits, 24 bytes.
            SecretKind::Des3 => (Mechanism::Des3KeyGen, KeyType::DES3, None),
            SecretKind::Generic { bytes } => {
                (Mechanism::GenericSecretKeyGen, KeyType::GENERIC_SECRET, Some(bytes))
            }
        };
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(false),
            // Not private: SoftHSM encrypts private objects' attributes in memory, which
            // doubles the cost; this session object lives only until it is sealed below.
            Attribute::Private(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        if let Some(bytes) = bytes {
            template.push(Attribute::ValueLen(bytes.try_into()?));
        }
        let key = s.generate_key(&mechanism, &template)?;
        let value = value_of(s, key, AttributeType::Value);
        let destroyed = s.destroy_object(key);
        let value = value?;
        destroyed?;
        self.seal(s, &value, aad)
    }

    /// Encrypts `material` under the KEK with AES-256-GCM inside the HSM (one C_Encrypt;
    /// SoftHSM offers GCM for encryption but not for C_WrapKey). The result is
    /// `version ‖ 96-bit IV ‖ ciphertext ‖ 128-bit tag`, and opens only with the same `aad`.
    pub(crate) fn seal(
        &self,
        s: &HsmSession<'_>,
        material: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, HsmError> {
        let mut iv = crate::util::random_bytes(GCM_IV_LEN);
        let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
        let ciphertext = s.encrypt(&Mechanism::AesGcm(params), s.conn.kek, material)?;
        let mut bytes = Vec::with_capacity(1 + GCM_IV_LEN + ciphertext.len());
        bytes.push(SEALED_V1);
        bytes.extend_from_slice(&iv);
        bytes.extend_from_slice(&ciphertext);
        let digest = sha2::Sha256::digest(material).to_vec();
        Ok(Sealed { kek_label: KEK_LABEL, bytes, digest })
    }

    /// Decrypts what [`Hsm::seal`] produced for the same `aad`; a changed byte or another
    /// object's `aad` fails the GCM tag check inside the HSM.
    pub(crate) fn open_sealed(
        &self,
        s: &HsmSession<'_>,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(HsmError::BadSealed);
        };
        if rest.len() < GCM_IV_LEN + GCM_TAG_LEN {
            return Err(HsmError::BadSealed);
        }
        let (iv, ciphertext) = rest.split_at(GCM_IV_LEN);
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
        Ok(s.decrypt(&Mechanism::AesGcm(params), s.conn.kek, ciphertext)?)
    }

    /// Finds the service's key pair labelled `label` (of whatever type), generating it as
    /// `kind` (non-extractable, on the token) when it does not exist yet.
    pub(crate) fn ensure_signing_key(
        &self,
        s: &HsmSession<'_>,
        label: &str,
        kind: SigningKeyType,
    ) -> Result<HsmKey, HsmError> {
        if let Some(key) = self.find_signing_key(s, label)? {
            return Ok(key);
        }
        debug_assert!(label.starts_with(SERVICE_ID_PREFIX), "a KMIP id could name it");
        let id = label.as_bytes().to_vec();
        let mut public_template = vec![
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let mechanism = match kind {
            SigningKeyType::Ec(curve) => {
                public_template.push(Attribute::EcParams(curve.params().to_vec()));
                Mechanism::EccKeyPairGen
            }
            SigningKeyType::Rsa { bits } => {
                public_template.push(Attribute::ModulusBits(u64::from(bits).into()));
                public_template.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        let (public, private) =
            s.generate_key_pair(&mechanism, &public_template, &private_template)?;
        own_key(s, label, private, public)
    }

    /// The service's key pair labelled `label`, if the token holds one.
    pub(crate) fn find_signing_key(
        &self,
        s: &HsmSession<'_>,
        label: &str,
    ) -> Result<Option<HsmKey>, HsmError> {
        let find = |class| {
            s.find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
        };
        match (find(ObjectClass::PRIVATE_KEY)?.first(), find(ObjectClass::PUBLIC_KEY)?.first()) {
            (Some(private), Some(public)) => own_key(s, label, *private, *public).map(Some),
            _ => Ok(None),
        }
    }

    /// Signs `input` with `key`'s private key: CKM_ECDSA over a digest (the raw r‖s comes
    /// back), or CKM_RSA_PKCS over a DigestInfo. The key is looked up by label and copied
    /// (see [`own_copy`]) once per connection.
    pub(crate) fn sign_own(
        &self,
        s: &HsmSession<'_>,
        key: &HsmKey,
        input: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let cached =
            s.conn.own_keys.lock().map_err(|_| HsmError::Poisoned)?.get(key.label()).copied();
        let private = match cached {
            Some(h) => h,
            None => {
                let template = [
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(key.label().as_bytes().to_vec()),
                ];
                let h = s.find_objects(&template)?.first().copied().ok_or(HsmError::KeyNotFound)?;
                own_copy(s, key.label(), h)?
            }
        };
        let mechanism = match key.kind() {
            SigningKeyType::Ec(_) => Mechanism::Ecdsa,
            SigningKeyType::Rsa { .. } => Mechanism::RsaPkcs,
        };
        Ok(s.sign(&mechanism, private, input)?)
    }
}

/// The template of a short-lived generic secret whose value the service reads once (an
/// unwrapped or agreed key, sealed under the KEK right after).
pub(super) fn readable_secret() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// One attribute's bytes (a key's value, modulus, exponent or EC point) of object `h`.
pub(super) fn value_of(
    s: &Session,
    h: ObjectHandle,
    t: AttributeType,
) -> Result<Vec<u8>, HsmError> {
    s.get_attributes(h, &[t])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::EcPoint(v)
            | Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or(HsmError::MissingAttribute("a key attribute"))
}

fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    for slot in ctx.get_slots_with_token()? {
        let info = ctx.get_token_info(slot)?;
        if info.token_initialized() && info.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Initialises the first free token with `label`, sets the user PIN, and returns the slot
/// the token now lives in (SoftHSM moves it to a new slot id).
fn init_token(ctx: &Pkcs11, settings: &HsmSettings, so_pin: &str) -> Result<Slot, HsmError> {
    let mut free = None;
    for slot in ctx.get_slots_with_token()? {
        if !ctx.get_token_info(slot)?.token_initialized() {
            free = Some(slot);
            break;
        }
    }
    let slot = free.ok_or(HsmError::NoFreeSlot)?;
    let so_pin = AuthPin::from(so_pin.to_owned());
    ctx.init_token(slot, &so_pin, &settings.token_label)?;
    let slot = find_token(ctx, &settings.token_label)?
        .ok_or_else(|| HsmError::TokenNotFound(settings.token_label.clone()))?;
    let session = ctx.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so_pin))?;
    session.init_pin(&AuthPin::from(settings.user_pin.clone()))?;
    session.logout()?;
    Ok(slot)
}

fn login(session: &Session, pin: &AuthPin) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) => Ok(()),
        // Login state is per application: a second session is already logged in.
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn find_kek(s: &Session) -> Result<Option<ObjectHandle>, HsmError> {
    let label = Attribute::Label(KEK_LABEL.as_bytes().to_vec());
    Ok(s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), label])?.first().copied())
}

fn generate_kek(s: &Session) -> Result<ObjectHandle, HsmError> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
    ];
    Ok(s.generate_key(&Mechanism::AesKeyGen, &template)?)
}

/// The [`HsmKey`] labelled `label`, with its public key read from `public`; the private
/// key's handle is kept for this connection.
fn own_key(
    s: &HsmSession<'_>,
    label: &str,
    private: ObjectHandle,
    public: ObjectHandle,
) -> Result<HsmKey, HsmError> {
    let kind = s
        .get_attributes(public, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(k) => Some(k),
            _ => None,
        })
        .ok_or(HsmError::MissingAttribute("CKA_KEY_TYPE"))?;
    let key = if kind == KeyType::RSA {
        let (mut modulus, mut exponent) = (None, None);
        for a in
            s.get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])?
        {
            match a {
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        let modulus = modulus.ok_or(HsmError::MissingAttribute("CKA_MODULUS"))?;
        let exponent = exponent.ok_or(HsmError::MissingAttribute("CKA_PUBLIC_EXPONENT"))?;
        HsmKey::rsa(label, &modulus, &exponent)
    } else {
        let point = s
            .get_attributes(public, &[AttributeType::EcPoint])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or(HsmError::MissingAttribute("CKA_EC_POINT"))?;
        HsmKey::ec(label, &point)?
    };
    own_copy(s, label, private)?;
    Ok(key)
}

/// Keeps a session copy of the service's own private key `token` for its signatures
/// (CA certificates, CRLs, OCSP answers, TLS handshakes), as [`Hsm::sign`] does for managed
/// keys: SoftHSM checks a token object's files at each use, an open and a read of two
/// files per signature. The copy keeps the original's protections, and lives as long as
/// this connection; the service never destroys its own keys, so it cannot outlive one.
fn own_copy(
    s: &HsmSession<'_>,
    label: &str,
    token: ObjectHandle,
) -> Result<ObjectHandle, HsmError> {
    // Looked up again each time a key is found by its label (the audit sealer's, every
    // minute): one copy is enough.
    if let Some(copy) = s.conn.own_keys.lock().map_err(|_| HsmError::Poisoned)?.get(label) {
        return Ok(*copy);
    }
    let anchor = s.conn.anchor.lock().map_err(|_| HsmError::Poisoned)?;
    let copy = anchor.copy_object(token, &[Attribute::Token(false)])?;
    drop(anchor);
    s.conn.own_keys.lock().map_err(|_| HsmError::Poisoned)?.insert(label.to_owned(), copy);
    Ok(copy)
}

/// The default PKCS#11 module: Debian's SoftHSMv2.
pub(crate) fn default_module() -> &'static Path {
    Path::new("/usr/lib/softhsm/libsofthsm2.so")
}
