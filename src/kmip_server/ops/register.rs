//! Register: client-supplied key material, sealed inside the HSM before it is stored.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{
    CertificateType, CryptographicAlgorithm, HashingAlgorithm, KeyFormatType, ObjectType, State,
};
use kmip::objects::ManagedObject;
use kmip::ops::register;
use kmip::{Tag, Ttlv, Value};

use super::{is_server_managed, OpCtx, Outcome};
use crate::hsm::Sealed;
use crate::kmip_server::error::OpError;
use crate::store::{NewObject, ObjectRow};

pub(crate) async fn handle(cx: &OpCtx<'_>, mut req: register::Request) -> Result<Outcome, OpError> {
    if let Some(kb) = req.object.key_block_mut().filter(|kb| kb.wrapping.is_some()) {
        *kb = unwrap_block(cx, kb).await?;
    }
    let mut attrs = req.attributes;
    let (key_format, sub_type) = match &req.object {
        ManagedObject::PublicKey(kb) => {
            let spki = match kb.format {
                // Transparent DSA and EC public keys travel as their SPKI (`kmip::dsa`,
                // `kmip::ec`).
                KeyFormatType::X_509 | KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY => {
                    kb.material.clone()
                }
                f if kmip::objects::is_transparent_ec_public(f) => kb.material.clone(),
                KeyFormatType::PKCS_1 | KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY => {
                    crate::der::rsa_spki(&kb.material)
                }
                _ => {
                    return Err(OpError::KeyFormat(
                        "public keys are registered as X.509 (SubjectPublicKeyInfo), PKCS#1, or \
                         a Transparent RSA, DSA or EC Public Key",
                    ));
                }
            };
            let public = Public::Key { format: kb.format, bytes: kb.material.clone() };
            let id =
                register_public(cx, req.object.object_type(), attrs, spki, public, vec![]).await?;
            return Ok(Outcome::new(register::response(&id), Some(id)));
        }
        ManagedObject::PrivateKey(kb) => return register_private(cx, attrs, kb).await,
        ManagedObject::Certificate { certificate_type, value } => {
            if *certificate_type != CertificateType::X_509 {
                return Err(OpError::Unsupported("only X.509 certificates can be registered"));
            }
            // Clients may repeat the Certificate Type as an attribute; the server sets it.
            if let Some(t) = find(&attrs, names::CERTIFICATE_TYPE) {
                if t.value != Value::Enumeration(certificate_type.0) {
                    return Err(OpError::Invalid("Certificate Type differs from the certificate"));
                }
            }
            attrs.retain(|a| a.name != names::CERTIFICATE_TYPE);
            let (_, cert) = x509_parser::parse_x509_certificate(value)
                .map_err(|_| OpError::Invalid("the certificate is not DER-encoded X.509"))?;
            let spki = cert.public_key().raw.to_vec();
            // The subject's and issuer's common names (KMIP 2.1 §4.16–17).
            let mut names_of = Vec::new();
            for (name, dn) in [
                ("Certificate Subject CN", cert.subject()),
                ("Certificate Issuer CN", cert.issuer()),
            ] {
                if let Some(cn) = dn.iter_common_name().next().and_then(|cn| cn.as_str().ok()) {
                    names_of.push(Attribute::new(name, Value::TextString(cn.to_owned())));
                }
            }
            let public = Public::Certificate(value.clone());
            let id = register_public(cx, req.object.object_type(), attrs, spki, public, names_of)
                .await?;
            return Ok(Outcome::new(register::response(&id), Some(id)));
        }
        ManagedObject::SymmetricKey(kb) => {
            if !matches!(
                kb.format,
                KeyFormatType::RAW
                    | KeyFormatType::TRANSPARENT_SYMMETRIC_KEY
                    | KeyFormatType::OPAQUE
            ) {
                return Err(OpError::KeyFormat(
                    "symmetric keys are registered as Raw or Transparent Symmetric Key",
                ));
            }
            if kb.material.is_empty() {
                return Err(OpError::Invalid("key material is empty"));
            }
            let bits = (kb.material.len() * 8) as i32;
            if let Some(Attribute { value: Value::Integer(l), .. }) =
                find(&attrs, names::CRYPTOGRAPHIC_LENGTH)
            {
                if *l != bits {
                    return Err(OpError::Invalid(
                        "Cryptographic Length differs from the key material",
                    ));
                }
            } else {
                attrs.push(Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)));
            }
            if find(&attrs, names::CRYPTOGRAPHIC_ALGORITHM).is_none() {
                if let Some(a) = kb.algorithm {
                    attrs.push(Attribute::new(
                        names::CRYPTOGRAPHIC_ALGORITHM,
                        Value::Enumeration(a.0),
                    ));
                }
            }
            let chacha =
                [CryptographicAlgorithm::CHACHA20, CryptographicAlgorithm::CHACHA20POLY1305]
                    .map(|a| Value::Enumeration(a.0));
            let algorithm = find(&attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value);
            if algorithm.is_some_and(|a| chacha.contains(a)) && bits != 256 {
                return Err(OpError::Invalid("ChaCha20 keys are 256 bits"));
            }
            // The HSM would refuse any other size only when the key is first used.
            if algorithm == Some(&Value::Enumeration(CryptographicAlgorithm::AES.0))
                && ![128, 192, 256].contains(&bits)
            {
                return Err(OpError::Invalid("AES keys are 128, 192 or 256 bits"));
            }
            // Get returns the key in the format it was registered in.
            let format = match kb.format {
                KeyFormatType::TRANSPARENT_SYMMETRIC_KEY => kb.format,
                _ => KeyFormatType::RAW,
            };
            (format, None)
        }
        ManagedObject::SecretData { data_type, key_block } => {
            if key_block.material.is_empty() {
                return Err(OpError::Invalid("secret data is empty"));
            }
            // Get returns it in the format it was registered in: Raw, or Opaque.
            let format = match key_block.format {
                KeyFormatType::RAW => KeyFormatType::RAW,
                _ => KeyFormatType::OPAQUE,
            };
            (format, Some(i64::from(data_type.0)))
        }
        ManagedObject::Opaque { data_type, value } => {
            if value.is_empty() {
                return Err(OpError::Invalid("opaque data is empty"));
            }
            (KeyFormatType::OPAQUE, Some(i64::from(*data_type)))
        }
    };
    let (row, attributes) = new_object(cx, req.object.object_type(), attrs)?;
    let material = req.object.material().to_vec();
    let aad = row.id.clone();
    let sealed = cx.state.hsm.seal_async(material, aad).await?;
    let mut row = row;
    row.key_format = Some(i64::from(key_format.0));
    let id = store(cx, row, sealed, sub_type, &attributes).await?;
    Ok(Outcome::new(register::response(&id), Some(id)))
}

