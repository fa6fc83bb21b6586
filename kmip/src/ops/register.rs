//! Register (KMIP 1.4 §4.3, KMIP 2.1 §6.1.41): an object supplied by the client, with its
//! attributes.

use crate::attributes::{Attribute, read_attributes};
use crate::enums::ObjectType;
use crate::objects::ManagedObject;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Register request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The object, with its Object Type.
    pub object: ManagedObject,
    /// The attributes to give it.
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let object_type = ObjectType(payload.require(Tag::OBJECT_TYPE)?.as_enum()?);
        Ok(Request {
            object: ManagedObject::from_payload(object_type, payload)?,
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        })
    }
}

/// Encodes the response payload: the Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
