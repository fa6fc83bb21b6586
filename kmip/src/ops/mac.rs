//! MAC (KMIP 1.4 §4.33, KMIP 2.1 §6.1.28) and MAC Verify (KMIP 1.4 §4.34, KMIP 2.1 §6.1.29).

use super::encrypt::CryptographicParameters;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// MAC or MAC Verify request payload, single-part or one part of a multi-part operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier of the key; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Cryptographic Parameters, overriding the key's.
    pub parameters: Option<CryptographicParameters>,
    /// Data.
    pub data: Vec<u8>,
    /// MAC Data (MAC Verify).
    pub mac: Option<Vec<u8>>,
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
            data: bytes(Tag::DATA)?.unwrap_or_default(),
            mac: bytes(Tag::MAC_DATA)?,
            stream: super::Stream::read(payload)?,
        })
    }
}

/// Encodes the MAC response payload.
pub fn mac_response(uid: &str, mac: Vec<u8>) -> Vec<Ttlv> {
    vec![super::uid_item(uid), Ttlv::new(Tag::MAC_DATA, Value::ByteString(mac))]
}

/// Encodes the response to a part of a multi-part MAC or MAC Verify before the last: the
/// first part's carries the Correlation Value (KMIP 2.1 §6.1.28).
pub fn part_response(uid: &str, correlation: Option<Vec<u8>>) -> Vec<Ttlv> {
    let mut out = vec![super::uid_item(uid)];
    if let Some(c) = correlation {
        out.push(Ttlv::new(Tag::CORRELATION_VALUE, Value::ByteString(c)));
    }
    out
}

/// Encodes the MAC Verify response payload (the same shape as Signature Verify's).
pub use super::sign::verify_response;
