//! Create (KMIP 1.4 §4.1, KMIP 2.1 §6.1.9): a new symmetric key from attributes given as a
//! 1.x Template-Attribute or a 2.x Attributes structure.

use crate::attributes::{Attribute, read_attributes};
use crate::enums::ObjectType;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Create request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Object Type.
    pub object_type: ObjectType,
    /// The attributes to give the new object.
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            object_type: ObjectType(payload.require(Tag::OBJECT_TYPE)?.as_enum()?),
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        })
    }
}

/// Encodes the response payload: Object Type and Unique Identifier.
pub fn response(object_type: ObjectType, uid: &str) -> Vec<Ttlv> {
    vec![Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(object_type.0)), super::uid_item(uid)]
}
