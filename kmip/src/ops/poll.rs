//! Poll (KMIP 1.4 §4.28, KMIP 2.1 §6.1.36) and Cancel (KMIP 1.4 §4.27, KMIP 2.1 §6.1.5):
//! both name an asynchronous operation by its Asynchronous Correlation Value.

use crate::enums::CancellationResult;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// The Asynchronous Correlation Value a Poll or Cancel names.
pub fn request(payload: &Ttlv) -> Result<Vec<u8>, FieldError> {
    Ok(payload.require(Tag::ASYNCHRONOUS_CORRELATION_VALUE)?.as_bytes()?.to_vec())
}

/// Encodes a Cancel response payload.
pub fn cancel_response(correlation: Vec<u8>, result: CancellationResult) -> Vec<Ttlv> {
    vec![
        Ttlv::new(Tag::ASYNCHRONOUS_CORRELATION_VALUE, Value::ByteString(correlation)),
        Ttlv::new(Tag::CANCELLATION_RESULT, Value::Enumeration(result.0)),
    ]
}
