//! Key pairs that live in the HSM: generated as non-extractable token objects named by
//! CKA_ID, used for signing and verification there, destroyed there. Only public keys come
//! out (as PKCS#1 or SubjectPublicKeyInfo DER).

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sha2::Digest as _;

use std::time::Instant;

use super::{Hsm, HsmError, HsmSession};

/// Which key pair to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PairSpec {
    Rsa(u32),
    P256,
    P384,
}

/// The public half of a generated pair, in the encodings KMIP hands out.
pub(crate) struct PublicKeyDer {
    /// SubjectPublicKeyInfo (KMIP Key Format Type X.509).
    pub(crate) spki: Vec<u8>,
    /// PKCS#1 RSAPublicKey, for RSA keys.
    pub(crate) pkcs1: Option<Vec<u8>>,
}

/// Hash functions for signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    /// For verifying and making legacy signatures (KMIP clients still ask for them).
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                    .as_ref()
                    .to_vec()
            }
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub(crate) fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The DER DigestInfo prefix for PKCS#1 v1.5 signatures over a digest (RFC 8017 §9.2).
    pub(super) fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    /// PSS with MGF1 over the same hash and a salt as long as the hash (what we sign with).
    fn pss(self) -> PkcsPssParams {
        self.pss_salted(self.len())
    }

    fn pss_salted(self, salt: usize) -> PkcsPssParams {
        let (hash_alg, mgf) = match self {
            Hash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
            Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
            Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
            Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        };
        PkcsPssParams { hash_alg, mgf, s_len: (salt as u64).into() }
    }
}

/// Signature schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Ecdsa(Hash),
    RsaPkcs1(Hash),
    RsaPss(Hash),
}

impl Scheme {
    /// The hash the scheme signs with.
    pub(crate) fn hash(self) -> Hash {
        match self {
            Scheme::Ecdsa(h) | Scheme::RsaPkcs1(h) | Scheme::RsaPss(h) => h,
        }
    }
}

