//! Managed objects as they travel in Register requests and Get responses: Symmetric Key,
//! Secret Data and Opaque Object (KMIP 1.4 §2.2, KMIP 2.1 §2.2), with their Key Block
//! (KMIP 2.1 §2.1.3).

use crate::enums::{
    CertificateType, CryptographicAlgorithm, KeyFormatType, ObjectType, SecretDataType,
};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// The parts of a Key Block (KMIP 2.1 §2.1.3) that carry unwrapped key material.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBlock {
    /// Key Format Type.
    pub format: KeyFormatType,
    /// The key bytes (Raw or Opaque material, or the Key of a Transparent Symmetric Key);
    /// for the Transparent RSA formats, the key's PKCS#1 DER (see [`crate::pkcs1`]).
    pub material: Vec<u8>,
    /// Cryptographic Algorithm.
    pub algorithm: Option<CryptographicAlgorithm>,
    /// Cryptographic Length, in bits.
    pub length: Option<i32>,
    /// Key Wrapping Data (KMIP 1.4 §2.1.5) of a block that arrived wrapped: `material` then
    /// holds the wrapped bytes until [`KeyBlock::unwrapped`] replaces them. Never encoded.
    pub wrapping: Option<crate::ops::get::WrappingSpecification>,
}

// Key material never appears in logs.
impl std::fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBlock")
            .field("format", &self.format)
            .field("material", &format_args!("<{} bytes>", self.material.len()))
            .field("algorithm", &self.algorithm)
            .field("length", &self.length)
            .field("wrapped", &self.wrapping.is_some())
            .finish()
    }
}

impl KeyBlock {
    /// Reads a Key Block structure.
    pub fn from_ttlv(kb: &Ttlv) -> Result<Self, FieldError> {
        let format = KeyFormatType(kb.require(Tag::KEY_FORMAT_TYPE)?.as_enum()?);
        let algorithm =
            kb.find(Tag::CRYPTOGRAPHIC_ALGORITHM).map(|t| t.as_enum().map(CryptographicAlgorithm));
        let algorithm = algorithm.transpose()?;
        let length = kb.find(Tag::CRYPTOGRAPHIC_LENGTH).map(Ttlv::as_i32).transpose()?;
        // Wrapped (KMIP 1.4 §2.1.5): the whole TTLV-encoded Key Value is a Byte String, or
        // with No Encoding the Key Material inside the Key Value is.
        if let Some(data) = kb.find(Tag::KEY_WRAPPING_DATA) {
            let wrapping = crate::ops::get::WrappingSpecification::from_ttlv(data)?;
            let kv = kb.require(Tag::KEY_VALUE)?;
            let material = match &kv.value {
                Value::ByteString(b) => b.clone(),
                _ => kv.require(Tag::KEY_MATERIAL)?.as_bytes()?.to_vec(),
            };
            return Ok(KeyBlock { format, material, algorithm, length, wrapping: Some(wrapping) });
        }
        let km = kb.require(Tag::KEY_VALUE)?.require(Tag::KEY_MATERIAL)?;
        let material = match format {
            // Byte-string formats (KMIP 2.1 §11.21): raw, opaque, and DER encodings.
            KeyFormatType::RAW
            | KeyFormatType::OPAQUE
            | KeyFormatType::PKCS_1
            | KeyFormatType::PKCS_8
            | KeyFormatType::ECPRIVATEKEY
            | KeyFormatType::X_509 => km.as_bytes()?.to_vec(),
            KeyFormatType::TRANSPARENT_SYMMETRIC_KEY => km.require(Tag::KEY)?.as_bytes()?.to_vec(),
            KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY => transparent_rsa(km, false)?,
            KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY => transparent_rsa(km, true)?,
            KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY => transparent_dsa(km, Tag::Y)?.to_spki(),
            f if is_transparent_ec_public(f) => transparent_ec(km)?,
            f if is_transparent_ec_private(f) => transparent_ec_private(km)?,
            KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY => transparent_dsa(km, Tag::X)?.to_pkcs8(),
            _ => {
                return Err(FieldError::Invalid {
                    tag: Tag::KEY_FORMAT_TYPE,
                    reason: "only Raw, Opaque, PKCS#1, PKCS#8, ECPrivateKey, X.509, \
                             Transparent Symmetric Key, Transparent RSA, Transparent DSA and \
                             Transparent EC formats are accepted",
                });
            }
        };
        Ok(KeyBlock { format, material, algorithm, length, wrapping: None })
    }

