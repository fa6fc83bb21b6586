//! Symmetric operations with client key material, and keyless ones: AES encryption, HMAC,
//! AES key wrapping of one key by another, digests and the random number generator. Client
//! keys enter the HSM as short-lived session objects for one operation.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::{Hash, Hsm, HsmError, HsmSession};

/// What [`Hsm::hmac`] produced.
pub(crate) enum MacOutcome {
    Mac(Vec<u8>),
    Verified(bool),
}

/// What [`Hsm::derive`] computes with a derivation key (KMIP 1.4 §4.6 methods).
pub(crate) enum Derivation {
    Pbkdf2 {
        hash: Hash,
        salt: Vec<u8>,
        iterations: u32,
    },
    /// The digest of the Derivation Data, or of the key when there is none.
    Digest {
        hash: Hash,
        data: Option<Vec<u8>>,
    },
    Hmac {
        hash: Hash,
        data: Vec<u8>,
    },
    /// RFC 5869: extract with the salt (zeros when empty), expand with `info`.
    Hkdf {
        hash: Hash,
        salt: Vec<u8>,
        info: Vec<u8>,
    },
    Encrypt {
        mode: AesMode,
        data: Vec<u8>,
    },
    Sp800108 {
        prf: MacKind,
        mode: crate::kdf::Sp800108,
        data: Vec<u8>,
    },
}

/// The MACs the HSM computes with client key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacKind {
    Hmac(Hash),
    /// AES-CMAC (NIST SP 800-38B, RFC 4493).
    Cmac,
}

/// AES modes of [`Hsm::aes_cipher`].
#[derive(Clone, Debug)]
pub(crate) enum AesMode {
    Ecb,
    Cbc {
        iv: [u8; 16],
        pad: bool,
    },
    /// Output (encrypt) and input (decrypt) are ciphertext followed by the tag.
    Gcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_bits: u64,
    },
}

impl Hsm {
    /// AES encryption or decryption with client key material: the key enters the HSM as a
    /// short-lived session object for this one operation.
    pub(crate) fn aes_cipher(
        &self,
        s: &HsmSession<'_>,
        key: &[u8],
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let handle = s.create_object(&aes_template(key))?;
        let result = aes_with(s, handle, mode, encrypt, data);
        let destroyed = s.destroy_object(handle);
        let out = result?;
        destroyed?;
        Ok(out)
    }

    /// [`Hsm::aes_cipher`] with a managed key, given sealed as stored for object `id`: the
    /// key is opened once and kept open in the HSM for the next operations
    /// (`key_cache.rs`).
    pub(crate) fn aes_cipher_sealed(
        &self,
        s: &HsmSession<'_>,
        sealed: &[u8],
        id: &[u8],
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let key = self.open_key(s, sealed, id)?;
        aes_with(s, key.handle, mode, encrypt, data)
    }

    /// The open copy of AES key `id` (given sealed), opening it first when there is none.
    pub(super) fn open_key(
        &self,
        s: &HsmSession<'_>,
        sealed: &[u8],
        id: &[u8],
    ) -> Result<std::sync::Arc<super::key_cache::OpenKey<ObjectHandle>>, HsmError> {
        let cache = &s.conn.open_keys;
        if let Some(key) = cache.lock().map_err(|_| HsmError::Poisoned)?.get(id, sealed) {
            return Ok(key);
        }
        let value = self.open_sealed(s, sealed, id)?;
        // Owned by the anchor session, so it outlives this pooled session.
        let anchor = s.conn.anchor.lock().map_err(|_| HsmError::Poisoned)?;
        let handle = anchor.create_object(&aes_template(&value))?;
        drop(anchor);
        let key = std::sync::Arc::new(super::key_cache::OpenKey { handle });
        let free = cache.lock().map_err(|_| HsmError::Poisoned)?.insert(id, sealed, key.clone());
        destroy_all(s, free);
        Ok(key)
    }

