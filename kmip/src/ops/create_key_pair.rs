//! Create Key Pair (KMIP 1.4 §4.2, KMIP 2.1 §6.1.10): attributes common to both keys and
//! for each key, as 1.x Template-Attributes or 2.x Attributes structures.

use crate::attributes::{Attribute, read_attributes};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Create Key Pair request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Attributes for both keys.
    pub common: Vec<Attribute>,
    /// Attributes for the private key only.
    pub private: Vec<Attribute>,
    /// Attributes for the public key only.
    pub public: Vec<Attribute>,
}

fn part(payload: &Ttlv, v1: Tag, v2: Tag) -> Result<Vec<Attribute>, FieldError> {
    let mut out = Vec::new();
    if let Some(t) = payload.find(v1) {
        out.extend(read_attributes(&Ttlv::structure(Tag::REQUEST_PAYLOAD, vec![t.clone()]), v1)?);
    }
    if let Some(t) = payload.find(v2) {
        let wrapped = Ttlv::structure(
            Tag::REQUEST_PAYLOAD,
            vec![Ttlv::structure(Tag::ATTRIBUTES, t.children().to_vec())],
        );
        out.extend(read_attributes(&wrapped, Tag::TEMPLATE_ATTRIBUTE)?);
    }
    Ok(out)
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            common: part(payload, Tag::COMMON_TEMPLATE_ATTRIBUTE, Tag::COMMON_ATTRIBUTES)?,
            private: part(
                payload,
                Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
                Tag::PRIVATE_KEY_ATTRIBUTES,
            )?,
            public: part(payload, Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE, Tag::PUBLIC_KEY_ATTRIBUTES)?,
        })
    }
}

/// Encodes the response payload: the two Unique Identifiers.
pub fn response(private_uid: &str, public_uid: &str) -> Vec<Ttlv> {
    vec![
        Ttlv::new(
            Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
            crate::Value::TextString(private_uid.to_owned()),
        ),
        Ttlv::new(
            Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
            crate::Value::TextString(public_uid.to_owned()),
        ),
    ]
}