    /// The block with its material unwrapped: `plain` is what unwrapping `material` gave,
    /// the Key Material itself with No Encoding, else the TTLV-encoded Key Value (KMIP 1.4
    /// §2.1.5), read as the format says.
    pub fn unwrapped(&self, plain: &[u8]) -> Result<KeyBlock, FieldError> {
        use crate::enums::EncodingOption;
        let no_encoding =
            self.wrapping.as_ref().is_some_and(|w| w.encoding == EncodingOption::NO_ENCODING);
        let key_value = if no_encoding {
            Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(plain.to_vec()))],
            )
        } else {
            let limits = crate::ttlv::binary::Limits::default();
            let kv =
                crate::ttlv::binary::decode(plain, &limits).map_err(|_| FieldError::Invalid {
                    tag: Tag::KEY_VALUE,
                    reason: "the unwrapped Key Value is not TTLV",
                })?;
            if kv.tag != Tag::KEY_VALUE {
                return Err(FieldError::Invalid {
                    tag: Tag::KEY_VALUE,
                    reason: "the unwrapped bytes are not a Key Value",
                });
            }
            kv
        };
        let mut block =
            vec![Ttlv::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(self.format.0)), key_value];
        if let Some(a) = self.algorithm {
            block.push(Ttlv::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a.0)));
        }
        if let Some(l) = self.length {
            block.push(Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(l)));
        }
        KeyBlock::from_ttlv(&Ttlv::structure(Tag::KEY_BLOCK, block))
    }

    /// Encodes a Key Block structure.
    pub fn to_ttlv(&self) -> Ttlv {
        let transparent_rsa = |fields: &[Tag], private| {
            let integers = crate::pkcs1::decode(&self.material, private).unwrap_or_default();
            let items = fields.iter().zip(integers).map(|(tag, magnitude)| {
                Ttlv::new(*tag, Value::BigInteger(big_integer(&magnitude)))
            });
            Ttlv::structure(Tag::KEY_MATERIAL, items.collect())
        };
        let transparent_dsa = |key: Option<crate::dsa::DsaKey>, value: Tag| {
            let key = key.unwrap_or_default();
            let items = [(Tag::P, key.p), (Tag::Q, key.q), (Tag::G, key.g), (value, key.value)];
            let items = items
                .into_iter()
                .map(|(tag, magnitude)| Ttlv::new(tag, Value::BigInteger(big_integer(&magnitude))));
            Ttlv::structure(Tag::KEY_MATERIAL, items.collect())
        };
        let no_curve = (crate::enums::RecommendedCurve(0), Vec::new());
        let material = match self.format {
            KeyFormatType::TRANSPARENT_SYMMETRIC_KEY => Ttlv::structure(
                Tag::KEY_MATERIAL,
                vec![Ttlv::new(Tag::KEY, Value::ByteString(self.material.clone()))],
            ),
            KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY => {
                transparent_rsa(&crate::pkcs1::PUBLIC_FIELDS, false)
            }
            KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY => {
                transparent_rsa(&crate::pkcs1::PRIVATE_FIELDS, true)
            }
            KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY => {
                transparent_dsa(crate::dsa::DsaKey::from_spki(&self.material), Tag::Y)
            }
            KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY => {
                transparent_dsa(crate::dsa::DsaKey::from_pkcs8(&self.material), Tag::X)
            }
            f if is_transparent_ec_public(f) => {
                let (curve, q) = crate::ec::from_spki(&self.material).unwrap_or(no_curve.clone());
                Ttlv::structure(
                    Tag::KEY_MATERIAL,
                    vec![
                        Ttlv::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(curve.0)),
                        Ttlv::new(Tag::Q_STRING, Value::ByteString(q)),
                    ],
                )
            }
            f if is_transparent_ec_private(f) => {
                let (curve, d) = crate::ec::private_from_der(&self.material).unwrap_or(no_curve);
                Ttlv::structure(
                    Tag::KEY_MATERIAL,
                    vec![
                        Ttlv::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(curve.0)),
                        Ttlv::new(Tag::D, Value::BigInteger(big_integer(&d))),
                    ],
                )
            }
            _ => Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(self.material.clone())),
        };
        let mut c = vec![
            Ttlv::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(self.format.0)),
            Ttlv::structure(Tag::KEY_VALUE, vec![material]),
        ];
        if let Some(a) = self.algorithm {
            c.push(Ttlv::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a.0)));
        }
        if let Some(l) = self.length {
            c.push(Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(l)));
        }
        Ttlv::structure(Tag::KEY_BLOCK, c)
    }
}

