//! Sign (KMIP 1.4 §4.31, KMIP 2.1 §6.1.51) and Signature Verify (KMIP 1.4 §4.32, KMIP 2.1
//! §6.1.52).

use super::encrypt::CryptographicParameters;
use crate::enums::ValidityIndicator;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Sign or Signature Verify request payload, single-part or one part of a multi-part
/// operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier of the key; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Cryptographic Parameters, overriding the key's.
    pub parameters: Option<CryptographicParameters>,
    /// Data to sign or verify.
    pub data: Option<Vec<u8>>,
    /// Digested Data: the hash of the data, computed by the client.
    pub digested_data: Option<Vec<u8>>,
    /// Signature Data (Signature Verify).
    pub signature: Option<Vec<u8>>,
    /// The multi-part fields, when the request is part of a multi-part operation.
    pub stream: Option<super::Stream>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let bytes = |tag| super::opt_bytes(payload, tag);
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            parameters: super::opt_parameters(payload)?,
            data: bytes(Tag::DATA)?,
            digested_data: bytes(Tag::DIGESTED_DATA)?,
            signature: bytes(Tag::SIGNATURE_DATA)?,
            stream: super::Stream::read(payload)?,
        })
    }
}

/// Encodes the Sign response payload.
pub fn sign_response(uid: &str, signature: Vec<u8>) -> Vec<Ttlv> {
    vec![super::uid_item(uid), Ttlv::new(Tag::SIGNATURE_DATA, Value::ByteString(signature))]
}

/// Encodes the response to a part of a multi-part Sign or Signature Verify before the
/// last (the same as a MAC's: the first part's carries the Correlation Value).
pub use super::mac::part_response;

/// Encodes the Signature Verify response payload.
pub fn verify_response(uid: &str, valid: bool) -> Vec<Ttlv> {
    let v = if valid { ValidityIndicator::VALID } else { ValidityIndicator::INVALID };
    vec![super::uid_item(uid), Ttlv::new(Tag::VALIDITY_INDICATOR, Value::Enumeration(v.0))]
}
