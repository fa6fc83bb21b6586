//! Create: a symmetric key (AES, 3DES, ChaCha20 or an HMAC key) generated inside the HSM, stored
//! sealed by the key-encryption key.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{CryptographicAlgorithm, ObjectType};
use kmip::ops::create;

use super::{OpCtx, Outcome};
use crate::hsm::SecretKind;
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: create::Request) -> Result<Outcome, OpError> {
    if req.object_type != ObjectType::SYMMETRIC_KEY {
        return Err(OpError::Unsupported("Create makes Symmetric Keys only"));
    }
    let kind = secret_kind(&req.attributes)?;
    let (row, mut attributes) = super::register::new_object(cx, req.object_type, req.attributes)?;
    generated_here(cx, &mut attributes);
    let aad = row.id.clone();
    let sealed = cx
        .state
        .hsm
        .run_short(0, move |hsm, s| hsm.generate_sealed_secret(s, kind, aad.as_bytes()))
        .await?;
    let id = super::register::store(cx, row, sealed, None, &attributes).await?;
    Ok(Outcome::new(create::response(req.object_type, &id), Some(id)))
}

/// The key the HSM makes for a Cryptographic Algorithm and Length (both required), when
/// it may be made: a key that must be Quantum Safe (KMIP 2.1 §4.45) needs at least 256
/// bits, as Grover's search halves a symmetric key's strength.
pub(crate) fn secret_kind(attrs: &[Attribute]) -> Result<SecretKind, OpError> {
    let kind = kind_of(attrs)?;
    let safe = match kind {
        SecretKind::Aes { bits } => bits >= 256,
        SecretKind::Des3 => false,
        SecretKind::Generic { bytes } => bytes >= 32,
    };
    if must_be_quantum_safe(attrs) && !safe {
        return Err(OpError::NotQuantumSafe("symmetric keys need at least 256 bits"));
    }
    Ok(kind)
}

/// Whether the attributes ask for a Quantum Safe object (KMIP 2.1 §4.45).
pub(crate) fn must_be_quantum_safe(attrs: &[Attribute]) -> bool {
    find(attrs, "Quantum Safe").map(|a| &a.value) == Some(&kmip::Value::Boolean(true))
}

fn kind_of(attrs: &[Attribute]) -> Result<SecretKind, OpError> {
    use kmip::Value;
    let algorithm = match find(attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => CryptographicAlgorithm(*a),
        _ => return Err(OpError::Invalid("Cryptographic Algorithm is required")),
    };
    let bits = match find(attrs, names::CRYPTOGRAPHIC_LENGTH).map(|a| &a.value) {
        Some(Value::Integer(b)) if *b > 0 => *b as usize,
        _ => return Err(OpError::Invalid("a positive Cryptographic Length is required")),
    };
    match algorithm {
        CryptographicAlgorithm::AES if [128, 192, 256].contains(&bits) => {
            Ok(SecretKind::Aes { bits })
        }
        CryptographicAlgorithm::AES => {
            Err(OpError::Invalid("AES keys are 128, 192 or 256 bits long"))
        }
        // KMIP counts a 3DES key's 168 key bits (192 with parity).
        CryptographicAlgorithm::TRIPLE_DES if [168, 192].contains(&bits) => Ok(SecretKind::Des3),
        CryptographicAlgorithm::TRIPLE_DES => Err(OpError::Invalid("3DES keys are 168 bits long")),
        CryptographicAlgorithm::HMAC_SHA1
        | CryptographicAlgorithm::HMAC_SHA256
        | CryptographicAlgorithm::HMAC_SHA384
        | CryptographicAlgorithm::HMAC_SHA512
            if bits % 8 == 0 && (128..=4096).contains(&bits) =>
        {
            Ok(SecretKind::Generic { bytes: bits / 8 })
        }
        CryptographicAlgorithm::HMAC_SHA1
        | CryptographicAlgorithm::HMAC_SHA256
        | CryptographicAlgorithm::HMAC_SHA384
        | CryptographicAlgorithm::HMAC_SHA512 => {
            Err(OpError::Invalid("HMAC keys are whole bytes, 128 to 4096 bits"))
        }
        // The HSM has no ChaCha20 key type: 32 random bytes from its generator.
        CryptographicAlgorithm::CHACHA20 | CryptographicAlgorithm::CHACHA20POLY1305
            if bits == 256 =>
        {
            Ok(SecretKind::Generic { bytes: 32 })
        }
        CryptographicAlgorithm::CHACHA20 | CryptographicAlgorithm::CHACHA20POLY1305 => {
            Err(OpError::Invalid("ChaCha20 keys are 256 bits"))
        }
        _ => Err(OpError::Unsupported(
            "symmetric keys are AES, 3DES, ChaCha20, ChaCha20-Poly1305 or HMAC-SHA1/256/384/512",
        )),
    }
}