/// The PKCS#1 DER of a Transparent RSA Public or Private Key's Key Material (KMIP 2.1
/// §3.7–3.8); a private key needs every field, for the CRT form.
fn transparent_rsa(km: &Ttlv, private: bool) -> Result<Vec<u8>, FieldError> {
    let fields: &[Tag] =
        if private { &crate::pkcs1::PRIVATE_FIELDS } else { &crate::pkcs1::PUBLIC_FIELDS };
    let mut integers = Vec::with_capacity(fields.len());
    for tag in fields {
        integers.push(magnitude(km, *tag)?);
    }
    Ok(crate::pkcs1::encode(&integers, private))
}

/// Whether `f` is one of the transparent EC public key formats, which share one Key
/// Material (KMIP 1.4 §2.1.7.9, 2.1.7.11, 2.1.7.13; KMIP 2.1 §3.12): Transparent EC,
/// ECDSA, ECDH and ECMQV Public Key.
pub fn is_transparent_ec_public(f: KeyFormatType) -> bool {
    matches!(
        f,
        KeyFormatType::TRANSPARENT_EC_PUBLIC_KEY
            | KeyFormatType::TRANSPARENT_ECDSA_PUBLIC_KEY
            | KeyFormatType::TRANSPARENT_ECDH_PUBLIC_KEY
            | KeyFormatType::TRANSPARENT_ECMQV_PUBLIC_KEY
    )
}

/// Whether `f` is one of the transparent EC private key formats (KMIP 1.4 §2.1.7.8,
/// 2.1.7.10, 2.1.7.12; KMIP 2.1 §3.11): Recommended Curve and D.
pub fn is_transparent_ec_private(f: KeyFormatType) -> bool {
    matches!(
        f,
        KeyFormatType::TRANSPARENT_EC_PRIVATE_KEY
            | KeyFormatType::TRANSPARENT_ECDSA_PRIVATE_KEY
            | KeyFormatType::TRANSPARENT_ECDH_PRIVATE_KEY
            | KeyFormatType::TRANSPARENT_ECMQV_PRIVATE_KEY
    )
}

/// The ECPrivateKey DER of a transparent EC private key's Key Material.
fn transparent_ec_private(km: &Ttlv) -> Result<Vec<u8>, FieldError> {
    let curve = crate::enums::RecommendedCurve(km.require(Tag::RECOMMENDED_CURVE)?.as_enum()?);
    let d = magnitude(km, Tag::D)?;
    crate::ec::private_to_der(curve, d).ok_or(FieldError::Invalid {
        tag: Tag::RECOMMENDED_CURVE,
        reason: "only P-256, P-384 and P-521, with D no longer than the curve's order",
    })
}

/// The SubjectPublicKeyInfo of a transparent EC public key's Key Material: Recommended
/// Curve and Q String.
fn transparent_ec(km: &Ttlv) -> Result<Vec<u8>, FieldError> {
    let curve = crate::enums::RecommendedCurve(km.require(Tag::RECOMMENDED_CURVE)?.as_enum()?);
    let q = km.require(Tag::Q_STRING)?.as_bytes()?;
    crate::ec::to_spki(curve, q).ok_or(FieldError::Invalid {
        tag: Tag::RECOMMENDED_CURVE,
        reason: "only P-256, P-384 and P-521",
    })
}

