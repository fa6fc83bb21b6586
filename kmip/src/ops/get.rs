//! Get (KMIP 1.4 §4.11, KMIP 2.1 §6.1.21).

use crate::enums::{KeyFormatType, ObjectType};
use crate::objects::ManagedObject;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Get request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Key Format Type asked for.
    pub key_format_type: Option<KeyFormatType>,
    /// Whether the client asked for the key wrapped (Key Wrapping Specification).
    pub wants_wrapping: bool,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            key_format_type: payload
                .find(Tag::KEY_FORMAT_TYPE)
                .map(|t| t.as_enum().map(KeyFormatType))
                .transpose()?,
            wants_wrapping: payload.find(Tag::KEY_WRAPPING_SPECIFICATION).is_some(),
        })
    }
}

/// Encodes the response payload: Object Type, Unique Identifier and the object.
pub fn response(uid: &str, object: &ManagedObject) -> Vec<Ttlv> {
    let object_type: ObjectType = object.object_type();
    vec![
        Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(object_type.0)),
        super::uid_item(uid),
        object.to_ttlv(),
    ]
}
