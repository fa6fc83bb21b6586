//! Create Key Pair and Re-key Key Pair: RSA (2048, 3072, 4096) and EC (P-256, P-384)
//! pairs generated in the HSM.
//! The private key stays there (non-extractable, CKA_ID = its object id); the public key is
//! also kept as SubjectPublicKeyInfo for Get. The two objects link to each other.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{CryptographicAlgorithm, KeyFormatType, LinkType, ObjectType, State};
use kmip::ops::{create_key_pair, rekey_key_pair};
use kmip::{Tag, Value};
use sha2::Digest as _;

use super::{OpCtx, Outcome};
use crate::hsm::PairSpec;
use crate::kmip_server::error::OpError;
use crate::store::{NewObject, ObjectRow, Replacement};

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

/// A key pair generated in the HSM, its two objects not stored yet.
struct Pair {
    private: ObjectRow,
    private_attrs: Vec<Attribute>,
    public: ObjectRow,
    public_attrs: Vec<Attribute>,
}

/// Generates a pair as `private_attrs` and `public_attrs` (which name its algorithm and
/// length) describe, and links the two halves.
async fn generate(
    cx: &OpCtx<'_>,
    private_attrs: Vec<Attribute>,
    public_attrs: Vec<Attribute>,
) -> Result<Pair, OpError> {
    let all: Vec<Attribute> = private_attrs.iter().chain(&public_attrs).cloned().collect();
    let (spec, algorithm, bits) = spec(&all)?;
    // Shor's algorithm breaks RSA and elliptic-curve keys.
    if super::create::must_be_quantum_safe(&all) {
        return Err(OpError::NotQuantumSafe("RSA and elliptic-curve keys are not"));
    }
    let private_attrs = with_defaults(private_attrs, algorithm, bits);
    let public_attrs = with_defaults(public_attrs, algorithm, bits);
    let (mut private, mut private_attrs) =
        super::register::new_object(cx, ObjectType::PRIVATE_KEY, private_attrs)?;
    let (mut public, mut public_attrs) =
        super::register::new_object(cx, ObjectType::PUBLIC_KEY, public_attrs)?;
    super::create::generated_here(cx, &mut private_attrs);
    super::create::generated_here(cx, &mut public_attrs);
    let ids = (private.id.clone(), public.id.clone());
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
    let digest = sha2::Sha256::digest(&material).to_vec();
    public_attrs.push(super::register::digest_attribute(Some(digest), Some(format)));
    // The private key's material never leaves the HSM, so the server has no Digest Value
    // to give; KMIP 1.4 §3.17 then has the Digest name only the algorithm and format.
    private_attrs.push(super::register::digest_attribute(None, Some(format)));
    private_attrs.push(super::rekey::link(LinkType::PUBLIC_KEY_LINK, &public.id));
    public_attrs.push(super::rekey::link(LinkType::PRIVATE_KEY_LINK, &private.id));
    Ok(Pair { private, private_attrs, public, public_attrs })
}

/// Takes a pair out of the HSM again when its objects could not be stored: no key there
/// that nothing refers to.
async fn forget(cx: &OpCtx<'_>, pair: &Pair) {
    let ids = (pair.private.id.clone(), pair.public.id.clone());
    let _ = cx
        .state
        .hsm
        .run(move |hsm, s| {
            hsm.destroy_by_id(s, ids.0.as_bytes())?;
            hsm.destroy_by_id(s, ids.1.as_bytes())
        })
        .await;
}

/// One half's attributes: the common ones it does not give itself, then its own (KMIP 1.4
/// §4.2: "the Private Key Template-Attribute and the Public Key Template-Attribute take
/// precedence over the Common Template-Attribute").
fn half_attributes(common: &[Attribute], own: &[Attribute]) -> Vec<Attribute> {
    let given = |name: &str| own.iter().any(|a| a.name == name);
    common.iter().filter(|a| !given(&a.name)).chain(own).cloned().collect()
}

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: create_key_pair::Request,
) -> Result<Outcome, OpError> {
    let private_attrs = half_attributes(&req.common, &req.private);
    let public_attrs = half_attributes(&req.common, &req.public);
    let pair = generate(cx, private_attrs, public_attrs).await?;
    let stored = cx
        .state
        .store
        .insert_pair(
            NewObject { row: pair.private.clone(), attributes: &pair.private_attrs },
            NewObject { row: pair.public.clone(), attributes: &pair.public_attrs },
        )
        .await;
    if let Err(e) = stored {
        forget(cx, &pair).await;
        return Err(e.into());
    }
    let (private_id, public_id) = (&pair.private.id, &pair.public.id);
    Ok(Outcome::new(create_key_pair::response(private_id, public_id), Some(private_id.clone())))
}

