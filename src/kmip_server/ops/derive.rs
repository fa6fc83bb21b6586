//! Derive Key (KMIP 1.4 §4.6): a Symmetric Key or Secret Data derived from a symmetric key
//! or Secret Data, or agreed by ECDH between an EC private key and a public key. Every use of the derivation key happens in the HSM (HMAC, digest, AES);
//! `crate::kdf` only arranges the PRF's inputs. The result is sealed like any other key,
//! and the objects are linked both ways (Derived Key, Derivation Base Object).

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{
    usage_mask, BlockCipherMode, CryptographicAlgorithm, DerivationMethod as Method, KeyFormatType,
    LinkType, ObjectType, PaddingMethod, SecretDataType,
};
use kmip::ops::derive_key::{self, DerivationParameters};
use kmip::ops::encrypt::CryptographicParameters;
use kmip::Value;

use super::{check_use, is_sensitive, key_parameters, OpCtx, Outcome};
use crate::hsm::{AesMode, Derivation, Hash, Hsm, HsmError, HsmSession, MacKind};
use crate::kdf::Sp800108;
use crate::kmip_server::error::OpError;
use crate::store::{NewObject, ObjectRow};

/// The longest object Derive Key makes, in bits: room for several keys and IVs at once.
const MAX_BITS: i32 = 8192;
/// The most PBKDF2 iterations accepted (OWASP's advice for HMAC-SHA1 is 1.3 million), over
/// all output blocks; each is one HMAC in the HSM, so this bounds a request to seconds.
const MAX_ITERATIONS: i32 = 2_000_000;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: derive_key::Request) -> Result<Outcome, OpError> {
    let (sub_type, key_format) = match req.object_type {
        ObjectType::SYMMETRIC_KEY => (None, KeyFormatType::RAW),
        ObjectType::SECRET_DATA => (Some(i64::from(SecretDataType::SEED.0)), KeyFormatType::OPAQUE),
        _ => return Err(OpError::Invalid("Derive Key makes Symmetric Keys or Secret Data")),
    };
    let bits = derived_length(req.object_type, &req.attributes)?;
    let len = (bits / 8) as usize;
    if req.method == Method::ASYMMETRIC_KEY {
        let made = Made { object_type: req.object_type, sub_type, key_format, len };
        return agree(cx, req, made).await;
    }
    let (key_id, data_id) = match req.unique_identifiers.as_slice() {
        [key] => (key.clone(), None),
        [key, data] => (key.clone(), Some(data.clone())),
        _ => {
            return Err(OpError::Invalid(
                "Derive Key takes a derivation key and at most one Secret Data object",
            ))
        }
    };
    let (key, key_attrs) = base(cx, &key_id).await?;
    let mut sensitive = is_sensitive(&key_attrs);
    let mut given = req.parameters;
    if let Some(data_id) = &data_id {
        if given.data.is_some() {
            return Err(OpError::Invalid(
                "give the Derivation Data or a Secret Data object holding it, not both",
            ));
        }
        let (row, data_attrs) = base(cx, data_id).await?;
        if row.object_type != i64::from(ObjectType::SECRET_DATA.0) {
            return Err(OpError::Invalid("the second object must be Secret Data"));
        }
        // Encrypting is undone by decrypting: with a key the caller holds, the derived
        // object is the Secret Data itself, which a grant of Derive Key does not give, and
        // a Sensitive object does not leave in the clear.
        if req.method == Method::ENCRYPT {
            if is_sensitive(&data_attrs) {
                return Err(OpError::Sensitive(row.id));
            }
            if !cx.may(&row, kmip::enums::Operation::GET).await? {
                return Err(OpError::Denied(row.id));
            }
        }
        sensitive |= is_sensitive(&data_attrs);
        given.data = Some(open(cx, &row).await?);
    }
    let own = match find(&key_attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => Some(CryptographicAlgorithm(*a)),
        _ => None,
    };
    let params = given.parameters.clone().unwrap_or_default().or(&key_parameters(&key_attrs)?);
    let recipe = recipe(req.method, given, &params, own, len)?;
    let sealed_key =
        key.sealed_material.clone().ok_or_else(|| OpError::Destroyed(key.id.clone()))?;
    let key_aad = key.id.clone();
    let made = Made { object_type: req.object_type, sub_type, key_format, len };
    let bases: Vec<String> = std::iter::once(key_id).chain(data_id).collect();
    let mut attributes = req.attributes;
    if sensitive {
        // What is made from a Sensitive object is as secret.
        attributes.retain(|a| a.name != names::SENSITIVE);
        attributes.push(Attribute::new(names::SENSITIVE, Value::Boolean(true)));
    }
    store_derived(cx, made, attributes, bases, move |hsm, s| {
        let key = hsm.open_sealed(s, &sealed_key, key_aad.as_bytes())?;
        hsm.derive(s, &recipe, &key, len)
    })
    .await
}

