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

use super::{check_use, key_parameters, OpCtx, Outcome};
use crate::hsm::{Hash, Message, Scheme};
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
    let ec = matches!(algorithm, CryptographicAlgorithm::EC | CryptographicAlgorithm::ECDSA);
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
    if req.streaming {
        return Err(OpError::Unsupported("multi-part (streaming) Sign and Signature Verify"));
    }
    let id = cx.target(req.unique_identifier)?;
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
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);
    let scheme = scheme(algorithm, bits, &params)?;
    let (data, digested) = (req.data, req.digested_data);
    if data.is_none() == digested.is_none() {
        return Err(OpError::Invalid("give exactly one of Data and Digested Data"));
    }
    let key_id = id.clone();
    if signing {
        let input_len = data.as_ref().or(digested.as_ref()).map_or(0, Vec::len);
        let signature = cx
            .state
            .hsm
            .run(move |hsm, s| hsm.sign(s, key_id.as_bytes(), scheme, message(&data, &digested)))
            .await?;
        super::charge_usage(cx, &id, &stored, input_len).await?;
        return Ok(Outcome::new(sign::sign_response(&id, signature), Some(id)));
    }
    let signature = req.signature.ok_or(OpError::Invalid("Signature Data is required"))?;
    // A generated pair's public key is an HSM object; a registered one is only stored.
    let spki = row.public_material.clone();
    let valid = cx
        .state
        .hsm
        .run(move |hsm, s| {
            let m = message(&data, &digested);
            match (hsm.verify(s, key_id.as_bytes(), scheme, m, &signature), &spki) {
                (Err(crate::hsm::HsmError::KeyNotFound), Some(spki)) => {
                    hsm.verify_spki(s, spki, scheme, message(&data, &digested), &signature)
                }
                (result, _) => result,
            }
        })
        .await?;
    Ok(Outcome::new(sign::verify_response(&id, valid), Some(id)))
}

/// The data to sign or verify, or its digest (exactly one is present, checked above).
fn message<'a>(data: &'a Option<Vec<u8>>, digested: &'a Option<Vec<u8>>) -> Message<'a> {
    match (data, digested) {
        (Some(d), _) => Message::Data(d),
        (_, Some(d)) => Message::Digest(d),
        _ => Message::Data(&[]),
    }
}
