//! Get: the object with its key material, opened inside the HSM for this response only.

use kmip::attributes::{find, names};
use kmip::enums::{
    usage_mask, BlockCipherMode, CertificateType, CryptographicAlgorithm, EncodingOption,
    KeyFormatType, ObjectType, SecretDataType, State, WrappingMethod,
};
use kmip::objects::{KeyBlock, ManagedObject};
use kmip::ops::get;
use kmip::{Tag, Value};

use super::{effective_state, OpCtx, Outcome};
use crate::hsm::HsmError;
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: get::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    if matches!(effective_state(&row, cx.now), State::DESTROYED | State::DESTROYED_COMPROMISED) {
        return Err(OpError::Destroyed(id));
    }
    let object_type = ObjectType(row.object_type as u32);
    // Private keys live in the HSM and never leave it; only those it cannot hold (DSA)
    // are kept sealed, and those come back.
    if object_type == ObjectType::PRIVATE_KEY && row.sealed_material.is_none() {
        return Err(OpError::NotExtractable);
    }
    // A Sensitive object leaves only wrapped (KMIP 2.1 §4.55); public keys and
    // certificates are never wrapped here, so a Sensitive one does not leave at all.
    let sensitive = super::is_sensitive(&stored);
    let unwrappable = matches!(object_type, ObjectType::PUBLIC_KEY | ObjectType::CERTIFICATE);
    if sensitive && (req.wrapping.is_none() || unwrappable) {
        return Err(OpError::Sensitive(id));
    }
    if object_type == ObjectType::PUBLIC_KEY {
        return public_key(&row, &stored, req.key_format_type);
    }
    if object_type == ObjectType::CERTIFICATE {
        let value = row.public_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
        let object = ManagedObject::Certificate { certificate_type: CertificateType::X_509, value };
        return Ok(Outcome::new(get::response(&id, &object), Some(id.clone())));
    }
    let registered = row.key_format.map(|f| KeyFormatType(f as u32));
    let format = match (object_type, req.key_format_type) {
        (ObjectType::SYMMETRIC_KEY, None)
            if registered == Some(KeyFormatType::TRANSPARENT_SYMMETRIC_KEY) =>
        {
            KeyFormatType::TRANSPARENT_SYMMETRIC_KEY
        }
        (ObjectType::SYMMETRIC_KEY, None | Some(KeyFormatType::RAW)) => KeyFormatType::RAW,
        (ObjectType::SYMMETRIC_KEY, Some(KeyFormatType::TRANSPARENT_SYMMETRIC_KEY)) => {
            KeyFormatType::TRANSPARENT_SYMMETRIC_KEY
        }
        // Secret Data comes back in the format it was registered in (Raw or Opaque).
        (ObjectType::SECRET_DATA, None) if registered == Some(KeyFormatType::RAW) => {
            KeyFormatType::RAW
        }
        (
            ObjectType::SECRET_DATA | ObjectType::OPAQUE_OBJECT,
            None | Some(KeyFormatType::OPAQUE),
        ) => KeyFormatType::OPAQUE,
        (ObjectType::SECRET_DATA, Some(KeyFormatType::RAW)) => KeyFormatType::RAW,
        // A sealed (DSA) private key's material is its PKCS#8, which the codec also spells
        // as Transparent DSA Private Key.
        (ObjectType::PRIVATE_KEY, None) => registered.unwrap_or(KeyFormatType::PKCS_8),
        (
            ObjectType::PRIVATE_KEY,
            Some(f @ (KeyFormatType::PKCS_8 | KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY)),
        ) => f,
        _ => return Err(OpError::KeyFormat("this object cannot be returned in that format")),
    };
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
    let aad = id.clone();
    let material = cx.state.hsm.open_sealed_async(sealed, aad).await?;
    let int = |name| {
        stored.iter().find(|a| a.name == name).and_then(|a| match a.value {
            Value::Integer(v) => Some(v),
            Value::Enumeration(v) => Some(v as i32),
            _ => None,
        })
    };
    let object = match object_type {
        ObjectType::SYMMETRIC_KEY => ManagedObject::SymmetricKey(KeyBlock {
            format,
            algorithm: int(names::CRYPTOGRAPHIC_ALGORITHM)
                .map(|a| CryptographicAlgorithm(a as u32)),
            length: int(names::CRYPTOGRAPHIC_LENGTH).or(Some((material.len() * 8) as i32)),
            material,
            wrapping: None,
        }),
        ObjectType::PRIVATE_KEY => ManagedObject::PrivateKey(KeyBlock {
            format,
            algorithm: int(names::CRYPTOGRAPHIC_ALGORITHM)
                .map(|a| CryptographicAlgorithm(a as u32)),
            length: int(names::CRYPTOGRAPHIC_LENGTH),
            material,
            wrapping: None,
        }),
        ObjectType::SECRET_DATA => ManagedObject::SecretData {
            data_type: SecretDataType(row.sub_type.unwrap_or(1) as u32),
            key_block: KeyBlock { format, material, algorithm: None, length: None, wrapping: None },
        },
        _ => ManagedObject::Opaque { data_type: row.sub_type.unwrap_or(0) as u32, value: material },
    };
    // Fresh turns False once the object has been served, not when serving it failed.
    let outcome = match req.wrapping {
        Some(spec) => {
            // A Sensitive object served to someone else than its owner is wrapped only by
            // a key its owner keeps from them (see `wrapped`).
            let owner_only = (sensitive && row.owner != cx.principal.as_str() && !cx.is_admin())
                .then_some(row.owner.as_str());
            wrapped(cx, &id, object, spec, owner_only).await?
        }
        None => Outcome::new(get::response(&id, &object), Some(id.clone())),
    };
    if row.fresh {
        cx.state.store.mark_served(&id).await?;
    }
    Ok(outcome)
}