/// A Key Block that arrived wrapped (KMIP 1.4 §2.1.5), unwrapped in the HSM by the managed
/// key its Key Wrapping Data names (which needs the Unwrap Key usage): an AES key with AES
/// Key Wrap (RFC 3394), or with padding (RFC 5649) as its Block Cipher Mode says, or an RSA
/// private key with RSA-OAEP (its parameters the Key Wrapping Data's, SHA-1 by default).
async fn unwrap_block(
    cx: &OpCtx<'_>,
    kb: &kmip::objects::KeyBlock,
) -> Result<kmip::objects::KeyBlock, OpError> {
    use kmip::enums::{BlockCipherMode, WrappingMethod};
    let Some(spec) = &kb.wrapping else { return Ok(kb.clone()) };
    if spec.method != WrappingMethod::ENCRYPT || spec.mac_or_signature {
        return Err(OpError::Unsupported("keys are unwrapped by the Encrypt wrapping method only"));
    }
    let kek = super::get::wrapping_key(cx, spec.wrapping_key.clone(), false).await?;
    let params = spec.parameters.clone().unwrap_or_default();
    let wrapped = kb.material.clone();
    let plain = match kek.kind {
        super::get::Kek::Aes => {
            let padded = match params.block_cipher_mode {
                None => None,
                Some(BlockCipherMode::NISTKEYWRAP) => Some(false),
                Some(BlockCipherMode::AESKEYWRAPPADDING) => Some(true),
                Some(_) => {
                    return Err(OpError::Unsupported(
                        "AES keys unwrap with AES Key Wrap (SP 800-38F)",
                    ))
                }
            };
            kek.with_aes_key(cx, move |hsm, s, k| hsm.aes_key_unwrap(s, k, &wrapped, padded))
                .await?
        }
        super::get::Kek::Rsa => {
            let label = params.p_source.clone().unwrap_or_default();
            super::crypt::oaep_decrypt(cx, &kek.id, &params, label, wrapped).await?
        }
    };
    Ok(kb.unwrapped(&plain)?)
}