/// What Derive Key makes.
struct Made {
    object_type: ObjectType,
    sub_type: Option<i64>,
    key_format: KeyFormatType,
    /// Bytes.
    len: usize,
}

/// Makes the derived object: `derive` computes at least `len` bytes of material in the HSM,
/// which are sealed there for the new object; the new object and its bases are linked both
/// ways (Derivation Base Object, Derived Key) in the same transaction as the insert.
async fn store_derived(
    cx: &OpCtx<'_>,
    made: Made,
    attributes: Vec<Attribute>,
    bases: Vec<String>,
    derive: impl FnOnce(&Hsm, &HsmSession<'_>) -> Result<Vec<u8>, HsmError> + Send + 'static,
) -> Result<Outcome, OpError> {
    let (mut row, mut attributes) = super::register::new_object(cx, made.object_type, attributes)?;
    row.key_format = Some(i64::from(made.key_format.0));
    for b in &bases {
        attributes.push(super::rekey::link(LinkType::DERIVATION_BASE_OBJECT_LINK, b));
    }
    let (new_aad, len) = (row.id.clone(), made.len);
    let sealed = cx
        .state
        .hsm
        .run(move |hsm, s| {
            let out = derive(hsm, s)?;
            match out.get(..len) {
                Some(material) => hsm.seal(s, material, new_aad.as_bytes()).map(Some),
                None => Ok(None),
            }
        })
        .await?
        .ok_or(OpError::Invalid("the Cryptographic Length exceeds what the method derives"))?;
    let (row, attributes) = super::register::prepare(row, sealed, made.sub_type, attributes);
    let id = row.id.clone();
    let derived = super::rekey::link(LinkType::DERIVED_KEY_LINK, &id);
    cx.state
        .store
        .insert_derived(NewObject { row, attributes: &attributes }, &bases, &derived, cx.now)
        .await?;
    Ok(Outcome::new(derive_key::response(&id), Some(id)))
}

/// Asymmetric Key derivation (KMIP 2.1 §11.14): ECDH in the HSM between the caller's EC
/// private key and a public key (the other party's) on the same curve. The result is the
/// shared secret Z, or with a Hashing Algorithm, the ANSI X9.63 KDF over Z with the
/// Derivation Data as SharedInfo (the digests also in the HSM).
async fn agree(cx: &OpCtx<'_>, req: derive_key::Request, made: Made) -> Result<Outcome, OpError> {
    let [private_id, public_id] = req.unique_identifiers.as_slice() else {
        return Err(OpError::Invalid(
            "Asymmetric Key derivation takes an EC private key and the other party's public key",
        ));
    };
    let (private, private_attrs) = cx.load_with_attributes(private_id).await?;
    let (public, _) = cx.load_with_attributes(public_id).await?;
    if private.object_type != i64::from(ObjectType::PRIVATE_KEY.0)
        || public.object_type != i64::from(ObjectType::PUBLIC_KEY.0)
    {
        return Err(OpError::Invalid(
            "the first object must be a private key, the second a public key",
        ));
    }
    check_use(&private, &private_attrs, cx.now, "Derive Key", true, usage_mask::DERIVE_KEY)?;
    let spki = public.public_material.ok_or_else(|| OpError::Destroyed(public.id.clone()))?;
    let (bits, point) = crate::der::ec_point(&spki)
        .ok_or(OpError::Invalid("the other party's key is not an EC public key"))?;
    let ours = match find(&private_attrs, names::CRYPTOGRAPHIC_LENGTH).map(|a| &a.value) {
        Some(Value::Integer(b)) => *b,
        _ => 0,
    };
    let ec = matches!(
        find(&private_attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value),
        Some(Value::Enumeration(a)) if [CryptographicAlgorithm::EC.0, CryptographicAlgorithm::ECDSA.0, CryptographicAlgorithm::ECDH.0].contains(a)
    );
    if !ec || ours != i32::from(bits) {
        return Err(OpError::Invalid("ECDH needs an EC private key on the other key's curve"));
    }
    let z_len = usize::from(bits).div_ceil(8);
    let given = req.parameters;
    let hash = match given.parameters.as_ref().and_then(|p| p.hashing_algorithm) {
        None => None,
        some => Some(super::signature::hash(some, Hash::Sha256)?),
    };
    if hash.is_none() && made.len > z_len {
        return Err(OpError::Invalid(
            "the shared secret is shorter than the Cryptographic Length: give a Hashing Algorithm",
        ));
    }
    let shared_info = given.data.unwrap_or_default();
    let (len, hsm_id) = (made.len, private.id.clone());
    let bases = vec![private.id, public.id];
    store_derived(cx, made, req.attributes, bases, move |hsm, s| {
        let z = hsm.ecdh(s, hsm_id.as_bytes(), &point, z_len)?;
        match hash {
            None => Ok(z),
            Some(h) => crate::kdf::x963(&mut |d| hsm.digest(s, h, d), &z, &shared_info, len),
        }
    })
    .await
}

/// A base object the caller may derive from now, with its attributes.
async fn base(cx: &OpCtx<'_>, id: &str) -> Result<(ObjectRow, Vec<Attribute>), OpError> {
    let (row, stored) = cx.load_with_attributes(id).await?;
    if ![ObjectType::SYMMETRIC_KEY.0, ObjectType::SECRET_DATA.0].contains(&(row.object_type as u32))
    {
        return Err(OpError::Invalid("keys are derived from symmetric keys or Secret Data"));
    }
    check_use(&row, &stored, cx.now, "Derive Key", true, usage_mask::DERIVE_KEY)?;
    if row.sealed_material.is_none() {
        return Err(OpError::Destroyed(id.to_owned()));
    }
    Ok((row, stored))
}

/// The bytes of a Secret Data object, opened in the HSM.
async fn open(cx: &OpCtx<'_>, row: &ObjectRow) -> Result<Vec<u8>, OpError> {
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(row.id.clone()))?;
    let aad = row.id.clone();
    Ok(cx.state.hsm.open_sealed_async(sealed, aad).await?)
}

