//! Modify Attribute (KMIP 1.4 §4.15, KMIP 2.1 §6.1.30): 1.x names the instance by Attribute
//! Index, 2.x by an optional Current Attribute, and carries the New Attribute.

use super::add_attribute::read_one;
pub use super::add_attribute::response;
use crate::attributes::Attribute;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Modify Attribute request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// The instance to change (2.x Current Attribute), when given.
    pub current: Option<Attribute>,
    /// The new value (its index names the instance in 1.x).
    pub attribute: Attribute,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            current: match payload.find(Tag::CURRENT_ATTRIBUTE) {
                Some(_) => Some(read_one(payload, Tag::CURRENT_ATTRIBUTE)?),
                None => None,
            },
            attribute: read_one(payload, Tag::NEW_ATTRIBUTE)?,
        })
    }
}
