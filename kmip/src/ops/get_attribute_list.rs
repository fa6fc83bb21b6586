//! Get Attribute List (KMIP 1.4 §4.12, KMIP 2.1 §6.1.23): the names of an object's
//! attributes, as 1.x Attribute Name or 2.x Attribute Reference.

pub use super::UidRequest as Request;
use crate::attributes::write_attribute_references;
use crate::ttlv::Ttlv;
use crate::version::ProtocolVersion;

/// Encodes the response payload.
pub fn response(uid: &str, names: &[String], version: ProtocolVersion) -> Vec<Ttlv> {
    let mut out = vec![super::uid_item(uid)];
    out.extend(write_attribute_references(names, version));
    out
}
