//! Certify (KMIP 1.4 §4.7, KMIP 2.1 §6.1.7): a certificate for a public key the server
//! manages (by Unique Identifier, or the ID Placeholder) or for a certificate request, with
//! the attributes of the new certificate object.

use crate::attributes::{Attribute, read_attributes};
use crate::enums::CertificateRequestType;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Certify request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The public key to certify; `None` means the ID Placeholder (or a request alone).
    pub unique_identifier: Option<String>,
    /// Certificate Request Type and value (1.x Certificate Request, 2.x Certificate
    /// Request Value), when the client sends one.
    pub certificate_request: Option<(CertificateRequestType, Vec<u8>)>,
    /// Attributes for the new certificate.
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let value = payload
            .find(Tag::CERTIFICATE_REQUEST_VALUE)
            .or_else(|| payload.find(Tag::CERTIFICATE_REQUEST));
        let certificate_request = match value {
            Some(v) => Some((
                CertificateRequestType(payload.require(Tag::CERTIFICATE_REQUEST_TYPE)?.as_enum()?),
                v.as_bytes()?.to_vec(),
            )),
            None => None,
        };
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            certificate_request,
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        })
    }
}

/// Encodes the response payload: the new certificate's Unique Identifier.
pub fn response(uid: &str) -> Vec<Ttlv> {
    vec![super::uid_item(uid)]
}