/// The Digest attribute (KMIP 1.4 §3.17): SHA-256, the value when the server has the
/// material (`None` for private keys made in the HSM), and the format it was computed over.
pub(crate) fn digest_attribute(
    digest: Option<Vec<u8>>,
    format: Option<KeyFormatType>,
) -> Attribute {
    let mut fields =
        vec![Ttlv::new(Tag::HASHING_ALGORITHM, Value::Enumeration(HashingAlgorithm::SHA_256.0))];
    if let Some(d) = digest {
        fields.push(Ttlv::new(Tag::DIGEST_VALUE, Value::ByteString(d)));
    }
    if let Some(f) = format {
        fields.push(Ttlv::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(f.0)));
    }
    Attribute::new(names::DIGEST, Value::Structure(fields))
}

/// A registered object with nothing secret in it.
pub(crate) enum Public {
    /// A public key as the client sent it (PKCS#1 or X.509).
    Key { format: KeyFormatType, bytes: Vec<u8> },
    /// An X.509 certificate's DER.
    Certificate(Vec<u8>),
}

/// Registers a public key or an X.509 certificate: nothing secret, so the bytes are stored
/// in clear (SubjectPublicKeyInfo, or the certificate's DER), with the key's algorithm and
/// length, the certificate's type and length, and a Digest of what the client sent. A key
/// is served in the format it was registered in unless Get asks for another. `server_attrs`
/// (links) are added after the client's are checked. Returns the new object's id.
pub(crate) async fn register_public(
    cx: &OpCtx<'_>,
    object_type: ObjectType,
    attrs: Vec<Attribute>,
    spki: Vec<u8>,
    public: Public,
    server_attrs: Vec<Attribute>,
) -> Result<String, OpError> {
    let (row, attributes) = public_object(cx, object_type, attrs, spki, public, server_attrs)?;
    let id = row.id.clone();
    cx.insert(NewObject { row, attributes: &attributes }).await?;
    Ok(id)
}

/// The row and attributes [`register_public`] stores.
pub(crate) fn public_object(
    cx: &OpCtx<'_>,
    object_type: ObjectType,
    mut attrs: Vec<Attribute>,
    spki: Vec<u8>,
    public: Public,
    server_attrs: Vec<Attribute>,
) -> Result<(ObjectRow, Vec<Attribute>), OpError> {
    add_key_facts(&mut attrs, &spki)?;
    let (mut row, mut attributes) = new_object(cx, object_type, attrs)?;
    attributes.extend(server_attrs);
    let (stored, format, digest) = match public {
        Public::Certificate(der) => {
            attributes.push(Attribute::new(
                names::CERTIFICATE_TYPE,
                Value::Enumeration(CertificateType::X_509.0),
            ));
            let length =
                i32::try_from(der.len()).map_err(|_| OpError::Invalid("certificate too long"))?;
            attributes.push(Attribute::new(names::CERTIFICATE_LENGTH, Value::Integer(length)));
            let digest = <sha2::Sha256 as sha2::Digest>::digest(&der).to_vec();
            (der, None, digest)
        }
        Public::Key { format, bytes } => {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes).to_vec();
            (spki, Some(format), digest)
        }
    };
    attributes.push(digest_attribute(Some(digest), format));
    row.key_format = format.map(|f| i64::from(f.0));
    row.public_material = Some(stored);
    Ok((row, attributes))
}

