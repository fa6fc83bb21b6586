//! Create Key Pair: RSA (2048, 3072, 4096) and EC (P-256, P-384) pairs generated in the HSM.
//! The private key stays there (non-extractable, CKA_ID = its object id); the public key is
//! also kept as SubjectPublicKeyInfo for Get. The two objects link to each other.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{CryptographicAlgorithm, HashingAlgorithm, KeyFormatType, LinkType, ObjectType};
use kmip::ops::create_key_pair;
use kmip::{Tag, Ttlv, Value};
use sha2::Digest as _;

use super::{OpCtx, Outcome};
use crate::hsm::PairSpec;
use crate::kmip_server::error::OpError;
use crate::store::NewObject;

/// The key-pair kind the attributes ask for.
fn spec(attrs: &[Attribute]) -> Result<(PairSpec, CryptographicAlgorithm, i32), OpError> {
    let algorithm = match find(attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => CryptographicAlgorithm(*a),
        _ => return Err(OpError::Invalid("Cryptographic Algorithm is required")),
    };
    let length = match find(attrs, names::CRYPTOGRAPHIC_LENGTH).map(|a| &a.value) {
        Some(Value::Integer(l)) => Some(*l),
        _ => None,
    };
    let spec = match (algorithm, length) {
        (CryptographicAlgorithm::RSA, Some(bits @ (2048 | 3072 | 4096))) => {
            PairSpec::Rsa(bits as u32)
        }
        (CryptographicAlgorithm::RSA, _) => {
            return Err(OpError::Invalid("RSA keys are 2048, 3072 or 4096 bits long"));
        }
        (CryptographicAlgorithm::EC | CryptographicAlgorithm::ECDSA, Some(256) | None) => {
            PairSpec::P256
        }
        (CryptographicAlgorithm::EC | CryptographicAlgorithm::ECDSA, Some(384)) => PairSpec::P384,
        (CryptographicAlgorithm::EC | CryptographicAlgorithm::ECDSA, _) => {
            return Err(OpError::Invalid("EC keys are on P-256 or P-384"));
        }
        _ => return Err(OpError::Unsupported("key pairs are RSA or EC")),
    };
    let bits = match spec {
        PairSpec::Rsa(b) => b as i32,
        PairSpec::P256 => 256,
        PairSpec::P384 => 384,
    };
    Ok((spec, algorithm, bits))
}

fn with_defaults(
    mut attrs: Vec<Attribute>,
    algorithm: CryptographicAlgorithm,
    bits: i32,
) -> Vec<Attribute> {
    attrs.retain(|a| {
        a.name != names::CRYPTOGRAPHIC_LENGTH && a.name != names::CRYPTOGRAPHIC_ALGORITHM
    });
    attrs.push(Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)));
    attrs.push(Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)));
    attrs
}

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: create_key_pair::Request,
) -> Result<Outcome, OpError> {
    let all: Vec<Attribute> =
        req.common.iter().chain(&req.private).chain(&req.public).cloned().collect();
    let (spec, algorithm, bits) = spec(&all)?;
    let private_attrs =
        with_defaults(req.common.iter().chain(&req.private).cloned().collect(), algorithm, bits);
    let public_attrs =
        with_defaults(req.common.iter().chain(&req.public).cloned().collect(), algorithm, bits);
    let (mut private, mut private_attrs) =
        super::register::new_object(cx, ObjectType::PRIVATE_KEY, private_attrs)?;
    let (mut public, mut public_attrs) =
        super::register::new_object(cx, ObjectType::PUBLIC_KEY, public_attrs)?;
    super::create::generated_here(cx, &mut private_attrs);
    super::create::generated_here(cx, &mut public_attrs);
    let (private_id, public_id) = (private.id.clone(), public.id.clone());
    let ids = (private_id.clone(), public_id.clone());
    let der = cx
        .state
        .hsm
        .run(move |hsm, s| hsm.generate_key_pair(s, spec, ids.0.as_bytes(), ids.1.as_bytes()))
        .await?;
    let (format, material) = match &der.pkcs1 {
        Some(pkcs1) => (KeyFormatType::PKCS_1, pkcs1.clone()),
        None => (KeyFormatType::X_509, der.spki.clone()),
    };
    private.key_format = Some(i64::from(format.0));
    public.key_format = Some(i64::from(format.0));
    public.public_material = Some(der.spki);
    public_attrs.push(Attribute::new(
        names::DIGEST,
        Value::Structure(vec![
            Ttlv::new(Tag::HASHING_ALGORITHM, Value::Enumeration(HashingAlgorithm::SHA_256.0)),
            Ttlv::new(
                Tag::DIGEST_VALUE,
                Value::ByteString(sha2::Sha256::digest(&material).to_vec()),
            ),
            Ttlv::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(format.0)),
        ]),
    ));
    private_attrs.push(super::rekey::link(LinkType::PUBLIC_KEY_LINK, &public_id));
    public_attrs.push(super::rekey::link(LinkType::PRIVATE_KEY_LINK, &private_id));
    let stored = cx
        .state
        .store
        .insert_pair(
            NewObject { row: private, attributes: &private_attrs },
            NewObject { row: public, attributes: &public_attrs },
        )
        .await;
    if let Err(e) = stored {
        // Keep the HSM free of keys nothing refers to.
        let ids = (private_id.clone(), public_id.clone());
        let _ = cx
            .state
            .hsm
            .run(move |hsm, s| {
                hsm.destroy_by_id(s, ids.0.as_bytes())?;
                hsm.destroy_by_id(s, ids.1.as_bytes())
            })
            .await;
        return Err(e.into());
    }
    Ok(Outcome::new(create_key_pair::response(&private_id, &public_id), Some(private_id)))
}