/// A key or secret data wrapped by another key the caller may use (KMIP 1.4 §2.1.6): an
/// AES key (AES Key Wrap, in the HSM) or an RSA public key (RSA-OAEP, its parameters the
/// specification's, SHA-1 by default), over the TTLV-encoded Key Value or, with No
/// Encoding, the bare key material.
async fn wrapped(
    cx: &OpCtx<'_>,
    id: &str,
    object: ManagedObject,
    spec: get::WrappingSpecification,
    owner_only: Option<&str>,
) -> Result<Outcome, OpError> {
    let Some(block) = object.key_block() else {
        return Err(OpError::Unsupported("only keys and secret data can be returned wrapped"));
    };
    if spec.method != WrappingMethod::ENCRYPT || spec.mac_or_signature {
        return Err(OpError::Unsupported("keys are wrapped by the Encrypt wrapping method only"));
    }
    let kek = wrapping_key(cx, spec.wrapping_key.clone(), true).await?;
    // Wrapped under a key the caller can undo, a Sensitive key would be theirs (KMIP 2.1
    // §4.55; PKCS#11's CKA_WRAP_WITH_TRUSTED).
    if let Some(owner) = owner_only {
        if !trusted_wrapping_key(cx, &kek, owner).await? {
            return Err(OpError::Denied(id.to_owned()));
        }
    }
    let plain = match spec.encoding {
        EncodingOption::NO_ENCODING => block.material.clone(),
        _ => kmip::ttlv::binary::encode(block.to_ttlv().require(Tag::KEY_VALUE)?),
    };
    let params = spec.parameters.clone().unwrap_or_default();
    let wrapped = match kek.kind {
        Kek::Aes => {
            let mode = params.block_cipher_mode;
            if !matches!(
                mode,
                None | Some(BlockCipherMode::NISTKEYWRAP)
                    | Some(BlockCipherMode::AESKEYWRAPPADDING)
            ) {
                return Err(OpError::Unsupported(
                    "AES keys wrap with AES Key Wrap (NIST SP 800-38F)",
                ));
            }
            kek.with_aes_key(cx, move |hsm, s, k| hsm.aes_key_wrap(s, k, &plain)).await?
        }
        Kek::Rsa => {
            let spki = kek
                .row
                .public_material
                .clone()
                .ok_or_else(|| OpError::Destroyed(kek.id.clone()))?;
            let label = params.p_source.clone().unwrap_or_default();
            super::crypt::oaep_encrypt(cx, spki, &params, label, &plain).await?
        }
    };
    let no_encoding = spec.encoding == EncodingOption::NO_ENCODING;
    let payload =
        get::wrapped_response(id, &object, wrapped, no_encoding, spec.wrapping_data(&kek.id));
    Ok(Outcome::new(payload, Some(id.to_owned())))
}

