//! Typed request and response payloads, one module per operation (KMIP 1.4 §4, KMIP 2.1 §6).
//! Requests read from a Request Payload tree; responses encode the children of a Response
//! Payload for the negotiated protocol version.

pub mod activate;
pub mod add_attribute;
pub mod certify;
pub mod check;
pub mod create;
pub mod create_key_pair;
pub mod delete_attribute;
pub mod derive_key;
pub mod destroy;
pub mod discover_versions;
pub mod encrypt;
pub mod get;
pub mod get_attribute_list;
pub mod get_attributes;
pub mod get_usage_allocation;
pub mod hash;
pub mod import;
pub mod interop;
pub mod locate;
pub mod log;
pub mod mac;
pub mod modify_attribute;
pub mod obtain_lease;
pub mod pkcs11;
pub mod poll;
pub mod query;
pub mod recertify;
pub mod register;
pub mod rekey;
pub mod rekey_key_pair;
pub mod revoke;
pub mod rng;
pub mod set_attribute;
pub mod sign;

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Reads an optional Unique Identifier. In KMIP 2.x it may be an Enumeration (KMIP 2.1
/// §11.58, such as ID Placeholder) instead of text; that means "the ID Placeholder" here, so
/// the server substitutes the object from the previous batch item (KMIP 2.1 §6.1).
pub fn unique_identifier(payload: &Ttlv) -> Result<Option<String>, FieldError> {
    match payload.find(Tag::UNIQUE_IDENTIFIER) {
        None => Ok(None),
        Some(t) => match &t.value {
            Value::TextString(s) => Ok(Some(s.clone())),
            Value::Enumeration(_) => Ok(None),
            _ => Err(FieldError::Invalid {
                tag: Tag::UNIQUE_IDENTIFIER,
                reason: "must be a Text String (or a 2.x Unique Identifier Enumeration)",
            }),
        },
    }
}

/// Reads an optional Byte String field.
pub(crate) fn opt_bytes(payload: &Ttlv, tag: Tag) -> Result<Option<Vec<u8>>, FieldError> {
    payload.find(tag).map(|t| t.as_bytes().map(<[u8]>::to_vec)).transpose()
}

/// Reads optional Cryptographic Parameters (KMIP 1.4 §3.6).
pub(crate) fn opt_parameters(
    payload: &Ttlv,
) -> Result<Option<encrypt::CryptographicParameters>, FieldError> {
    payload
        .find(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .map(encrypt::CryptographicParameters::from_ttlv)
        .transpose()
}

/// The multi-part fields of a cryptographic request (KMIP 1.4 §4.29–4.30, KMIP 2.1
/// §6.1.20): Init Indicator, Final Indicator and Correlation Value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Init Indicator: this request starts the operation.
    pub init: bool,
    /// Final Indicator: this request ends it.
    pub last: bool,
    /// Correlation Value: which operation, as a previous response returned it.
    pub correlation: Option<Vec<u8>>,
}

impl Stream {
    /// The request's multi-part fields, if it has any.
    pub fn read(payload: &Ttlv) -> Result<Option<Stream>, FieldError> {
        if !is_streaming(payload) {
            return Ok(None);
        }
        let flag =
            |tag| payload.find(tag).map(Ttlv::as_bool).transpose().map(|b| b.unwrap_or(false));
        Ok(Some(Stream {
            init: flag(Tag::INIT_INDICATOR)?,
            last: flag(Tag::FINAL_INDICATOR)?,
            correlation: opt_bytes(payload, Tag::CORRELATION_VALUE)?,
        }))
    }
}

/// Whether a cryptographic request is part of a multi-part (streaming) operation
/// (Correlation Value, Init Indicator or Final Indicator present; KMIP 1.4 §4.29).
pub(crate) fn is_streaming(payload: &Ttlv) -> bool {
    [Tag::CORRELATION_VALUE, Tag::INIT_INDICATOR, Tag::FINAL_INDICATOR]
        .iter()
        .any(|t| payload.find(*t).is_some())
}

/// A Unique Identifier item.
pub fn uid_item(uid: &str) -> Ttlv {
    Ttlv::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(uid.to_owned()))
}

/// A request payload that names at most one object (Activate, Destroy, Get Attribute List).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UidRequest {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
}

impl UidRequest {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(UidRequest { unique_identifier: unique_identifier(payload)? })
    }
}