/// Registers a private key: RSA (PKCS#1 or PKCS#8) or EC on P-256/P-384 (PKCS#8 or
/// ECPrivateKey) goes into the HSM as a sensitive, non-extractable token object,
/// exactly like a generated one (Get refuses it, Sign uses it there); the store keeps its
/// public half. A DSA key is kept sealed instead ([`register_dsa_private`]).
async fn register_private(
    cx: &OpCtx<'_>,
    mut attrs: Vec<Attribute>,
    kb: &kmip::objects::KeyBlock,
) -> Result<Outcome, OpError> {
    use crate::der::PrivateKey;
    let rsa = |pkcs1: &[u8]| {
        crate::der::rsa_private_key(pkcs1)
            .map(PrivateKey::Rsa)
            .ok_or(OpError::Invalid("the key material is not a two-prime RSA private key"))
    };
    let ec = |der: &[u8]| {
        crate::der::ec_private_key(der)
            .map(PrivateKey::Ec)
            .ok_or(OpError::Invalid("the key material is not an EC private key on P-256 or P-384"))
    };
    if matches!(kb.format, KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY | KeyFormatType::PKCS_8) {
        if let Some(dsa) = kmip::dsa::DsaKey::from_pkcs8(&kb.material) {
            return register_dsa_private(cx, attrs, kb, &dsa).await;
        }
    }
    let key = match kb.format {
        // The Transparent RSA Private Key's fields arrive as PKCS#1 (`kmip::pkcs1`).
        KeyFormatType::PKCS_1 | KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY => rsa(&kb.material)?,
        KeyFormatType::PKCS_8 => match crate::der::pkcs8_rsa(&kb.material) {
            Some(pkcs1) => rsa(pkcs1)?,
            None => ec(&kb.material)?,
        },
        // Transparent EC Private Keys arrive as ECPrivateKey (`kmip::ec`).
        KeyFormatType::ECPRIVATEKEY => ec(&kb.material)?,
        f if kmip::objects::is_transparent_ec_private(f) => ec(&kb.material)?,
        _ => {
            return Err(OpError::KeyFormat(
                "private keys are registered as PKCS#1, PKCS#8, ECPrivateKey, or a Transparent \
                 RSA, EC or DSA Private Key",
            ))
        }
    };
    let spki = key.spki();
    add_key_facts(&mut attrs, &spki)?;
    let (mut row, mut attributes) = new_object(cx, ObjectType::PRIVATE_KEY, attrs)?;
    // Digest (KMIP 1.4 §3.17) of the material as registered, computed before the key goes
    // into the HSM for good; Transparent keys are digested as the DER they arrive as.
    let digest_format = match kb.format {
        KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY => KeyFormatType::PKCS_1,
        f if kmip::objects::is_transparent_ec_private(f) => KeyFormatType::ECPRIVATEKEY,
        other => other,
    };
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&kb.material).to_vec();
    attributes.push(digest_attribute(Some(digest), Some(digest_format)));
    row.key_format = Some(i64::from(kb.format.0));
    row.public_material = Some(spki);
    let id = row.id.clone();
    let hsm_id = id.clone();
    cx.state.hsm.run(move |hsm, s| hsm.import_private(s, hsm_id.as_bytes(), &key)).await?;
    if let Err(e) = cx.insert(NewObject { row, attributes: &attributes }).await {
        // Not recorded: take the key out of the HSM again rather than leave it orphaned.
        let hsm_id = id.clone();
        let _ = cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await;
        return Err(e);
    }
    Ok(Outcome::new(register::response(&id), Some(id)))
}