/// What kind of key wraps or unwraps.
pub(crate) enum Kek {
    /// An AES key: AES Key Wrap either way.
    Aes,
    /// RSA-OAEP: a public key to wrap, a private key (in the HSM) to unwrap.
    Rsa,
}

/// The key a Key Wrapping Specification or Key Wrapping Data names.
pub(crate) struct WrappingKey {
    pub(crate) id: String,
    pub(crate) row: crate::store::ObjectRow,
    pub(crate) kind: Kek,
    /// Whether the key is itself Sensitive (never served in clear).
    pub(crate) sensitive: bool,
}

impl WrappingKey {
    /// Runs `f` in the HSM with this AES key's material, opened from its sealed form.
    pub(crate) async fn with_aes_key<T: Send + 'static>(
        &self,
        cx: &OpCtx<'_>,
        f: impl FnOnce(&crate::hsm::Hsm, &crate::hsm::HsmSession<'_>, &[u8]) -> Result<T, HsmError>
            + Send
            + 'static,
    ) -> Result<T, OpError> {
        let sealed =
            self.row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(self.id.clone()))?;
        let aad = self.id.clone();
        Ok(cx
            .state
            .hsm
            .run(move |hsm, s| {
                let key = hsm.open_sealed(s, &sealed, aad.as_bytes())?;
                f(hsm, s, &key)
            })
            .await?)
    }
}

/// Whether `kek` may wrap a Sensitive key of `owner`'s for a caller who is not its owner:
/// a key of the owner's that the caller cannot unwrap with. A Sensitive AES key (never
/// served in clear) the caller may not Decrypt or unwrap (Register) with; or an RSA public
/// key whose private half is in the HSM and likewise out of the caller's reach.
async fn trusted_wrapping_key(
    cx: &OpCtx<'_>,
    kek: &WrappingKey,
    owner: &str,
) -> Result<bool, OpError> {
    use kmip::enums::Operation;
    let out_of_reach = |row: &crate::store::ObjectRow| {
        let row = row.clone();
        async move {
            Ok::<_, OpError>(
                !cx.may(&row, Operation::DECRYPT).await?
                    && !cx.may(&row, Operation::REGISTER).await?,
            )
        }
    };
    if kek.row.owner != owner {
        return Ok(false);
    }
    match kek.kind {
        Kek::Aes => Ok(kek.sensitive && out_of_reach(&kek.row).await?),
        Kek::Rsa => {
            let attrs = cx.state.store.attributes(&kek.id).await?;
            let private = super::key_pair::linked(&attrs, kmip::enums::LinkType::PRIVATE_KEY_LINK);
            let Some(private) = private else { return Ok(false) };
            let Some(row) = cx.state.store.object(&private).await? else { return Ok(false) };
            Ok(row.owner == owner && row.sealed_material.is_none() && out_of_reach(&row).await?)
        }
    }
}