/// What is signed: the data, or its digest computed by the client.
#[derive(Clone, Copy)]
pub(crate) enum Message<'a> {
    Data(&'a [u8]),
    Digest(&'a [u8]),
}

/// How long a key-pair copy is used before its token object is looked up again.
const COPY_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What the CKA_ID of each key the service keeps for itself (CA, TLS, audit) starts with;
/// a KMIP object's CKA_ID is its Unique Identifier, which an Import chooses.
pub(crate) const SERVICE_ID_PREFIX: &str = "strongroom-";

/// `id` as a KMIP object's CKA_ID, refused when it could name one of the service's keys.
fn kmip_id(id: &[u8]) -> Result<&[u8], HsmError> {
    match id.starts_with(SERVICE_ID_PREFIX.as_bytes()) {
        true => Err(HsmError::ReservedId),
        false => Ok(id),
    }
}

impl Hsm {
    /// Generates a key pair on the token; both halves carry `private_id` / `public_id` as
    /// CKA_ID. The private key is sensitive and never extractable.
    pub(crate) fn generate_key_pair(
        &self,
        s: &HsmSession<'_>,
        spec: PairSpec,
        private_id: &[u8],
        public_id: &[u8],
    ) -> Result<PublicKeyDer, HsmError> {
        let (private_id, public_id) = (kmip_id(private_id)?, kmip_id(public_id)?);
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Id(public_id.to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(private_id.to_vec()),
        ];
        let mut private = private;
        let mechanism = match spec {
            PairSpec::Rsa(bits) => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                // RSA pairs may also encrypt (public) and decrypt (private); the KMIP usage
                // mask decides what clients may do.
                public.push(Attribute::Encrypt(true));
                private.push(Attribute::Decrypt(true));
                Mechanism::RsaPkcsKeyPairGen
            }
            // EC private keys may also agree keys (ECDH, Derive Key); again the usage mask
            // decides.
            PairSpec::P256 => {
                public.push(Attribute::EcParams(crate::der::P256.to_vec()));
                private.push(Attribute::Derive(true));
                Mechanism::EccKeyPairGen
            }
            PairSpec::P384 => {
                public.push(Attribute::EcParams(crate::der::P384.to_vec()));
                private.push(Attribute::Derive(true));
                Mechanism::EccKeyPairGen
            }
        };
        let (pub_handle, _) = s.generate_key_pair(&mechanism, &public, &private)?;
        Ok(match spec {
            PairSpec::Rsa(_) => {
                let n = super::value_of(s, pub_handle, AttributeType::Modulus)?;
                let e = super::value_of(s, pub_handle, AttributeType::PublicExponent)?;
                let pkcs1 = crate::der::rsa_public_key(&n, &e);
                PublicKeyDer { spki: crate::der::rsa_spki(&pkcs1), pkcs1: Some(pkcs1) }
            }
            PairSpec::P256 | PairSpec::P384 => {
                let point = super::value_of(s, pub_handle, AttributeType::EcPoint)?;
                // CKA_EC_POINT is a DER OCTET STRING around the point.
                let point = match point.as_slice() {
                    [0x04, len, rest @ ..] if *len as usize == rest.len() => rest.to_vec(),
                    _ => point,
                };
                let curve =
                    if spec == PairSpec::P256 { crate::der::P256 } else { crate::der::P384 };
                PublicKeyDer { spki: crate::der::ec_spki(curve, &point), pkcs1: None }
            }
        })
    }

    /// The key-pair half with CKA_ID `id`, as a session copy made once and kept: SoftHSM
    /// checks a token object's files on every use, which made each signature several times
    /// slower. The copy keeps the original's protections. Every [`COPY_RECHECK`] the token
    /// object is looked up again, and a copy of one since replaced or destroyed (by a
    /// replica sharing the token) is dropped.
    fn key_by_id(
        &self,
        s: &HsmSession<'_>,
        class: ObjectClass,
        id: &[u8],
    ) -> Result<ObjectHandle, HsmError> {
        let key = (kmip_id(id)?.to_vec(), class == ObjectClass::PRIVATE_KEY);
        let cached = s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?.get(&key).copied();
        if let Some(c) = cached.filter(|c| c.checked.elapsed() < COPY_RECHECK) {
            return Ok(c.copy);
        }
        let template =
            [Attribute::Class(class), Attribute::Id(id.to_vec()), Attribute::Token(true)];
        let token = s.find_objects(&template)?.first().copied();
        let mut copies = s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?;
        match (cached, token) {
            (Some(c), Some(token)) if c.source == token => {
                copies.insert(key, super::KeyCopy { checked: Instant::now(), ..c });
                return Ok(c.copy);
            }
            // Replaced or destroyed (by another process, say): the copy goes.
            (Some(c), _) => {
                copies.remove(&key);
                let _ = s.destroy_object(c.copy);
            }
            (None, _) => {}
        }
        drop(copies);
        let token = token.ok_or(HsmError::KeyNotFound)?;
        let anchor = s.conn.anchor.lock().map_err(|_| HsmError::Poisoned)?;
        let copy = anchor.copy_object(token, &[Attribute::Token(false)])?;
        drop(anchor);
        let made = super::KeyCopy { copy, source: token, checked: Instant::now() };
        s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?.insert(key, made);
        Ok(copy)
    }

    /// Runs `f` with the key-pair half `id` (see [`Hsm::key_by_id`]). A Destroy of the
    /// key may take its copy while `f` uses it (CKR_OBJECT_HANDLE_INVALID): the key is
    /// then looked up once more, which finds it no longer there, rather than the handle
    /// being taken for a lost device.
    fn with_key<T>(
        &self,
        s: &HsmSession<'_>,
        class: ObjectClass,
        id: &[u8],
        f: impl Fn(ObjectHandle) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        match f(self.key_by_id(s, class, id)?) {
            Err(e) if e.is_stale_handle() => {
                let key = (id.to_vec(), class == ObjectClass::PRIVATE_KEY);
                s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?.remove(&key);
                f(self.key_by_id(s, class, id)?)
            }
            result => result,
        }
    }

    /// Signs with the private key `id`.
    pub(crate) fn sign(
        &self,
        s: &HsmSession<'_>,
        id: &[u8],
        scheme: Scheme,
        message: Message<'_>,
    ) -> Result<Vec<u8>, HsmError> {
        let (mechanism, input) = match scheme {
            Scheme::Ecdsa(hash) => (Mechanism::Ecdsa, digest_of(hash, message)?),
            Scheme::RsaPkcs1(hash) => (
                Mechanism::RsaPkcs,
                [hash.digest_info_prefix(), &digest_of(hash, message)?].concat(),
            ),
            Scheme::RsaPss(hash) => (Mechanism::RsaPkcsPss(hash.pss()), digest_of(hash, message)?),
        };
        let signature = self.with_key(s, ObjectClass::PRIVATE_KEY, id, |key| {
            Ok(s.sign(&mechanism, key, &input)?)
        })?;
        Ok(match scheme {
            Scheme::Ecdsa(_) => crate::der::ecdsa_signature(&signature),
            _ => signature,
        })
    }

    /// Verifies a signature with the public key `id`; `Ok(false)` when it does not verify.
    pub(crate) fn verify(
        &self,
        s: &HsmSession<'_>,
        id: &[u8],
        scheme: Scheme,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, HsmError> {
        self.with_key(s, ObjectClass::PUBLIC_KEY, id, |key| {
            verify_with(s, key, scheme, message, signature)
        })
    }

    /// Imports a client's private key (KMIP Register) as a token object named by CKA_ID
    /// `id`: sensitive and never extractable from then on, like a generated one.
    pub(crate) fn import_private(
        &self,
        s: &HsmSession<'_>,
        id: &[u8],
        key: &crate::der::PrivateKey,
    ) -> Result<(), HsmError> {
        use crate::der::PrivateKey;
        let id = kmip_id(id)?;
        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(id.to_vec()),
        ];
        match key {
            PrivateKey::Rsa(k) => template.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::Decrypt(true),
                Attribute::Modulus(k.modulus.clone()),
                Attribute::PublicExponent(k.public_exponent.clone()),
                Attribute::PrivateExponent(k.private_exponent.clone()),
                Attribute::Prime1(k.prime1.clone()),
                Attribute::Prime2(k.prime2.clone()),
                Attribute::Exponent1(k.exponent1.clone()),
                Attribute::Exponent2(k.exponent2.clone()),
                Attribute::Coefficient(k.coefficient.clone()),
            ]),
            PrivateKey::Ec(k) => template.extend([
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(k.curve.to_vec()),
                Attribute::Value(k.scalar.clone()),
                Attribute::Derive(true),
            ]),
        }
        s.create_object(&template)?;
        Ok(())
    }

    /// ECDH (NIST SP 800-56A, ANSI X9.63) with the EC private key `id` and the other party's
    /// uncompressed point: the shared secret Z (the x-coordinate, `z_len` bytes), computed
    /// by C_DeriveKey into a short-lived generic secret whose value is read once.
    pub(crate) fn ecdh(
        &self,
        s: &HsmSession<'_>,
        id: &[u8],
        peer_point: &[u8],
        z_len: usize,
    ) -> Result<Vec<u8>, HsmError> {
        use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer_point);
        let mut template = super::readable_secret();
        template.push(Attribute::ValueLen(z_len.try_into()?));
        let shared = self.with_key(s, ObjectClass::PRIVATE_KEY, id, |private| {
            Ok(s.derive_key(&Mechanism::Ecdh1Derive(params), private, &template)?)
        })?;
        let value = super::value_of(s, shared, AttributeType::Value);
        let destroyed = s.destroy_object(shared);
        let value = value?;
        destroyed?;
        Ok(value)
    }

    /// Verifies with a public key given as SubjectPublicKeyInfo (a registered key, which
    /// has no HSM object): it becomes a session object for this one C_Verify.
    pub(crate) fn verify_spki(
        &self,
        s: &HsmSession<'_>,
        spki: &[u8],
        scheme: Scheme,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, HsmError> {
        let key = s.create_object(&public_key_template(spki)?)?;
        let result = verify_with(s, key, scheme, message, signature);
        let _ = s.destroy_object(key);
        result
    }

    /// RSA-OAEP decryption with SHA-1 and MGF1-SHA-1 (SoftHSM 2.6's only OAEP) with the
    /// private key `id`.
    pub(crate) fn rsa_oaep(
        &self,
        s: &HsmSession<'_>,
        id: &[u8],
        label: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let source = match label {
            [] => PkcsOaepSource::empty(),
            l => PkcsOaepSource::data_specified(l),
        };
        let params = PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, source);
        self.with_key(s, ObjectClass::PRIVATE_KEY, id, |key| {
            Ok(s.decrypt(&Mechanism::RsaPkcsOaep(params), key, data)?)
        })
    }

    /// Raw RSA (CKM_RSA_X_509, no padding): decrypts `data` with the private key `id`, or
    /// encrypts it with the public key `spki` (a session object for this one call). The
    /// caller pads (see `crate::oaep`); the result is as long as the modulus.
    pub(crate) fn rsa_raw(
        &self,
        s: &HsmSession<'_>,
        key: RawKey<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let mut out = match key {
            RawKey::Private(id) => self.with_key(s, ObjectClass::PRIVATE_KEY, id, |key| {
                Ok(s.decrypt(&Mechanism::RsaX509, key, data)?)
            })?,
            RawKey::Public(spki) => {
                let mut template = public_key_template(spki)?;
                template.push(Attribute::Encrypt(true));
                let key = s.create_object(&template)?;
                let result = s.encrypt(&Mechanism::RsaX509, key, data);
                let _ = s.destroy_object(key);
                result?
            }
        };
        // Leading zero bytes may be dropped: the caller expects the modulus length.
        if out.len() < data.len() {
            out.splice(0..0, std::iter::repeat_n(0, data.len() - out.len()));
        }
        Ok(out)
    }

    /// Gives the objects with CKA_ID `from` the CKA_ID `to` (an object being replaced is
    /// set aside this way, and put back if its replacement fails); returns how many.
    pub(crate) fn rebind_id(
        &self,
        s: &HsmSession<'_>,
        from: &[u8],
        to: &[u8],
    ) -> Result<usize, HsmError> {
        let (from, to) = (kmip_id(from)?, kmip_id(to)?);
        let mut copies = s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?;
        copies.retain(|(key_id, _), _| key_id.as_slice() != from);
        drop(copies);
        // The session copies go; the token objects are what is kept.
        for handle in s.find_objects(&[Attribute::Id(from.to_vec()), Attribute::Token(false)])? {
            s.destroy_object(handle)?;
        }
        let handles = s.find_objects(&[Attribute::Id(from.to_vec()), Attribute::Token(true)])?;
        for &handle in &handles {
            s.update_attributes(handle, &[Attribute::Id(to.to_vec())])?;
        }
        Ok(handles.len())
    }

    /// Destroys the objects with CKA_ID `id`, token objects and session copies alike (the two
    /// halves of a pair have different ids).
    pub(crate) fn destroy_by_id(&self, s: &HsmSession<'_>, id: &[u8]) -> Result<(), HsmError> {
        let id = kmip_id(id)?;
        let mut copies = s.conn.key_copies.lock().map_err(|_| HsmError::Poisoned)?;
        copies.retain(|(key_id, _), _| key_id.as_slice() != id);
        drop(copies);
        for handle in s.find_objects(&[Attribute::Id(id.to_vec())])? {
            s.destroy_object(handle)?;
        }
        Ok(())
    }
}