/// Registers a DSA private key. The HSM binding (cryptoki) has no DSA key attributes or
/// mechanisms, so the key cannot be held in the HSM as other private keys are: it is kept
/// sealed by the HSM's key, like secret data, and Get returns it (escrow); nothing here
/// signs with it.
async fn register_dsa_private(
    cx: &OpCtx<'_>,
    mut attrs: Vec<Attribute>,
    kb: &kmip::objects::KeyBlock,
    key: &kmip::dsa::DsaKey,
) -> Result<Outcome, OpError> {
    let bits = i32::try_from(key.bits()).unwrap_or(0);
    add_facts(&mut attrs, CryptographicAlgorithm::DSA, bits)?;
    let (mut row, attributes) = new_object(cx, ObjectType::PRIVATE_KEY, attrs)?;
    // Get returns it in the format it was registered in; the material is its PKCS#8.
    row.key_format = Some(i64::from(kb.format.0));
    let material = kb.material.clone();
    let aad = row.id.clone();
    let sealed = cx.state.hsm.seal_async(material, aad).await?;
    let id = store(cx, row, sealed, None, &attributes).await?;
    Ok(Outcome::new(register::response(&id), Some(id)))
}

/// Adds the key's Cryptographic Algorithm and Length (from its SubjectPublicKeyInfo) to the
/// client's attributes, refusing a Length that contradicts the key.
fn add_key_facts(attrs: &mut Vec<Attribute>, spki: &[u8]) -> Result<(), OpError> {
    let (algorithm, bits) = public_key_facts(spki)?;
    add_facts(attrs, algorithm, bits)
}

/// Adds a key's Cryptographic Algorithm and Length to the client's attributes, refusing a
/// Length that contradicts the key.
fn add_facts(
    attrs: &mut Vec<Attribute>,
    algorithm: CryptographicAlgorithm,
    bits: i32,
) -> Result<(), OpError> {
    match find(attrs, names::CRYPTOGRAPHIC_LENGTH) {
        Some(Attribute { value: Value::Integer(l), .. }) if *l != bits => {
            return Err(OpError::Invalid("Cryptographic Length differs from the key"));
        }
        Some(_) => {}
        None => attrs.push(Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits))),
    }
    if find(attrs, names::CRYPTOGRAPHIC_ALGORITHM).is_none() {
        attrs.push(Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)));
    }
    Ok(())
}

/// The algorithm and size of a SubjectPublicKeyInfo: RSA modulus bits, or the EC curve's.
fn public_key_facts(spki: &[u8]) -> Result<(CryptographicAlgorithm, i32), OpError> {
    use crate::der::{KeyKind, KeyKindError};
    match crate::der::key_kind(spki) {
        Ok(KeyKind::Rsa(bits)) => {
            Ok((CryptographicAlgorithm::RSA, i32::try_from(bits).unwrap_or(0)))
        }
        Ok(KeyKind::Ec(bits)) => Ok((CryptographicAlgorithm::EC, i32::from(bits))),
        Ok(KeyKind::Dsa(bits)) => {
            Ok((CryptographicAlgorithm::DSA, i32::try_from(bits).unwrap_or(0)))
        }
        Ok(KeyKind::Ed25519) => Err(OpError::Unsupported("RSA, EC and DSA public keys only")),
        Err(KeyKindError::Unsupported(why)) => Err(OpError::Unsupported(why)),
        Err(KeyKindError::Invalid(why)) => Err(OpError::Invalid(why)),
    }
}