/// The key a Key Wrapping Specification or Key Wrapping Data names, when the caller may
/// wrap (`wrap`) or unwrap with it now: an AES key, an RSA public key to wrap or an RSA
/// private key to unwrap.
pub(crate) async fn wrapping_key(
    cx: &OpCtx<'_>,
    id: Option<String>,
    wrap: bool,
) -> Result<WrappingKey, OpError> {
    let id = id.ok_or(OpError::Invalid("the Encryption Key Information names no key"))?;
    let (row, attrs) = cx.load_with_attributes(&id).await?;
    let algorithm = match find(&attrs, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => CryptographicAlgorithm(*a),
        _ => CryptographicAlgorithm(0),
    };
    let kind = match (ObjectType(row.object_type as u32), algorithm, wrap) {
        (ObjectType::SYMMETRIC_KEY, CryptographicAlgorithm::AES, _) => Kek::Aes,
        (ObjectType::PUBLIC_KEY, CryptographicAlgorithm::RSA, true)
        | (ObjectType::PRIVATE_KEY, CryptographicAlgorithm::RSA, false) => Kek::Rsa,
        _ => {
            return Err(OpError::Invalid(
                "the wrapping key must be an AES key, or an RSA public key to wrap with and \
                 an RSA private key to unwrap with",
            ))
        }
    };
    let (op, bit) = if wrap {
        ("Wrap Key", usage_mask::WRAP_KEY)
    } else {
        ("Unwrap Key", usage_mask::UNWRAP_KEY)
    };
    // Unwrapping is processing (KMIP 1.4 §3.22): a Deactivated key may still unwrap.
    super::check_use(&row, &attrs, cx.now, op, wrap, bit)?;
    let sensitive = super::is_sensitive(&attrs);
    Ok(WrappingKey { id, row, kind, sensitive })
}

/// A public key as PKCS#1 (RSA) or SubjectPublicKeyInfo (KMIP Key Format Type X.509).
fn public_key(
    row: &crate::store::ObjectRow,
    stored: &[kmip::attributes::Attribute],
    asked: Option<KeyFormatType>,
) -> Result<Outcome, OpError> {
    let spki = row.public_material.clone().ok_or_else(|| OpError::Destroyed(row.id.clone()))?;
    let algorithm =
        stored.iter().find(|a| a.name == names::CRYPTOGRAPHIC_ALGORITHM).and_then(|a| {
            match a.value {
                Value::Enumeration(v) => Some(CryptographicAlgorithm(v)),
                _ => None,
            }
        });
    let length =
        stored.iter().find(|a| a.name == names::CRYPTOGRAPHIC_LENGTH).and_then(|a| match a.value {
            Value::Integer(v) => Some(v),
            _ => None,
        });
    let rsa = algorithm == Some(CryptographicAlgorithm::RSA);
    let dsa = algorithm == Some(CryptographicAlgorithm::DSA);
    let ec = matches!(
        algorithm,
        Some(
            CryptographicAlgorithm::EC
                | CryptographicAlgorithm::ECDSA
                | CryptographicAlgorithm::ECDH
        )
    );
    let default = KeyFormatType(row.key_format.unwrap_or(i64::from(KeyFormatType::X_509.0)) as u32);
    let format = asked.unwrap_or(default);
    let material =
        match format {
            KeyFormatType::X_509 => spki,
            // So do the Transparent DSA and EC Public Keys (`kmip::dsa`, `kmip::ec`).
            KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY if dsa => spki,
            f if ec && kmip::objects::is_transparent_ec_public(f) => spki,
            // Transparent RSA Public Key travels as PKCS#1 until the codec spells out its fields.
            KeyFormatType::PKCS_1 | KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY if rsa => {
                use x509_parser::prelude::FromDer;
                let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki)
                    .map_err(|_| OpError::Invalid("stored public key is not valid DER"))?;
                info.subject_public_key.data.to_vec()
            }
            _ => return Err(OpError::KeyFormat(
                "public keys come as X.509 (SPKI), PKCS#1 or Transparent RSA Public Key for RSA, \
                 Transparent DSA Public Key for DSA, Transparent EC Public Key for EC",
            )),
        };
    let object =
        ManagedObject::PublicKey(KeyBlock { format, material, algorithm, length, wrapping: None });
    Ok(Outcome::new(get::response(&row.id, &object), Some(row.id.clone())))
}