    /// Forgets the open copy of object `id`'s key (the object was destroyed).
    pub(crate) fn forget_open_key(&self, s: &HsmSession<'_>, id: &[u8]) -> Result<(), HsmError> {
        let free = s.conn.open_keys.lock().map_err(|_| HsmError::Poisoned)?.forget(id);
        destroy_all(s, free);
        Ok(())
    }

    /// HMAC or AES-CMAC with client key material (a short-lived session object): the MAC,
    /// or with `expected`, whether it verifies.
    pub(crate) fn mac(
        &self,
        s: &HsmSession<'_>,
        key: &[u8],
        kind: MacKind,
        data: &[u8],
        expected: Option<&[u8]>,
    ) -> Result<MacOutcome, HsmError> {
        with_mac_key(s, key, kind, |handle| {
            let mechanism = mac_mechanism(kind);
            match expected {
                None => Ok(MacOutcome::Mac(s.sign(&mechanism, handle, data)?)),
                Some(mac) => match s.verify(&mechanism, handle, data, mac) {
                    Ok(()) => Ok(MacOutcome::Verified(true)),
                    Err(cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::SignatureInvalid
                        | cryptoki::error::RvError::SignatureLenRange,
                        _,
                    )) => Ok(MacOutcome::Verified(false)),
                    Err(e) => Err(e.into()),
                },
            }
        })
    }

    /// Runs `f` with an HMAC keyed by `key` in the HSM, as a function from data to MAC: one
    /// session object serves every call a key derivation makes (PBKDF2 makes one per
    /// iteration).
    pub(crate) fn with_hmac<T>(
        &self,
        s: &HsmSession<'_>,
        key: &[u8],
        hash: Hash,
        f: impl FnOnce(&mut crate::kdf::Prf<'_, HsmError>) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        self.with_prf(s, key, MacKind::Hmac(hash), f)
    }

    /// [`Hsm::with_hmac`] for either MAC.
    fn with_prf<T>(
        &self,
        s: &HsmSession<'_>,
        key: &[u8],
        kind: MacKind,
        f: impl FnOnce(&mut crate::kdf::Prf<'_, HsmError>) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        with_mac_key(s, key, kind, |handle| {
            let mechanism = mac_mechanism(kind);
            f(&mut |data: &[u8]| Ok(s.sign(&mechanism, handle, data)?))
        })
    }

    /// Derives key material from `key` as `how` says, every use of the key inside the HSM:
    /// `len` bytes, or for the digest, HMAC and encryption methods, their whole output
    /// (which the caller checks is long enough).
    pub(crate) fn derive(
        &self,
        s: &HsmSession<'_>,
        how: &Derivation,
        key: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, HsmError> {
        use crate::kdf;
        match how {
            Derivation::Pbkdf2 { hash, salt, iterations } => {
                self.with_hmac(s, key, *hash, |prf| kdf::pbkdf2(prf, salt, *iterations, len))
            }
            Derivation::Digest { hash, data } => {
                self.digest(s, *hash, data.as_deref().unwrap_or(key))
            }
            Derivation::Hmac { hash, data } => self.with_hmac(s, key, *hash, |prf| prf(data)),
            Derivation::Hkdf { hash, salt, info } => {
                let salt = if salt.is_empty() { vec![0; hash.len()] } else { salt.clone() };
                let prk = self.with_hmac(s, &salt, *hash, |prf| prf(key))?;
                self.with_hmac(s, &prk, *hash, |prf| kdf::hkdf_expand(prf, info, len))
            }
            Derivation::Encrypt { mode, data } => self.aes_cipher(s, key, mode, true, data),
            Derivation::Sp800108 { prf, mode, data } => {
                self.with_prf(s, key, *prf, |prf| kdf::sp800_108(prf, mode, data, len))
            }
        }
    }

    /// Wraps `material` under the AES key `wrapping_key` with AES Key Wrap (RFC 3394; RFC 5649
    /// padding when the length is not a multiple of 8), both entering the HSM as short-lived
    /// session objects.
    pub(crate) fn aes_key_wrap(
        &self,
        s: &HsmSession<'_>,
        wrapping_key: &[u8],
        material: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let kek = aes_kek(s, wrapping_key, Attribute::Wrap(true))?;
        let target = s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(material.to_vec()),
            Attribute::Token(false),
            Attribute::Private(false),
            Attribute::Extractable(true),
        ]);
        let result = target.and_then(|target| {
            let mechanism = match material.len() % 8 {
                0 => Mechanism::AesKeyWrap,
                _ => Mechanism::AesKeyWrapPad,
            };
            let wrapped = s.wrap_key(&mechanism, kek, target);
            let _ = s.destroy_object(target);
            wrapped
        });
        let destroyed = s.destroy_object(kek);
        let wrapped = result?;
        destroyed?;
        Ok(wrapped)
    }

    /// Unwraps `wrapped` with the AES key `wrapping_key` (AES Key Wrap, RFC 3394, or with
    /// padding, RFC 5649; `padded` `None`: whichever opens it), both keys short-lived
    /// session objects. A wrong key or changed bytes fail the integrity check.
    pub(crate) fn aes_key_unwrap(
        &self,
        s: &HsmSession<'_>,
        wrapping_key: &[u8],
        wrapped: &[u8],
        padded: Option<bool>,
    ) -> Result<Vec<u8>, HsmError> {
        let kek = aes_kek(s, wrapping_key, Attribute::Unwrap(true))?;
        let template = super::readable_secret();
        let unwrap = |padded: bool| -> Result<Vec<u8>, HsmError> {
            let mechanism = if padded { Mechanism::AesKeyWrapPad } else { Mechanism::AesKeyWrap };
            let key = s.unwrap_key(&mechanism, kek, wrapped, &template)?;
            let value = super::value_of(s, key, AttributeType::Value);
            let _ = s.destroy_object(key);
            value
        };
        let result = match padded {
            Some(p) => unwrap(p),
            None => unwrap(false).or_else(|_| unwrap(true)),
        };
        let destroyed = s.destroy_object(kek);
        let plain = result?;
        destroyed?;
        Ok(plain)
    }

    /// The digest of `data`, computed by the HSM.
    pub(crate) fn digest(
        &self,
        s: &HsmSession<'_>,
        hash: Hash,
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        Ok(s.digest(&digest_mechanism(hash), data)?)
    }

    /// `n` bytes from the HSM's random number generator.
    pub(crate) fn random(&self, s: &HsmSession<'_>, n: u32) -> Result<Vec<u8>, HsmError> {
        Ok(s.generate_random_vec(n)?)
    }

    /// Mixes `seed` into the HSM's random number generator.
    pub(crate) fn seed_random(&self, s: &HsmSession<'_>, seed: &[u8]) -> Result<(), HsmError> {
        Ok(s.seed_random(seed)?)
    }
}

