//! Sign and Signature Verify with key pairs held in the HSM: ECDSA, RSA PKCS#1 v1.5 and
//! RSA-PSS, over data or a client-computed digest.

use kmip::attributes::{find, names};
use kmip::enums::{
    usage_mask, CryptographicAlgorithm, DigitalSignatureAlgorithm as Dsa, HashingAlgorithm,
    ObjectType, PaddingMethod,
};
use kmip::ops::encrypt::CryptographicParameters;
use kmip::ops::sign;
use kmip::Value;

use super::{check_use, key_parameters, OpCtx, Outcome, PartOf};
use crate::hsm::{AfterDigest, Hash, Hsm, HsmError, HsmSession, Message, Scheme};
use crate::kmip_server::error::OpError;

/// The hash function a Hash request names (it must name one).
pub(crate) fn hash_of(h: Option<HashingAlgorithm>) -> Result<Hash, OpError> {
    match h {
        None => Err(OpError::Invalid("a Hashing Algorithm is required")),
        some => hash(some, Hash::Sha256),
    }
}

/// The hash function `h` names, or `default`.
pub(crate) fn hash(h: Option<HashingAlgorithm>, default: Hash) -> Result<Hash, OpError> {
    match h {
        None => Ok(default),
        Some(HashingAlgorithm::SHA_1) => Ok(Hash::Sha1),
        Some(HashingAlgorithm::SHA_256) => Ok(Hash::Sha256),
        Some(HashingAlgorithm::SHA_384) => Ok(Hash::Sha384),
        Some(HashingAlgorithm::SHA_512) => Ok(Hash::Sha512),
        Some(_) => Err(OpError::Unsupported("hashing algorithms other than SHA-1/256/384/512")),
    }
}

/// The signature scheme for the key's algorithm and the parameters.
fn scheme(
    algorithm: CryptographicAlgorithm,
    bits: i32,
    p: &CryptographicParameters,
) -> Result<Scheme, OpError> {
    let ec = match algorithm {
        CryptographicAlgorithm::EC | CryptographicAlgorithm::ECDSA => true,
        CryptographicAlgorithm::RSA => false,
        _ => return Err(OpError::Unsupported("signatures with RSA and EC keys only")),
    };
    let default_hash = if ec && bits == 384 { Hash::Sha384 } else { Hash::Sha256 };
    let s = match (p.digital_signature_algorithm, ec) {
        (Some(Dsa::ECDSA_WITH_SHA256), true) => Scheme::Ecdsa(Hash::Sha256),
        (Some(Dsa::ECDSA_WITH_SHA384), true) => Scheme::Ecdsa(Hash::Sha384),
        (Some(Dsa::ECDSA_WITH_SHA512), true) => Scheme::Ecdsa(Hash::Sha512),
        (Some(Dsa::SHA_1_WITH_RSA_ENCRYPTION), false) => Scheme::RsaPkcs1(Hash::Sha1),
        (Some(Dsa::SHA_256_WITH_RSA_ENCRYPTION), false) => Scheme::RsaPkcs1(Hash::Sha256),
        (Some(Dsa::SHA_384_WITH_RSA_ENCRYPTION), false) => Scheme::RsaPkcs1(Hash::Sha384),
        (Some(Dsa::SHA_512_WITH_RSA_ENCRYPTION), false) => Scheme::RsaPkcs1(Hash::Sha512),
        (Some(Dsa::RSASSA_PSS), false) => Scheme::RsaPss(hash(p.hashing_algorithm, Hash::Sha256)?),
        (Some(_), _) => {
            return Err(OpError::Unsupported("this Digital Signature Algorithm with this key"))
        }
        (None, true) => Scheme::Ecdsa(hash(p.hashing_algorithm, default_hash)?),
        (None, false) => match p.padding_method {
            Some(PaddingMethod::PSS) => Scheme::RsaPss(hash(p.hashing_algorithm, Hash::Sha256)?),
            None | Some(PaddingMethod::PKCS1_V1_5) => {
                Scheme::RsaPkcs1(hash(p.hashing_algorithm, Hash::Sha256)?)
            }
            Some(_) => {
                return Err(OpError::Unsupported("RSA signatures use PKCS#1 v1.5 or PSS padding"))
            }
        },
    };
    Ok(s)
}

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: sign::Request,
    signing: bool,
) -> Result<Outcome, OpError> {
    let op = if signing { "Sign" } else { "Signature Verify" };
    let part = PartOf::of(req.stream.as_ref())?;
    let id = cx.target(req.unique_identifier.clone())?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    let wanted = if signing { ObjectType::PRIVATE_KEY } else { ObjectType::PUBLIC_KEY };
    if row.object_type != i64::from(wanted.0) {
        return Err(OpError::Invalid(if signing {
            "Sign takes a private key"
        } else {
            "Signature Verify takes a public key"
        }));
    }
    let bit = if signing { usage_mask::SIGN } else { usage_mask::VERIFY };
    check_use(&row, &stored, cx.now, op, signing, bit)?;
    let algorithm = match find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => CryptographicAlgorithm(*a),
        _ => return Err(OpError::Invalid("the key has no Cryptographic Algorithm")),
    };
    let bits = match find(&stored, names::CRYPTOGRAPHIC_LENGTH).map(|a| &a.value) {
        Some(Value::Integer(b)) => *b,
        _ => 0,
    };
    let params = req.parameters.clone().unwrap_or_default().or(&key_parameters(&stored)?);
    let scheme = scheme(algorithm, bits, &params)?;
    let next = match part {
        PartOf::Whole => None,
        PartOf::First => Some(None),
        PartOf::Next { correlation, last } => Some(Some((correlation, last))),
    };
    if let Some(next) = next {
        let key = KeyRef { id: id.clone(), spki: row.public_material.clone() };
        return parts(cx, next, key, &stored, req, scheme, signing).await;
    }
    let (data, digested) = (req.data, req.digested_data);
    if data.is_none() == digested.is_none() {
        return Err(OpError::Invalid("give exactly one of Data and Digested Data"));
    }
    let key_id = id.clone();
    if signing {
        let input_len = data.as_ref().or(digested.as_ref()).map_or(0, Vec::len);
        let signature = call(cx, scheme, input_len, move |hsm, s| {
            hsm.sign(s, key_id.as_bytes(), scheme, message(&data, &digested))
        })
        .await?;
        super::charge_usage(cx, &id, &stored, input_len).await?;
        return Ok(Outcome::new(sign::sign_response(&id, signature), Some(id)));
    }
    let signature = req.signature.ok_or(OpError::Invalid("Signature Data is required"))?;
    // A generated pair's public key is an HSM object; a registered one is only stored.
    let spki = row.public_material.clone();
    let input_len = data.as_ref().or(digested.as_ref()).map_or(0, Vec::len);
    let valid = call(cx, scheme, input_len, move |hsm, s| {
        let m = message(&data, &digested);
        match (hsm.verify(s, key_id.as_bytes(), scheme, m, &signature), &spki) {
            (Err(HsmError::KeyNotFound), Some(spki)) => {
                hsm.verify_spki(s, spki, scheme, message(&data, &digested), &signature)
            }
            (result, _) => result,
        }
    })
    .await?;
    Ok(Outcome::new(sign::verify_response(&id, valid), Some(id)))
}

