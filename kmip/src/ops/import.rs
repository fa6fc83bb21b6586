//! Import (KMIP 2.1 §6.1.25): an object with the Unique Identifier and every attribute it
//! had elsewhere (server-managed ones included), for migrating between servers; Export
//! (§6.1.18) is its counterpart, Get with the attributes.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Import request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The Unique Identifier the object keeps.
    pub unique_identifier: String,
    /// Replace Existing: whether an object with that identifier may be replaced.
    pub replace_existing: bool,
    /// The object and its attributes (set as supplied), read as Register reads them.
    pub object: super::register::Request,
}

impl Request {
    /// Reads the payload; wrapped objects are refused by the Key Block reader.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: payload.require(Tag::UNIQUE_IDENTIFIER)?.as_text()?.to_owned(),
            replace_existing: payload
                .find(Tag::REPLACE_EXISTING)
                .map(Ttlv::as_bool)
                .transpose()?
                .unwrap_or(false),
            object: super::register::Request::from_ttlv(payload)?,
        })
    }
}

/// Encodes the response payload: the Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