pub(super) fn mac_mechanism(kind: MacKind) -> Mechanism<'static> {
    match kind {
        MacKind::Hmac(Hash::Sha1) => Mechanism::Sha1Hmac,
        MacKind::Hmac(Hash::Sha256) => Mechanism::Sha256Hmac,
        MacKind::Hmac(Hash::Sha384) => Mechanism::Sha384Hmac,
        MacKind::Hmac(Hash::Sha512) => Mechanism::Sha512Hmac,
        MacKind::Cmac => Mechanism::AesCMac,
    }
}

/// Runs `f` with `key` as a short-lived session object for the MAC `kind` (a generic
/// secret for HMAC, an AES key for CMAC), destroyed afterwards whatever `f` returned.
/// SoftHSM refuses HMAC keys shorter than the hash; HMAC pads short keys with zeros to the
/// hash's block (RFC 2104 §2), so padding them to the hash's length first gives the same
/// MAC.
fn with_mac_key<T>(
    s: &Session,
    key: &[u8],
    kind: MacKind,
    f: impl FnOnce(ObjectHandle) -> Result<T, HsmError>,
) -> Result<T, HsmError> {
    let handle = s.create_object(&mac_key_template(key, kind))?;
    let result = f(handle);
    let destroyed = s.destroy_object(handle);
    let out = result?;
    destroyed?;
    Ok(out)
}

