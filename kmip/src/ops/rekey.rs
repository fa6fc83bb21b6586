//! Re-key (KMIP 1.4 §4.4, KMIP 2.1 §6.1.40): a replacement for an existing symmetric key,
//! with the existing key's attributes, names and (shifted) dates.

use crate::attributes::{Attribute, read_attributes};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Re-key request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier of the existing key; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Offset: seconds from the replacement's Initial Date to its Activation Date.
    pub offset: Option<u32>,
    /// Attributes to set on the replacement instead of the copied ones.
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            offset: payload.find(Tag::OFFSET).map(Ttlv::as_interval).transpose()?,
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        })
    }
}

/// Encodes the response payload: the replacement's Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
