//! The PKCS#11 boundary: the only module of the service that imports `cryptoki`. It owns
//! one PKCS#11 context per process, a pool of logged-in sessions, the key-encryption key
//! that seals key material leaving the HSM (AES-GCM), and the operations built on them:
//! the CA and TLS signers (`signer.rs`), key pairs held in the HSM (`asymmetric.rs`), and
//! symmetric and keyless operations (`symmetric.rs`). Blocking PKCS#11 calls run on
//! tokio's blocking pool through [`Hsm::run`].

mod asymmetric;
mod error;
mod signer;
pub(crate) mod softhsm;
mod symmetric;

pub(crate) use asymmetric::{Hash, Message, PairSpec, RawKey, Scheme};
pub(crate) use error::HsmError;
pub(crate) use signer::{Curve, EcKey, EcSigner};
pub(crate) use symmetric::{AesMode, Derivation, MacOutcome};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
#[derive(Clone, Debug)]
pub(crate) struct HsmSettings {
    pub(crate) module: PathBuf,
    pub(crate) token_label: String,
    pub(crate) user_pin: String,
    /// SO PIN, present when Strongroom manages the token and may initialise it.
    pub(crate) so_pin: Option<String>,
    pub(crate) max_sessions: usize,
}

/// A handle on the HSM: cheap to clone, safe to share.
#[derive(Clone)]
pub(crate) struct Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    idle: Mutex<Vec<Session>>,
    max_idle: usize,
    kek: ObjectHandle,
    /// Owns the session objects (the KEK copy, key-pair copies); used only to make them.
    anchor: Mutex<Session>,
    /// Session copies of key-pair halves, by (CKA_ID, is private).
    key_copies: Mutex<std::collections::HashMap<(Vec<u8>, bool), ObjectHandle>>,
    /// The module is SoftHSMv2 (whose randomness is OpenSSL's DRBG).
    softhsm: bool,
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