pub(super) fn digest_mechanism(hash: Hash) -> Mechanism<'static> {
    match hash {
        Hash::Sha1 => Mechanism::Sha1,
        Hash::Sha256 => Mechanism::Sha256,
        Hash::Sha384 => Mechanism::Sha384,
        Hash::Sha512 => Mechanism::Sha512,
    }
}

/// A session object of `key` for the MAC `kind` (see [`with_mac_key`]).
pub(super) fn mac_key_template(key: &[u8], kind: MacKind) -> [Attribute; 9] {
    let mut value = key.to_vec();
    let key_type = match kind {
        MacKind::Hmac(hash) => {
            if value.len() < hash.len() {
                value.resize(hash.len(), 0);
            }
            KeyType::GENERIC_SECRET
        }
        MacKind::Cmac => KeyType::AES,
    };
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Value(value),
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
    ]
}

/// A short-lived AES session object of `key` that may wrap or unwrap (`usage`).
fn aes_kek(s: &Session, key: &[u8], usage: Attribute) -> Result<ObjectHandle, HsmError> {
    Ok(s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(key.to_vec()),
        Attribute::Token(false),
        Attribute::Private(false),
        usage,
    ])?)
}

/// A sensitive AES session object for encryption and decryption with `key`.
fn aes_template(key: &[u8]) -> [Attribute; 9] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(key.to_vec()),
        Attribute::Token(false),
        // Not private: SoftHSM encrypts private objects' attributes in memory, which
        // doubles the cost of each use; session objects are the process's own anyway.
        Attribute::Private(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// One AES operation in `mode` with the key object `handle`.
fn aes_with(
    s: &HsmSession<'_>,
    handle: ObjectHandle,
    mode: &AesMode,
    encrypt: bool,
    data: &[u8],
) -> Result<Vec<u8>, HsmError> {
    with_mechanism(mode, |m| {
        Ok(if encrypt { s.encrypt(m, handle, data)? } else { s.decrypt(m, handle, data)? })
    })
}

/// Runs `f` with the PKCS#11 mechanism for `mode` (GCM's parameters borrow its IV).
pub(super) fn with_mechanism<T>(
    mode: &AesMode,
    f: impl FnOnce(&Mechanism<'_>) -> Result<T, HsmError>,
) -> Result<T, HsmError> {
    let mut iv = match mode {
        AesMode::Gcm { iv, .. } => iv.clone(),
        _ => Vec::new(),
    };
    let mechanism = match mode {
        AesMode::Ecb => Mechanism::AesEcb,
        AesMode::Cbc { iv, pad: false } => Mechanism::AesCbc(*iv),
        AesMode::Cbc { iv, pad: true } => Mechanism::AesCbcPad(*iv),
        AesMode::Gcm { aad, tag_bits, .. } => {
            Mechanism::AesGcm(GcmParams::new(&mut iv, aad, (*tag_bits).into())?)
        }
    };
    f(&mechanism)
}

/// Destroys key copies no caller holds any more, through the session that owns them. A
/// failure leaves an object behind until the connection ends, which is logged, not the
/// caller's error.
fn destroy_all(s: &HsmSession<'_>, handles: Vec<ObjectHandle>) {
    if handles.is_empty() {
        return;
    }
    let Ok(anchor) = s.conn.anchor.lock() else { return };
    for handle in handles {
        if let Err(e) = anchor.destroy_object(handle) {
            tracing::warn!(error = %e, "destroying an evicted key copy failed");
        }
    }
}
