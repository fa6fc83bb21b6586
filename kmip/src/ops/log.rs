//! Log (KMIP 2.1 §6.1.29): a message from the client for the server's log.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Log request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Log Message.
    pub message: String,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request { message: payload.require(Tag::LOG_MESSAGE)?.as_text()?.to_owned() })
    }
}
