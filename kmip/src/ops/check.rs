//! Check (KMIP 1.4 §4.10, KMIP 2.1 §6.1.5): whether the client may use an object as it
//! intends (an amount of its Usage Limits, a Cryptographic Usage Mask, a Lease Time). These
//! fields are not Attribute structures.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Check request payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Usage Limits Count the client needs.
    pub usage_limits_count: Option<i64>,
    /// Cryptographic Usage Mask the client intends to use the object for.
    pub usage_mask: Option<i32>,
    /// Lease Time the client asks to have validated, seconds.
    pub lease_time: Option<u32>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            usage_limits_count: payload
                .find(Tag::USAGE_LIMITS_COUNT)
                .map(Ttlv::as_i64)
                .transpose()?,
            usage_mask: payload
                .find(Tag::CRYPTOGRAPHIC_USAGE_MASK)
                .map(Ttlv::as_i32)
                .transpose()?,
            lease_time: payload.find(Tag::LEASE_TIME).map(Ttlv::as_interval).transpose()?,
        })
    }
}

/// Encodes the response payload when the check passes: the Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}

/// Encodes the response payload when the check fails: only the fields that caused the
/// denial, as the client sent them (KMIP 1.4 Table 193).
pub fn denial(
    usage_limits_count: Option<i64>,
    usage_mask: Option<i32>,
    lease_time: Option<u32>,
) -> Vec<Ttlv> {
    let mut out = Vec::new();
    if let Some(c) = usage_limits_count {
        out.push(Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(c)));
    }
    if let Some(m) = usage_mask {
        out.push(Ttlv::new(Tag::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(m)));
    }
    if let Some(l) = lease_time {
        out.push(Ttlv::new(Tag::LEASE_TIME, Value::Interval(l)));
    }
    out
}
