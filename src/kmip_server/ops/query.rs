//! Query: the operations and object types this server supports, and who it is.

use kmip::enums::{ObjectType, QueryFunction};
use kmip::ops::query;
use kmip::{Tag, Ttlv, Value};

use super::Outcome;
use crate::kmip_server::dispatch::SUPPORTED_OPERATIONS;
use crate::kmip_server::error::OpError;

pub(crate) fn handle(functions: &[QueryFunction]) -> Result<Outcome, OpError> {
    let mut r = query::Response::default();
    if functions.contains(&QueryFunction::QUERY_OPERATIONS) {
        r.operations = SUPPORTED_OPERATIONS.to_vec();
    }
    if functions.contains(&QueryFunction::QUERY_OBJECTS) {
        r.object_types = vec![
            ObjectType::SYMMETRIC_KEY,
            ObjectType::PUBLIC_KEY,
            ObjectType::PRIVATE_KEY,
            ObjectType::SECRET_DATA,
            ObjectType::OPAQUE_OBJECT,
        ];
    }
    if functions.contains(&QueryFunction::QUERY_SERVER_INFORMATION) {
        r.vendor_identification = Some("Strongroom".to_owned());
        r.server_information = vec![
            Ttlv::new(Tag::SERVER_NAME, Value::TextString("Strongroom".to_owned())),
            Ttlv::new(Tag::SERVER_VERSION, Value::TextString(env!("CARGO_PKG_VERSION").to_owned())),
        ];
    }
    if functions.contains(&QueryFunction::QUERY_CAPABILITIES) {
        let flag = |tag, v| Ttlv::new(tag, Value::Boolean(v));
        r.capability_information = vec![
            flag(Tag::STREAMING_CAPABILITY, false),
            flag(Tag::ASYNCHRONOUS_CAPABILITY, false),
            flag(Tag::ATTESTATION_CAPABILITY, false),
            flag(Tag::BATCH_UNDO_CAPABILITY, false),
            flag(Tag::BATCH_CONTINUE_CAPABILITY, true),
        ];
    }
    Ok(Outcome::new(r.to_ttlv(), None))
}