/// Runs a single-part HSM call for `scheme`: ECDSA is a short call, RSA is not
/// (milliseconds from 2048 bits up).
async fn call<T: Send + 'static>(
    cx: &OpCtx<'_>,
    scheme: Scheme,
    input_len: usize,
    f: impl FnOnce(&Hsm, &HsmSession<'_>) -> Result<T, HsmError> + Send + 'static,
) -> Result<T, HsmError> {
    match scheme {
        Scheme::Ecdsa(_) => cx.state.hsm.run_short(input_len, f).await,
        Scheme::RsaPkcs1(_) | Scheme::RsaPss(_) => cx.state.hsm.run(f).await,
    }
}

/// The key of a multi-part operation: its identifier and, for a public key, its
/// SubjectPublicKeyInfo.
struct KeyRef {
    id: String,
    spki: Option<Vec<u8>>,
}

/// A part of a multi-part Sign or Signature Verify (KMIP 2.1 §6.1.51): the first
/// (`next` `None`), or a later one (its Correlation Value, and whether it is the last). The
/// data is digested in the HSM part by part, and the last part signs or verifies the digest
/// with the scheme the first part chose; the signature to verify comes with the last part.
async fn parts(
    cx: &OpCtx<'_>,
    next: Option<(Vec<u8>, bool)>,
    key: KeyRef,
    stored: &[kmip::attributes::Attribute],
    req: sign::Request,
    scheme: Scheme,
    signing: bool,
) -> Result<Outcome, OpError> {
    if req.digested_data.is_some() {
        return Err(OpError::Invalid("multi-part operations take Data, not Digested Data"));
    }
    let data = req.data.unwrap_or_default();
    let input_len = data.len();
    // The caller, key and operation that began it (see crypt.rs).
    let op = if signing { "Sign" } else { "Signature Verify" };
    let owner = format!("{}\n{}\n{op}", cx.principal.as_str(), key.id);
    let id = key.id.clone();
    let hsm_id = key.id.clone().into_bytes();
    let last = next.as_ref().is_some_and(|(_, last)| *last);
    let expected = match (signing, last) {
        (false, true) => Some(req.signature.ok_or(OpError::Invalid("Signature Data is required"))?),
        _ => None,
    };
    let done = cx
        .state
        .hsm
        .run(move |hsm, s| match next {
            None => {
                let after = match signing {
                    true => AfterDigest::Sign { id: hsm_id, scheme },
                    false => AfterDigest::Verify { id: hsm_id, scheme, spki: key.spki },
                };
                hsm.digest_stream_start(s, scheme.hash(), Some(after), &data, owner)
            }
            Some((correlation, last)) => {
                hsm.stream_next(s, &correlation, &owner, &data, last, expected.as_deref())
            }
        })
        .await?;
    if signing {
        super::charge_usage(cx, &id, stored, input_len).await?;
    }
    let payload = match (last, done.verified) {
        (false, _) => sign::part_response(&id, done.correlation),
        (true, Some(valid)) => sign::verify_response(&id, valid),
        (true, None) => sign::sign_response(&id, done.data),
    };
    Ok(Outcome::new(payload, Some(id)))
}

/// The data to sign or verify, or its digest (exactly one is present, checked above).
fn message<'a>(data: &'a Option<Vec<u8>>, digested: &'a Option<Vec<u8>>) -> Message<'a> {
    match (data, digested) {
        (Some(d), _) => Message::Data(d),
        (_, Some(d)) => Message::Digest(d),
        _ => Message::Data(&[]),
    }
}
