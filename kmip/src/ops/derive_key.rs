//! Derive Key (KMIP 1.4 §4.6, KMIP 2.1 §6.1.12): a Symmetric Key or Secret Data object
//! derived from managed keys or Secret Data by a Derivation Method (KMIP 1.4 §9.1.3.2.21).

use super::encrypt::CryptographicParameters;
use crate::attributes::{Attribute, read_attributes};
use crate::enums::{DerivationMethod, ObjectType};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Derivation Parameters (KMIP 1.4 Tables 182 and 183, KMIP 2.1 §7.8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivationParameters {
    /// Cryptographic Parameters: the PRF, or the cipher and mode of ENCRYPT.
    pub parameters: Option<CryptographicParameters>,
    /// Initialization Vector (ENCRYPT in CBC mode, the feedback mode's K(0)).
    pub iv: Option<Vec<u8>>,
    /// Derivation Data: what is encrypted, hashed or MACed; for SP 800-108 methods,
    /// Label ‖ 0x00 ‖ Context.
    pub data: Option<Vec<u8>>,
    /// Salt (PBKDF2, HKDF).
    pub salt: Option<Vec<u8>>,
    /// Iteration Count (PBKDF2).
    pub iteration_count: Option<i32>,
}

impl DerivationParameters {
    /// Reads a Derivation Parameters structure.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, FieldError> {
        let bytes = |tag| super::opt_bytes(item, tag);
        Ok(DerivationParameters {
            parameters: super::opt_parameters(item)?,
            iv: bytes(Tag::INITIALIZATION_VECTOR)?,
            data: bytes(Tag::DERIVATION_DATA)?,
            salt: bytes(Tag::SALT)?,
            iteration_count: item.find(Tag::ITERATION_COUNT).map(Ttlv::as_i32).transpose()?,
        })
    }
}

/// Derive Key request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Object Type of the derived object (Symmetric Key or Secret Data).
    pub object_type: ObjectType,
    /// The objects to derive from, in order (the first is the derivation key).
    pub unique_identifiers: Vec<String>,
    /// Derivation Method.
    pub method: DerivationMethod,
    /// Derivation Parameters.
    pub parameters: DerivationParameters,
    /// Attributes of the derived object (1.x Template-Attribute or 2.x Attributes).
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let unique_identifiers = payload
            .find_all(Tag::UNIQUE_IDENTIFIER)
            .map(|t| t.as_text().map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        if unique_identifiers.is_empty() {
            return Err(FieldError::Missing { parent: payload.tag, tag: Tag::UNIQUE_IDENTIFIER });
        }
        Ok(Request {
            object_type: ObjectType(payload.require(Tag::OBJECT_TYPE)?.as_enum()?),
            unique_identifiers,
            method: DerivationMethod(payload.require(Tag::DERIVATION_METHOD)?.as_enum()?),
            parameters: DerivationParameters::from_ttlv(
                payload.require(Tag::DERIVATION_PARAMETERS)?,
            )?,
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        })
    }
}

/// Encodes the response payload: the derived object's Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::Value;

    fn payload(uids: &[&str], params: Vec<Ttlv>) -> Ttlv {
        let mut children =
            vec![Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(ObjectType::SECRET_DATA.0))];
        children.extend(uids.iter().map(|u| super::super::uid_item(u)));
        children.push(Ttlv::new(
            Tag::DERIVATION_METHOD,
            Value::Enumeration(DerivationMethod::PBKDF2.0),
        ));
        children.push(Ttlv::structure(Tag::DERIVATION_PARAMETERS, params));
        Ttlv::structure(Tag::REQUEST_PAYLOAD, children)
    }

    #[test]
    fn reads_every_base_object_and_the_pbkdf2_parameters() {
        let req = Request::from_ttlv(&payload(
            &["a", "b"],
            vec![
                Ttlv::new(Tag::SALT, Value::ByteString(b"salt".to_vec())),
                Ttlv::new(Tag::ITERATION_COUNT, Value::Integer(4096)),
            ],
        ))
        .unwrap();
        assert_eq!(req.unique_identifiers, ["a", "b"]);
        assert_eq!(req.method, DerivationMethod::PBKDF2);
        assert_eq!(req.parameters.salt.as_deref(), Some(&b"salt"[..]));
        assert_eq!(req.parameters.iteration_count, Some(4096));
        assert_eq!(req.parameters.data, None);
    }

    #[test]
    fn needs_a_base_object_and_parameters() {
        assert_eq!(
            Request::from_ttlv(&payload(&[], vec![])),
            Err(FieldError::Missing { parent: Tag::REQUEST_PAYLOAD, tag: Tag::UNIQUE_IDENTIFIER })
        );
        let mut p = payload(&["a"], vec![]);
        if let Value::Structure(c) = &mut p.value {
            c.retain(|t| t.tag != Tag::DERIVATION_PARAMETERS);
        }
        assert_eq!(
            Request::from_ttlv(&p),
            Err(FieldError::Missing {
                parent: Tag::REQUEST_PAYLOAD,
                tag: Tag::DERIVATION_PARAMETERS
            })
        );
    }
}