impl Hsm {
    /// Loads the module, finds (or, for a managed SoftHSM token, initialises) the token,
    /// logs in, and makes sure the key-encryption key exists.
    pub(crate) fn open(settings: &HsmSettings) -> Result<Hsm, HsmError> {
        let ctx = Pkcs11::new(&settings.module)
            .map_err(|source| HsmError::Load { module: settings.module.clone(), source })?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let slot = match find_token(&ctx, &settings.token_label)? {
            Some(slot) => slot,
            None => match &settings.so_pin {
                Some(so_pin) => init_token(&ctx, settings, so_pin)?,
                None => return Err(HsmError::TokenNotFound(settings.token_label.clone())),
            },
        };
        let pin = AuthPin::from(settings.user_pin.clone());
        let anchor = ctx.open_rw_session(slot)?;
        login(&anchor, &pin)?;
        let token_kek = ensure_kek(&anchor)?;
        // Work with a session copy of the KEK: SoftHSM checks a file-backed token object's
        // files on every use, which tripled the cost of each seal and open. The copy keeps
        // the original's protections (sensitive, not extractable) and lives as long as the
        // anchor session this process keeps open.
        let kek = anchor.copy_object(token_kek, &[Attribute::Token(false)])?;
        let inner = Inner {
            ctx,
            slot,
            pin,
            idle: Mutex::new(Vec::new()),
            max_idle: settings.max_sessions.max(1),
            kek,
            anchor: Mutex::new(anchor),
            key_copies: Mutex::new(std::collections::HashMap::new()),
            softhsm: settings
                .module
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("softhsm")),
        };
        Ok(Hsm { inner: Arc::new(inner) })
    }

    /// Whether the module is SoftHSMv2: it generates keys from OpenSSL 3's default DRBG
    /// (CTR_DRBG over AES-256). Other modules' generators are theirs to describe.
    pub(crate) fn is_softhsm(&self) -> bool {
        self.inner.softhsm
    }

    /// Runs `f` with a pooled session on the calling thread (for synchronous callers such as
    /// rustls and rcgen signing). Sessions that failed are dropped rather than reused.
    pub(crate) fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let pooled = self.inner.idle.lock().map_err(|_| HsmError::Poisoned)?.pop();
        let session = match pooled {
            Some(s) => s,
            None => {
                let s = self.inner.ctx.open_rw_session(self.inner.slot)?;
                login(&s, &self.inner.pin)?;
                s
            }
        };
        let result = f(&session);
        let reusable = match &result {
            Ok(_) => true,
            Err(e) => !e.is_session_broken(),
        };
        if reusable {
            let mut idle = self.inner.idle.lock().map_err(|_| HsmError::Poisoned)?;
            if idle.len() < self.inner.max_idle {
                idle.push(session);
            }
        }
        result
    }

    /// Runs `f` with a pooled session on tokio's blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hsm, &Session) -> Result<T, HsmError> + Send + 'static,
    ) -> Result<T, HsmError> {
        let hsm = self.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || hsm.with_session(|s| f(&hsm, s))).await?;
        crate::metrics::observe("hsm_call", started.elapsed());
        result
    }

    /// Generates an AES key of `bits` with C_GenerateKey and returns it sealed under the KEK.
    /// `aad` binds the sealed bytes to the object they belong to.
    pub(crate) fn generate_sealed_aes(
        &self,
        s: &Session,
        bits: usize,
        aad: &[u8],
    ) -> Result<Sealed, HsmError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen((bits / 8).try_into()?),
            Attribute::Token(false),
            // Not private: SoftHSM encrypts private objects' attributes in memory, which
            // doubles the cost; this session object lives only until it is sealed below.
            Attribute::Private(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let key = s.generate_key(&Mechanism::AesKeyGen, &template)?;
        let value = s.get_attributes(key, &[AttributeType::Value]);
        let destroyed = s.destroy_object(key);
        let value = value?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .ok_or(HsmError::MissingAttribute("CKA_VALUE"))?;
        destroyed?;
        self.seal(s, &value, aad)
    }

    /// Encrypts `material` under the KEK with AES-256-GCM inside the HSM (one C_Encrypt;
    /// SoftHSM offers GCM for encryption but not for C_WrapKey). The result is
    /// `version ‖ 96-bit IV ‖ ciphertext ‖ 128-bit tag`, and opens only with the same `aad`.
    pub(crate) fn seal(
        &self,
        s: &Session,
        material: &[u8],
        aad: &[u8],
    ) -> Result<Sealed, HsmError> {
        let mut iv = crate::util::random_bytes(GCM_IV_LEN);
        let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
        let ciphertext = s.encrypt(&Mechanism::AesGcm(params), self.inner.kek, material)?;
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
        s: &Session,
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
        Ok(s.decrypt(&Mechanism::AesGcm(params), self.inner.kek, ciphertext)?)
    }

    /// Finds the EC key pair labelled `label` (of whatever curve), generating it on `curve`
    /// (non-extractable, on the token) when it does not exist yet.
    pub(crate) fn ensure_ec_key(
        &self,
        s: &Session,
        label: &str,
        curve: Curve,
    ) -> Result<EcKey, HsmError> {
        if let Some(key) = self.find_ec_key(s, label)? {
            return Ok(key);
        }
        let id = label.as_bytes().to_vec();
        let public_template = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(curve.params().to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
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
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_template, &private_template)?;
        ec_key(s, private, public)
    }

    /// The EC key pair labelled `label`, if the token holds one.
    pub(crate) fn find_ec_key(&self, s: &Session, label: &str) -> Result<Option<EcKey>, HsmError> {
        let find = |class| {
            s.find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
        };
        match (find(ObjectClass::PRIVATE_KEY)?.first(), find(ObjectClass::PUBLIC_KEY)?.first()) {
            (Some(private), Some(public)) => ec_key(s, *private, *public).map(Some),
            _ => Ok(None),
        }
    }

    /// Signs a SHA-256 digest with CKM_ECDSA; returns the raw r‖s.
    pub(crate) fn sign_ecdsa_raw(
        &self,
        s: &Session,
        key: &EcKey,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        Ok(s.sign(&Mechanism::Ecdsa, key.private, digest)?)
    }
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

fn ensure_kek(s: &Session) -> Result<ObjectHandle, HsmError> {
    let label = Attribute::Label(KEK_LABEL.as_bytes().to_vec());
    if let Some(kek) =
        s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), label.clone()])?.first()
    {
        return Ok(*kek);
    }
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
        label,
    ];
    Ok(s.generate_key(&Mechanism::AesKeyGen, &template)?)
}

/// The default PKCS#11 module: Debian's SoftHSMv2.
/// An [`EcKey`] for a private key handle, with its public point read from `public`.
fn ec_key(s: &Session, private: ObjectHandle, public: ObjectHandle) -> Result<EcKey, HsmError> {
    let point = s
        .get_attributes(public, &[AttributeType::EcPoint])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or(HsmError::MissingAttribute("CKA_EC_POINT"))?;
    EcKey::new(private, &point)
}

pub(crate) fn default_module() -> &'static Path {
    Path::new("/usr/lib/softhsm/libsofthsm2.so")
}