fn digest_of(hash: Hash, message: Message<'_>) -> Result<Vec<u8>, HsmError> {
    match message {
        Message::Data(d) => Ok(hash.digest(d)),
        Message::Digest(d) if d.len() == hash.len() => Ok(d.to_vec()),
        Message::Digest(_) => Err(HsmError::BadDigestLength),
    }
}

/// C_Verify with `key` under `scheme`; a wrong signature is `Ok(false)`.
fn verify_with(
    s: &Session,
    key: ObjectHandle,
    scheme: Scheme,
    message: Message<'_>,
    signature: &[u8],
) -> Result<bool, HsmError> {
    let result = match scheme {
        Scheme::Ecdsa(hash) => {
            let digest = digest_of(hash, message)?;
            let half = match super::value_of(s, key, AttributeType::EcPoint)?.len() {
                n if n > 90 => 48,
                _ => 32,
            };
            let Some(raw) = crate::der::ecdsa_raw(signature, half) else { return Ok(false) };
            s.verify(&Mechanism::Ecdsa, key, &digest, &raw)
        }
        Scheme::RsaPkcs1(hash) => {
            let info = [hash.digest_info_prefix(), &digest_of(hash, message)?].concat();
            s.verify(&Mechanism::RsaPkcs, key, &info, signature)
        }
        Scheme::RsaPss(hash) => {
            // KMIP 1.x names no salt length: signers use the hash's length (as we do) or
            // the largest that fits (OpenSSL's "max", as in the OASIS test cases).
            let digest = digest_of(hash, message)?;
            match s.verify(&Mechanism::RsaPkcsPss(hash.pss()), key, &digest, signature) {
                Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::SignatureInvalid,
                    _,
                )) => {
                    let modulus = super::value_of(s, key, AttributeType::Modulus)?;
                    let bytes = modulus.iter().skip_while(|b| **b == 0).count();
                    let params = hash.pss_salted(bytes.saturating_sub(hash.len() + 2));
                    s.verify(&Mechanism::RsaPkcsPss(params), key, &digest, signature)
                }
                other => other,
            }
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::SignatureInvalid
            | cryptoki::error::RvError::SignatureLenRange,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A session public key object for `spki` (RSA, or EC on a named curve), for verification.
/// The key of a raw RSA operation.
pub(crate) enum RawKey<'a> {
    /// The private key with this CKA_ID.
    Private(&'a [u8]),
    /// A public key given as SubjectPublicKeyInfo.
    Public(&'a [u8]),
}

fn public_key_template(spki: &[u8]) -> Result<Vec<Attribute>, HsmError> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|_| HsmError::BadPublicKey)?;
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Token(false),
        Attribute::Verify(true),
    ];
    match info.parsed().map_err(|_| HsmError::BadPublicKey)? {
        PublicKey::RSA(rsa) => template.extend([
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(rsa.modulus.to_vec()),
            Attribute::PublicExponent(rsa.exponent.to_vec()),
        ]),
        PublicKey::EC(point) => {
            let curve = info.algorithm.parameters.as_ref().ok_or(HsmError::BadPublicKey)?;
            template.extend([
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(crate::der::tlv(0x06, curve.data)),
                Attribute::EcPoint(crate::der::tlv(0x04, point.data())),
            ]);
        }
        _ => return Err(HsmError::BadPublicKey),
    }
    Ok(template)
}
