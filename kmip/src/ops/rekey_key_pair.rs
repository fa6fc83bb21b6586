//! Re-key Key Pair (KMIP 1.4 §4.5, KMIP 2.1 §6.1.41): a replacement for an existing key
//! pair, named by its private key, with the existing keys' attributes, names and (shifted)
//! dates. The response is Create Key Pair's (the two new Unique Identifiers).

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Re-key Key Pair request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Private Key Unique Identifier of the existing pair; `None` means the ID Placeholder.
    pub private_key_unique_identifier: Option<String>,
    /// Offset: seconds from the replacements' Initial Date to their Activation Date.
    pub offset: Option<u32>,
    /// Attributes for both new keys, then for each, as in Create Key Pair (§4.2).
    pub keys: super::create_key_pair::Request,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let id = payload
            .find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER)
            .map(|t| match &t.value {
                Value::TextString(s) => Ok(s.clone()),
                _ => Err(FieldError::Invalid {
                    tag: Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
                    reason: "must be a text string",
                }),
            })
            .transpose()?;
        Ok(Request {
            private_key_unique_identifier: id,
            offset: payload.find(Tag::OFFSET).map(Ttlv::as_interval).transpose()?,
            keys: super::create_key_pair::Request::from_ttlv(payload)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_private_key_and_offset() {
        let payload = Ttlv::structure(
            Tag::REQUEST_PAYLOAD,
            vec![
                Ttlv::new(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Value::TextString("k1".into())),
                Ttlv::new(Tag::OFFSET, Value::Interval(3600)),
            ],
        );
        let r = Request::from_ttlv(&payload).unwrap();
        assert_eq!(r.private_key_unique_identifier.as_deref(), Some("k1"));
        assert_eq!(r.offset, Some(3600));
        assert!(r.keys.common.is_empty());
        let empty = Request::from_ttlv(&Ttlv::structure(Tag::REQUEST_PAYLOAD, vec![])).unwrap();
        assert_eq!(empty.private_key_unique_identifier, None, "the ID Placeholder");
        let bad = Ttlv::structure(
            Tag::REQUEST_PAYLOAD,
            vec![Ttlv::new(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Value::Integer(1))],
        );
        assert!(Request::from_ttlv(&bad).is_err());
    }
}