/// A Transparent DSA Public or Private Key's Key Material (KMIP 2.1 §3.5–3.6): P, Q, G and
/// `value` (Y or X).
fn transparent_dsa(km: &Ttlv, value: Tag) -> Result<crate::dsa::DsaKey, FieldError> {
    Ok(crate::dsa::DsaKey {
        p: magnitude(km, Tag::P)?.to_vec(),
        q: magnitude(km, Tag::Q)?.to_vec(),
        g: magnitude(km, Tag::G)?.to_vec(),
        value: magnitude(km, value)?.to_vec(),
    })
}

/// The Big Integer field `tag` of a transparent key's Key Material, which must not be
/// negative.
fn magnitude(km: &Ttlv, tag: Tag) -> Result<&[u8], FieldError> {
    let Value::BigInteger(b) = &km.require(tag)?.value else {
        return Err(FieldError::Invalid { tag, reason: "must be a Big Integer" });
    };
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        return Err(FieldError::Invalid { tag, reason: "must not be negative" });
    }
    Ok(b)
}

/// A non-negative magnitude as a Big Integer value: a zero byte first when the top bit is
/// set, zero-padded on the left to whole 8-byte words (KMIP 2.1 §9.1.1.4).
fn big_integer(magnitude: &[u8]) -> Vec<u8> {
    let signed = magnitude.len() + usize::from(magnitude.first().is_none_or(|b| b & 0x80 != 0));
    let mut out = vec![0; signed.div_ceil(8) * 8 - magnitude.len()];
    out.extend_from_slice(magnitude);
    out
}

/// A managed object with its material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedObject {
    /// Symmetric Key (KMIP 2.1 §2.2.7).
    SymmetricKey(KeyBlock),
    /// Public Key (KMIP 2.1 §2.2.5).
    PublicKey(KeyBlock),
    /// Private Key (KMIP 2.1 §2.2.3).
    PrivateKey(KeyBlock),
    /// Secret Data (KMIP 2.1 §2.2.6).
    SecretData {
        /// Secret Data Type.
        data_type: SecretDataType,
        /// Key Block.
        key_block: KeyBlock,
    },
    /// Opaque Object (KMIP 2.1 §2.2.4).
    Opaque {
        /// Opaque Data Type.
        data_type: u32,
        /// Opaque Data Value.
        value: Vec<u8>,
    },
    /// Certificate (KMIP 2.1 §2.2.1): a Certificate Type and the certificate's encoding
    /// (DER for X.509).
    Certificate {
        /// Certificate Type.
        certificate_type: CertificateType,
        /// Certificate Value.
        value: Vec<u8>,
    },
}

impl ManagedObject {
    /// The object's Key Block, for the objects that have one (keys and Secret Data).
    pub fn key_block(&self) -> Option<&KeyBlock> {
        match self {
            ManagedObject::SymmetricKey(kb)
            | ManagedObject::PublicKey(kb)
            | ManagedObject::PrivateKey(kb)
            | ManagedObject::SecretData { key_block: kb, .. } => Some(kb),
            _ => None,
        }
    }

    /// The object's Key Block, for the objects that have one (keys and Secret Data).
    pub fn key_block_mut(&mut self) -> Option<&mut KeyBlock> {
        match self {
            ManagedObject::SymmetricKey(kb)
            | ManagedObject::PublicKey(kb)
            | ManagedObject::PrivateKey(kb)
            | ManagedObject::SecretData { key_block: kb, .. } => Some(kb),
            _ => None,
        }
    }

    /// The Object Type of this object.
    pub fn object_type(&self) -> ObjectType {
        match self {
            ManagedObject::SymmetricKey(_) => ObjectType::SYMMETRIC_KEY,
            ManagedObject::PublicKey(_) => ObjectType::PUBLIC_KEY,
            ManagedObject::PrivateKey(_) => ObjectType::PRIVATE_KEY,
            ManagedObject::SecretData { .. } => ObjectType::SECRET_DATA,
            ManagedObject::Opaque { .. } => ObjectType::OPAQUE_OBJECT,
            ManagedObject::Certificate { .. } => ObjectType::CERTIFICATE,
        }
    }

    /// The object's bytes: key material, data or the certificate's encoding.
    pub fn material(&self) -> &[u8] {
        match self {
            ManagedObject::SymmetricKey(kb)
            | ManagedObject::PublicKey(kb)
            | ManagedObject::PrivateKey(kb)
            | ManagedObject::SecretData { key_block: kb, .. } => &kb.material,
            ManagedObject::Opaque { value, .. } | ManagedObject::Certificate { value, .. } => value,
        }
    }