/// The derived object's length in bits (KMIP 1.4 §4.6: always given), and for a key, an
/// algorithm and a length that fit each other.
fn derived_length(object_type: ObjectType, attrs: &[Attribute]) -> Result<i32, OpError> {
    let bits = match find(attrs, names::CRYPTOGRAPHIC_LENGTH).map(|a| &a.value) {
        Some(Value::Integer(b)) if *b > 0 && *b % 8 == 0 && *b <= MAX_BITS => *b,
        Some(_) => {
            return Err(OpError::Invalid("Cryptographic Length must be whole bytes, at most 8192"))
        }
        None => return Err(OpError::Invalid("Cryptographic Length is required")),
    };
    if object_type == ObjectType::SYMMETRIC_KEY {
        match find(attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
            Some(Value::Enumeration(a)) if *a == CryptographicAlgorithm::AES.0 => {
                if ![128, 192, 256].contains(&bits) {
                    return Err(OpError::Invalid("AES keys are 128, 192 or 256 bits long"));
                }
            }
            Some(_) => {}
            None => {
                return Err(OpError::Invalid("a derived key needs its Cryptographic Algorithm"))
            }
        }
    }
    Ok(bits)
}

/// The HMAC hash a method's PRF uses: the request's (or the key's) Hashing Algorithm, else
/// the one the key's own HMAC algorithm names.
fn prf_hash(
    params: &CryptographicParameters,
    own: Option<CryptographicAlgorithm>,
) -> Result<Option<Hash>, OpError> {
    if params.hashing_algorithm.is_some() {
        return super::signature::hash(params.hashing_algorithm, Hash::Sha256).map(Some);
    }
    Ok(match own {
        Some(CryptographicAlgorithm::HMAC_SHA1) => Some(Hash::Sha1),
        Some(CryptographicAlgorithm::HMAC_SHA256) => Some(Hash::Sha256),
        Some(CryptographicAlgorithm::HMAC_SHA384) => Some(Hash::Sha384),
        Some(CryptographicAlgorithm::HMAC_SHA512) => Some(Hash::Sha512),
        _ => None,
    })
}

