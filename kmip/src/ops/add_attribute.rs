//! Add Attribute (KMIP 1.4 §4.14, KMIP 2.1 §6.1.2): 1.x sends an Attribute, 2.x a New
//! Attribute; 1.x responses echo the attribute with its assigned index.

use crate::attributes::Attribute;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};
use crate::version::ProtocolVersion;

/// Add Attribute (and 2.x Set Attribute) request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// The attribute to add.
    pub attribute: Attribute,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            attribute: read_one(payload, Tag::NEW_ATTRIBUTE)?,
        })
    }
}

/// Reads the single attribute of an edit request: a 1.x `Attribute`, or the one item
/// inside the 2.x wrapper `wrapper` (New Attribute or Current Attribute).
pub(crate) fn read_one(payload: &Ttlv, wrapper: Tag) -> Result<Attribute, FieldError> {
    if let Some(a) = payload.find(Tag::ATTRIBUTE) {
        return Attribute::from_v1(a);
    }
    let w = payload.require(wrapper)?;
    match w.as_structure()? {
        [one] => Attribute::from_v2(one),
        _ => Err(FieldError::Invalid { tag: wrapper, reason: "must hold exactly one attribute" }),
    }
}

/// Encodes the response payload.
pub fn response(uid: &str, attribute: &Attribute, version: ProtocolVersion) -> Vec<Ttlv> {
    let mut out = vec![super::uid_item(uid)];
    if !version.is_v2() {
        out.push(attribute.to_v1());
    }
    out
}
