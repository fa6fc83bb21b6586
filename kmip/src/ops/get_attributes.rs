//! Get Attributes (KMIP 1.4 §4.12, KMIP 2.1 §6.1.23).

use crate::attributes::{Attribute, read_attribute_references, write_attributes};
use crate::ttlv::{FieldError, Ttlv};
use crate::version::ProtocolVersion;

/// Get Attributes request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// The attribute names asked for; empty means all.
    pub names: Vec<String>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            names: read_attribute_references(payload)?,
        })
    }
}

/// Encodes the response payload.
pub fn response(uid: &str, attrs: &[Attribute], version: ProtocolVersion) -> Vec<Ttlv> {
    let mut out = vec![super::uid_item(uid)];
    out.extend(write_attributes(attrs, version));
    out
}
