//! Query (KMIP 1.4 §4.25, KMIP 2.1 §6.1.37).

use crate::enums::{ObjectType, Operation, QueryFunction};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// The Query Functions asked for.
pub fn request(payload: &Ttlv) -> Result<Vec<QueryFunction>, FieldError> {
    payload.find_all(Tag::QUERY_FUNCTION).map(|t| t.as_enum().map(QueryFunction)).collect()
}

/// What the server answers; each part is sent only when its function was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Operations supported (Query Operations).
    pub operations: Vec<Operation>,
    /// Object types supported (Query Objects).
    pub object_types: Vec<ObjectType>,
    /// Vendor Identification (Query Server Information).
    pub vendor_identification: Option<String>,
    /// Server Information children (Query Server Information).
    pub server_information: Vec<Ttlv>,
    /// Capability Information children (Query Capabilities, KMIP 1.4 §2.1.20).
    pub capability_information: Vec<Ttlv>,
}

impl Response {
    /// Encodes the response payload.
    pub fn to_ttlv(&self) -> Vec<Ttlv> {
        let mut out: Vec<Ttlv> = self
            .operations
            .iter()
            .map(|o| Ttlv::new(Tag::OPERATION, Value::Enumeration(o.0)))
            .collect();
        out.extend(
            self.object_types.iter().map(|o| Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(o.0))),
        );
        if let Some(v) = &self.vendor_identification {
            out.push(Ttlv::new(Tag::VENDOR_IDENTIFICATION, Value::TextString(v.clone())));
        }
        if !self.server_information.is_empty() {
            out.push(Ttlv::structure(Tag::SERVER_INFORMATION, self.server_information.clone()));
        }
        if !self.capability_information.is_empty() {
            out.push(Ttlv::structure(
                Tag::CAPABILITY_INFORMATION,
                self.capability_information.clone(),
            ));
        }
        out
    }
}
