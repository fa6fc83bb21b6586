//! Re-certify (KMIP 1.4 §4.8, KMIP 2.1 §6.1.45): a new certificate for the key pair of an
//! existing certificate, which takes over its names and (shifted) dates.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Re-certify request payload: Certify's fields (the existing certificate as the Unique
/// Identifier) and an Offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The existing certificate, a certificate request, and attributes for the new one.
    pub certify: super::certify::Request,
    /// Offset: seconds from the new certificate's Initial Date to its Activation Date.
    pub offset: Option<u32>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            certify: super::certify::Request::from_ttlv(payload)?,
            offset: payload.find(Tag::OFFSET).map(Ttlv::as_interval).transpose()?,
        })
    }
}

/// Encodes the response payload: the new certificate's Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