    /// Reads the object of type `object_type` from a Register payload.
    pub fn from_payload(object_type: ObjectType, payload: &Ttlv) -> Result<Self, FieldError> {
        match object_type {
            ObjectType::SYMMETRIC_KEY => Ok(ManagedObject::SymmetricKey(KeyBlock::from_ttlv(
                payload.require(Tag::SYMMETRIC_KEY)?.require(Tag::KEY_BLOCK)?,
            )?)),
            ObjectType::PUBLIC_KEY => Ok(ManagedObject::PublicKey(KeyBlock::from_ttlv(
                payload.require(Tag::PUBLIC_KEY)?.require(Tag::KEY_BLOCK)?,
            )?)),
            ObjectType::PRIVATE_KEY => Ok(ManagedObject::PrivateKey(KeyBlock::from_ttlv(
                payload.require(Tag::PRIVATE_KEY)?.require(Tag::KEY_BLOCK)?,
            )?)),
            ObjectType::CERTIFICATE => {
                let c = payload.require(Tag::CERTIFICATE)?;
                Ok(ManagedObject::Certificate {
                    certificate_type: CertificateType(c.require(Tag::CERTIFICATE_TYPE)?.as_enum()?),
                    value: c.require(Tag::CERTIFICATE_VALUE)?.as_bytes()?.to_vec(),
                })
            }
            ObjectType::SECRET_DATA => {
                let sd = payload.require(Tag::SECRET_DATA)?;
                Ok(ManagedObject::SecretData {
                    data_type: SecretDataType(sd.require(Tag::SECRET_DATA_TYPE)?.as_enum()?),
                    key_block: KeyBlock::from_ttlv(sd.require(Tag::KEY_BLOCK)?)?,
                })
            }
            ObjectType::OPAQUE_OBJECT => {
                let o = payload.require(Tag::OPAQUE_OBJECT)?;
                Ok(ManagedObject::Opaque {
                    data_type: o.require(Tag::OPAQUE_DATA_TYPE)?.as_enum()?,
                    value: o.require(Tag::OPAQUE_DATA_VALUE)?.as_bytes()?.to_vec(),
                })
            }
            _ => Err(FieldError::Invalid {
                tag: Tag::OBJECT_TYPE,
                reason: "only Symmetric Key, Public Key, Private Key, Certificate, Secret Data \
                         and Opaque Object can be registered",
            }),
        }
    }

    /// Encodes the object as it appears in a Get response payload.
    pub fn to_ttlv(&self) -> Ttlv {
        match self {
            ManagedObject::SymmetricKey(kb) => {
                Ttlv::structure(Tag::SYMMETRIC_KEY, vec![kb.to_ttlv()])
            }
            ManagedObject::PublicKey(kb) => Ttlv::structure(Tag::PUBLIC_KEY, vec![kb.to_ttlv()]),
            ManagedObject::PrivateKey(kb) => Ttlv::structure(Tag::PRIVATE_KEY, vec![kb.to_ttlv()]),
            ManagedObject::SecretData { data_type, key_block } => Ttlv::structure(
                Tag::SECRET_DATA,
                vec![
                    Ttlv::new(Tag::SECRET_DATA_TYPE, Value::Enumeration(data_type.0)),
                    key_block.to_ttlv(),
                ],
            ),
            ManagedObject::Opaque { data_type, value } => Ttlv::structure(
                Tag::OPAQUE_OBJECT,
                vec![
                    Ttlv::new(Tag::OPAQUE_DATA_TYPE, Value::Enumeration(*data_type)),
                    Ttlv::new(Tag::OPAQUE_DATA_VALUE, Value::ByteString(value.clone())),
                ],
            ),
            ManagedObject::Certificate { certificate_type, value } => Ttlv::structure(
                Tag::CERTIFICATE,
                vec![
                    Ttlv::new(Tag::CERTIFICATE_TYPE, Value::Enumeration(certificate_type.0)),
                    Ttlv::new(Tag::CERTIFICATE_VALUE, Value::ByteString(value.clone())),
                ],
            ),
        }
    }
}