/// Checks the client's attributes and builds the row of a new object owned by the caller.
pub(crate) fn new_object(
    cx: &OpCtx<'_>,
    object_type: ObjectType,
    attrs: Vec<Attribute>,
) -> Result<(ObjectRow, Vec<Attribute>), OpError> {
    let (attrs, imported) = match &cx.import {
        Some(_) => imported_lifecycle(attrs)?,
        None => (attrs, Imported::default()),
    };
    let (mut attrs, activation, deactivation) = super::create::split_dates(attrs);
    // Some 1.x clients repeat the Object Type as an attribute; it must agree.
    if let Some(t) = find(&attrs, names::OBJECT_TYPE) {
        if t.value != Value::Enumeration(object_type.0) {
            return Err(OpError::Invalid("Object Type attribute differs from the request"));
        }
    }
    attrs.retain(|a| a.name != names::OBJECT_TYPE);
    super::check_names(&attrs)?;
    // Fresh (KMIP 2.1 §4.24) is the server's, but Register may say an object is not fresh.
    let mut fresh = imported.fresh.unwrap_or(true);
    if cx.operation == kmip::enums::Operation::REGISTER {
        if let Some(a) = find(&attrs, names::FRESH) {
            fresh = bool_value(a, "Fresh is a Boolean")?;
        }
        attrs.retain(|a| a.name != names::FRESH);
    }
    attrs.retain(|a| !super::is_read_off_object(&a.name));
    if let Some(a) = attrs.iter().find(|a| is_server_managed(&a.name)) {
        return Err(OpError::ReadOnly(a.name.clone()));
    }
    // Sensitive (KMIP 2.1 §4.55) is the client's to set; Always Sensitive records whether
    // it has been True from the start.
    let sensitive = match find(&attrs, names::SENSITIVE) {
        None => false,
        Some(a) => bool_value(a, "Sensitive is a Boolean")?,
    };
    attrs.push(Attribute::new(names::ALWAYS_SENSITIVE, Value::Boolean(sensitive)));
    // Usage Limits (KMIP 1.4 §3.21): the Count starts at the Total unless the client says.
    if let Some(a) = attrs.iter_mut().find(|a| a.name == names::USAGE_LIMITS) {
        use kmip::enums::UsageLimitsUnit as Unit;
        let limits = kmip::attributes::UsageLimits::from_value(&a.value)?;
        if limits.total <= 0
            || !(0..=limits.total).contains(&limits.count)
            || ![Unit::BYTE, Unit::OBJECT].contains(&limits.unit)
        {
            return Err(OpError::Invalid(
                "Usage Limits need a positive Total, a Count within it, and a Unit of Byte or Object",
            ));
        }
        a.value = limits.to_value();
    }
    // Activation in the past or now makes the object Active at once (KMIP 1.4 §3.24).
    let state = match (imported.state, activation) {
        (Some(s), _) => s,
        (None, Some(d)) if d <= cx.now => State::ACTIVE,
        _ => State::PRE_ACTIVE,
    };
    let row = ObjectRow {
        id: cx.import.as_ref().map_or_else(crate::util::uuid_v4, |i| i.id.clone()),
        object_type: i64::from(object_type.0),
        owner: cx.principal.as_str().to_owned(),
        state: i64::from(state.0),
        sub_type: None,
        key_format: Some(i64::from(KeyFormatType::RAW.0)),
        sealed_material: None,
        kek_label: None,
        public_material: None,
        initial_date: imported.initial_date.unwrap_or(cx.now),
        activation_date: activation,
        deactivation_date: deactivation,
        destroy_date: imported.destroy_date,
        compromise_date: imported.compromise_date,
        compromise_occurrence_date: imported.compromise_occurrence_date,
        revocation_reason: imported.revocation_reason,
        revocation_message: imported.revocation_message,
        last_change_date: imported.last_change_date.unwrap_or(cx.now),
        archived: false,
        fresh,
        version: 0,
    };
    Ok((row, attrs))
}

/// A Boolean attribute's value; `why` when it is not one.
fn bool_value(a: &Attribute, why: &'static str) -> Result<bool, OpError> {
    match a.value {
        Value::Boolean(b) => Ok(b),
        _ => Err(OpError::Invalid(why)),
    }
}