/// Checks the request for `method` and says what the HSM will compute.
fn recipe(
    method: Method,
    given: DerivationParameters,
    params: &CryptographicParameters,
    own: Option<CryptographicAlgorithm>,
    len: usize,
) -> Result<Derivation, OpError> {
    let needs_hash = || {
        prf_hash(params, own)?.ok_or(OpError::Invalid(
            "this derivation method needs a Hashing Algorithm (in Cryptographic Parameters)",
        ))
    };
    let data = given.data;
    let needs_data = || data.clone().ok_or(OpError::Invalid("Derivation Data is required"));
    Ok(match method {
        Method::PBKDF2 => {
            let iterations = match given.iteration_count {
                Some(n @ 1..=MAX_ITERATIONS) => n as u32,
                Some(_) => return Err(OpError::Invalid("Iteration Count must be 1 to 2000000")),
                None => return Err(OpError::Invalid("PBKDF2 needs an Iteration Count")),
            };
            let salt = given.salt.ok_or(OpError::Invalid("PBKDF2 needs a Salt"))?;
            // PKCS #5's default PRF is HMAC-SHA1 (RFC 8018 Appendix A.2).
            let hash = prf_hash(params, own)?.unwrap_or(Hash::Sha1);
            // Each block of output costs the iterations again: the bound is on the HMACs.
            let blocks = len.div_ceil(hash.len()).max(1) as u64;
            if u64::from(iterations) * blocks > MAX_ITERATIONS as u64 {
                return Err(OpError::Invalid(
                    "Iteration Count times output blocks must stay within 2000000 HMACs",
                ));
            }
            Derivation::Pbkdf2 { hash, salt, iterations }
        }
        Method::HASH => {
            let hash = super::signature::hash_of(params.hashing_algorithm)?;
            Derivation::Digest { hash, data }
        }
        Method::HMAC => Derivation::Hmac { hash: needs_hash()?, data: needs_data()? },
        Method::HKDF => {
            let hash = needs_hash()?;
            if len > 255 * hash.len() {
                return Err(OpError::Invalid("HKDF derives at most 255 hash lengths"));
            }
            Derivation::Hkdf {
                hash,
                salt: given.salt.unwrap_or_default(),
                info: data.unwrap_or_default(),
            }
        }
        Method::ENCRYPT => {
            if own != Some(CryptographicAlgorithm::AES) {
                return Err(OpError::Unsupported("ENCRYPT derivation uses AES keys"));
            }
            let data = needs_data()?;
            let pad = params.padding_method == Some(PaddingMethod::PKCS5);
            let mode = match params.block_cipher_mode {
                Some(BlockCipherMode::ECB) if !pad => AesMode::Ecb,
                Some(BlockCipherMode::CBC) => {
                    // An empty IV is assumed when none is given (KMIP 1.4 Table 182).
                    let iv = given.iv.unwrap_or_else(|| vec![0; 16]);
                    let iv =
                        iv.try_into().map_err(|_| OpError::Invalid("CBC takes a 16-byte IV"))?;
                    AesMode::Cbc { iv, pad }
                }
                None => {
                    return Err(OpError::Invalid("ENCRYPT derivation needs a Block Cipher Mode"))
                }
                Some(_) => {
                    return Err(OpError::Unsupported(
                        "ENCRYPT derivation uses ECB without padding, or CBC",
                    ))
                }
            };
            if !pad && data.len() % 16 != 0 {
                return Err(OpError::Invalid(
                    "the Derivation Data must be whole 16-byte blocks without padding",
                ));
            }
            Derivation::Encrypt { mode, data }
        }
        Method::NIST800_108_C | Method::NIST800_108_F | Method::NIST800_108_DPI => {
            let mode = match method {
                Method::NIST800_108_C => Sp800108::Counter,
                Method::NIST800_108_F => Sp800108::Feedback { iv: given.iv.unwrap_or_default() },
                _ => Sp800108::DoublePipeline,
            };
            // The PRF is HMAC, or AES-CMAC with an AES key and Block Cipher Mode CMAC.
            let prf = match (own, params.block_cipher_mode) {
                (Some(CryptographicAlgorithm::AES), Some(BlockCipherMode::CMAC)) => MacKind::Cmac,
                _ => MacKind::Hmac(needs_hash()?),
            };
            Derivation::Sp800108 { prf, mode, data: data.unwrap_or_default() }
        }
        _ => return Err(OpError::Unsupported("this derivation method")),
    })
}
