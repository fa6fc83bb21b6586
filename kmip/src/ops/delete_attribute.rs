//! Delete Attribute (KMIP 1.4 §4.16, KMIP 2.1 §6.1.13): 1.x names the attribute and index,
//! 2.x gives a Current Attribute (a value to match) or an Attribute Reference.

use super::add_attribute::read_one;
use crate::attributes::{Attribute, read_attribute_references};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Delete Attribute request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// The attribute name.
    pub name: String,
    /// 1.x Attribute Index (0 when absent).
    pub index: Option<i32>,
    /// 2.x Current Attribute: delete the instance with this value.
    pub current: Option<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let unique_identifier = super::unique_identifier(payload)?;
        if payload.find(Tag::CURRENT_ATTRIBUTE).is_some() {
            let current = read_one(payload, Tag::CURRENT_ATTRIBUTE)?;
            return Ok(Request {
                unique_identifier,
                name: current.name.clone(),
                index: None,
                current: Some(current),
            });
        }
        let name = read_attribute_references(payload)?
            .into_iter()
            .next()
            .ok_or(FieldError::Missing { parent: payload.tag, tag: Tag::ATTRIBUTE_NAME })?;
        let index = payload.find(Tag::ATTRIBUTE_INDEX).map(Ttlv::as_i32).transpose()?;
        Ok(Request { unique_identifier, name, index, current: None })
    }
}
