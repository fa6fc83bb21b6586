//! Get Usage Allocation (KMIP 1.4 §4.18, KMIP 2.1 §6.1.26): an allocation from an object's
//! Usage Limits for the client's protecting operations.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Get Usage Allocation request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Usage Limits Count: the units to allocate.
    pub usage_limits_count: i64,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            usage_limits_count: payload.require(Tag::USAGE_LIMITS_COUNT)?.as_i64()?,
        })
    }
}

/// Encodes the response payload: the Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