/// The lifecycle an imported object brings along (kept in columns, not attributes).
#[derive(Default)]
struct Imported {
    state: Option<State>,
    initial_date: Option<i64>,
    last_change_date: Option<i64>,
    destroy_date: Option<i64>,
    compromise_date: Option<i64>,
    compromise_occurrence_date: Option<i64>,
    revocation_reason: Option<i64>,
    revocation_message: Option<String>,
    fresh: Option<bool>,
}

/// Splits an Import's attributes (KMIP 2.1 §6.1.25: all set as supplied): the lifecycle
/// ones the row keeps, and the rest; what the server reads off the object itself (Digest,
/// lengths, Sensitive, ...) is computed again rather than taken.
fn imported_lifecycle(attrs: Vec<Attribute>) -> Result<(Vec<Attribute>, Imported), OpError> {
    let mut out = Imported::default();
    let mut rest = Vec::with_capacity(attrs.len());
    for a in attrs {
        let date = || match a.value {
            Value::DateTime(d) => Ok(d),
            _ => Err(OpError::Invalid("date attributes are Date-Time values")),
        };
        match a.name.as_str() {
            names::STATE => match a.value {
                // Pre-Active (1) to Destroyed Compromised (6): an object in no state
                // could never be revoked or destroyed.
                Value::Enumeration(s @ 1..=6) => out.state = Some(State(s)),
                _ => return Err(OpError::Invalid("State is one of the six states")),
            },
            names::INITIAL_DATE => out.initial_date = Some(date()?),
            names::LAST_CHANGE_DATE => out.last_change_date = Some(date()?),
            names::DESTROY_DATE => out.destroy_date = Some(date()?),
            names::COMPROMISE_DATE => out.compromise_date = Some(date()?),
            names::COMPROMISE_OCCURRENCE_DATE => out.compromise_occurrence_date = Some(date()?),
            names::FRESH => out.fresh = Some(bool_value(&a, "Fresh is a Boolean")?),
            names::REVOCATION_REASON => {
                let item = Ttlv::new(Tag::REVOCATION_REASON, a.value.clone());
                out.revocation_reason =
                    Some(i64::from(item.require(Tag::REVOCATION_REASON_CODE)?.as_enum()?));
                out.revocation_message = item
                    .find(Tag::REVOCATION_MESSAGE)
                    .map(|m| m.as_text().map(str::to_owned))
                    .transpose()?;
            }
            name if is_server_managed(name) => {}
            _ => rest.push(a),
        }
    }
    Ok((rest, out))
}

/// Puts sealed material into a new object's row and adds its Digest attribute.
pub(crate) fn prepare(
    mut row: ObjectRow,
    sealed: Sealed,
    sub_type: Option<i64>,
    mut attributes: Vec<Attribute>,
) -> (ObjectRow, Vec<Attribute>) {
    // Digest (KMIP 1.4 §3.17): SHA-256 over the material in its stored format.
    let format = row.key_format.unwrap_or(i64::from(KeyFormatType::RAW.0)) as u32;
    attributes.push(digest_attribute(Some(sealed.digest), Some(KeyFormatType(format))));
    row.sealed_material = Some(sealed.bytes);
    row.kek_label = Some(sealed.kek_label.to_owned());
    row.sub_type = sub_type;
    (row, attributes)
}

/// Stores a new object with its sealed material; returns its id once durable.
pub(crate) async fn store(
    cx: &OpCtx<'_>,
    row: ObjectRow,
    sealed: Sealed,
    sub_type: Option<i64>,
    attributes: &[Attribute],
) -> Result<String, OpError> {
    let (row, attributes) = prepare(row, sealed, sub_type, attributes.to_vec());
    let id = row.id.clone();
    cx.insert(NewObject { row, attributes: &attributes }).await?;
    Ok(id)
}
