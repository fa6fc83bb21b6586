//! Interop (KMIP 2.1 §6.1.26): the client tells the server where the test cases of an
//! interoperability run begin and end. Not for production servers.

use crate::enums::InteropFunction;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Interop request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Interop Function: Begin, End or Reset.
    pub function: InteropFunction,
    /// Interop Identifier: the test case.
    pub identifier: String,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            function: InteropFunction(payload.require(Tag::INTEROP_FUNCTION)?.as_enum()?),
            identifier: payload.require(Tag::INTEROP_IDENTIFIER)?.as_text()?.to_owned(),
        })
    }
}
