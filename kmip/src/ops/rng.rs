//! RNG Retrieve (KMIP 1.4 §4.35, KMIP 2.1 §6.1.45) and RNG Seed (KMIP 1.4 §4.36, KMIP 2.1
//! §6.1.46).

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// RNG Retrieve: the number of random bytes asked for (Data Length).
pub fn retrieve_request(payload: &Ttlv) -> Result<i32, FieldError> {
    payload.require(Tag::DATA_LENGTH)?.as_i32()
}

/// RNG Retrieve response payload: the random Data.
pub fn retrieve_response(data: Vec<u8>) -> Vec<Ttlv> {
    vec![Ttlv::new(Tag::DATA, Value::ByteString(data))]
}

/// RNG Seed: the seed Data.
pub fn seed_request(payload: &Ttlv) -> Result<Vec<u8>, FieldError> {
    Ok(payload.require(Tag::DATA)?.as_bytes()?.to_vec())
}

/// RNG Seed response payload: how many bytes of seed were used (Data Length).
pub fn seed_response(used: i32) -> Vec<Ttlv> {
    vec![Ttlv::new(Tag::DATA_LENGTH, Value::Integer(used))]
}