/// Marks attributes of a key the HSM generated: its Random Number Generator (KMIP 1.4
/// §3.44) replaces whatever the client sent.
pub(crate) fn generated_here(cx: &OpCtx<'_>, attributes: &mut Vec<Attribute>) {
    use kmip::enums::{DRBGAlgorithm, RNGAlgorithm};
    use kmip::{Tag, Ttlv, Value};
    let rng = if cx.state.hsm.is_softhsm() {
        vec![
            Ttlv::new(Tag::RNG_ALGORITHM, Value::Enumeration(RNGAlgorithm::DRBG.0)),
            Ttlv::new(
                Tag::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(CryptographicAlgorithm::AES.0),
            ),
            Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
            Ttlv::new(Tag::DRBG_ALGORITHM, Value::Enumeration(DRBGAlgorithm::CTR.0)),
        ]
    } else {
        vec![Ttlv::new(Tag::RNG_ALGORITHM, Value::Enumeration(RNGAlgorithm::UNSPECIFIED.0))]
    };
    attributes.retain(|a| a.name != names::RANDOM_NUMBER_GENERATOR);
    attributes.push(Attribute::new(names::RANDOM_NUMBER_GENERATOR, Value::Structure(rng)));
}

/// Attributes as the client sent them, minus the lifecycle dates kept as columns.
pub(crate) fn split_dates(attrs: Vec<Attribute>) -> (Vec<Attribute>, Option<i64>, Option<i64>) {
    let mut activation = None;
    let mut deactivation = None;
    let mut rest = Vec::with_capacity(attrs.len());
    for a in attrs {
        match (a.name.as_str(), &a.value) {
            (names::ACTIVATION_DATE, kmip::Value::DateTime(d)) => activation = Some(*d),
            (names::DEACTIVATION_DATE, kmip::Value::DateTime(d)) => deactivation = Some(*d),
            _ => rest.push(a),
        }
    }
    (rest, activation, deactivation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmip::Value;

    fn aes(bits: i32, quantum_safe: Option<bool>) -> Vec<Attribute> {
        let mut a = vec![
            Attribute::new(
                names::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(CryptographicAlgorithm::AES.0),
            ),
            Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
        ];
        if let Some(q) = quantum_safe {
            a.push(Attribute::new("Quantum Safe", Value::Boolean(q)));
        }
        a
    }

    #[test]
    fn quantum_safe_keys_need_256_bits() {
        assert!(matches!(secret_kind(&aes(128, None)), Ok(SecretKind::Aes { bits: 128 })));
        assert!(secret_kind(&aes(128, Some(false))).is_ok());
        assert!(matches!(secret_kind(&aes(128, Some(true))), Err(OpError::NotQuantumSafe(_))));
        assert!(matches!(secret_kind(&aes(192, Some(true))), Err(OpError::NotQuantumSafe(_))));
        assert!(matches!(secret_kind(&aes(256, Some(true))), Ok(SecretKind::Aes { bits: 256 })));
    }
}