/// Re-key Key Pair (KMIP 1.4 §4.5): a new pair of the same kind generated in the HSM; each
/// new half takes over its predecessor's attributes and names, with dates shifted by the
/// Offset, and each old and new half link to each other.
pub(crate) async fn rekey(
    cx: &OpCtx<'_>,
    req: rekey_key_pair::Request,
) -> Result<Outcome, OpError> {
    let old_private_id = cx.target(req.private_key_unique_identifier)?;
    let old_private = cx.load(&old_private_id).await?;
    if old_private.object_type != i64::from(ObjectType::PRIVATE_KEY.0) {
        return Err(OpError::Invalid("Re-key Key Pair names the pair's private key"));
    }
    if matches!(
        super::effective_state(&old_private, cx.now),
        State::DESTROYED | State::DESTROYED_COMPROMISED
    ) {
        return Err(OpError::Destroyed(old_private_id));
    }
    let private_stored = cx.state.store.attributes(&old_private_id).await?;
    let old_public_id = linked(&private_stored, LinkType::PUBLIC_KEY_LINK)
        .ok_or(OpError::Invalid("the private key has no Public Key Link"))?;
    let old_public = cx.load(&old_public_id).await?;
    let public_stored = cx.state.store.attributes(&old_public_id).await?;
    let private_rotation = super::rekey::rotation_attributes(&private_stored, cx.now);
    let public_rotation = super::rekey::rotation_attributes(&public_stored, cx.now);
    let keys = req.keys;
    let requested = |own: &[Attribute]| half_attributes(&keys.common, own);
    let private_attrs = super::rekey::replacement_attributes(
        cx,
        &old_private,
        private_stored,
        requested(&keys.private),
        req.offset,
    )?;
    let public_attrs = super::rekey::replacement_attributes(
        cx,
        &old_public,
        public_stored,
        requested(&keys.public),
        req.offset,
    )?;
    let mut pair = generate(cx, private_attrs, public_attrs).await?;
    // The new pair is the old pair's owner's, whoever re-keys it: a grant of Re-key must
    // not become access to the new keys.
    pair.private.owner.clone_from(&old_private.owner);
    pair.public.owner.clone_from(&old_public.owner);
    pair.private_attrs.push(super::rekey::link(LinkType::REPLACED_OBJECT_LINK, &old_private_id));
    pair.public_attrs.push(super::rekey::link(LinkType::REPLACED_OBJECT_LINK, &old_public_id));
    let (new_private, old_private_replaced) = private_rotation;
    let (new_public, old_public_replaced) = public_rotation;
    pair.private_attrs.extend(new_private);
    pair.public_attrs.extend(new_public);
    let to_private = super::rekey::link(LinkType::REPLACEMENT_OBJECT_LINK, &pair.private.id);
    let to_public = super::rekey::link(LinkType::REPLACEMENT_OBJECT_LINK, &pair.public.id);
    let replaced = [
        Replacement {
            new: &pair.private,
            new_attributes: &pair.private_attrs,
            old: &old_private,
            old_link: &to_private,
            old_replaced: &old_private_replaced,
        },
        Replacement {
            new: &pair.public,
            new_attributes: &pair.public_attrs,
            old: &old_public,
            old_link: &to_public,
            old_replaced: &old_public_replaced,
        },
    ];
    if let Err(e) = cx.state.store.rekey(&replaced, cx.now).await {
        forget(cx, &pair).await;
        return Err(e.into());
    }
    let (private_id, public_id) = (&pair.private.id, &pair.public.id);
    Ok(Outcome::new(create_key_pair::response(private_id, public_id), Some(private_id.clone())))
}

/// The object a Link of `link_type` among `attrs` names.
pub(crate) fn linked(attrs: &[Attribute], link_type: LinkType) -> Option<String> {
    attrs.iter().filter(|a| a.name == "Link").find_map(|a| match &a.value {
        Value::Structure(items) => {
            let of_type = items
                .iter()
                .any(|i| i.tag == Tag::LINK_TYPE && i.value == Value::Enumeration(link_type.0));
            let target = items.iter().find(|i| i.tag == Tag::LINKED_OBJECT_IDENTIFIER);
            target.filter(|_| of_type).and_then(|t| t.as_text().ok()).map(str::to_owned)
        }
        _ => None,
    })
}
