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
    /// Profile Information (Query Profiles, KMIP 1.4 §2.1.19, KMIP 2.1 §7.31).
    pub profiles: Vec<ProfileInformation>,
    /// Capability Information children (Query Capabilities, KMIP 1.4 §2.1.20).
    pub capability_information: Vec<Ttlv>,
}

/// A profile the server supports (KMIP 2.1 §7.31): its name and, from KMIP 2.0, the
/// version of the profiles specification it conforms to (§7.32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileInformation {
    /// Profile Name.
    pub name: crate::enums::ProfileName,
    /// Profile Version (major, minor); 2.x only.
    pub version: Option<(i32, i32)>,
}

impl ProfileInformation {
    /// Encodes the Profile Information structure.
    pub fn to_ttlv(&self) -> Ttlv {
        let mut items = vec![Ttlv::new(Tag::PROFILE_NAME, Value::Enumeration(self.name.0))];
        if let Some((major, minor)) = self.version {
            items.push(Ttlv::structure(
                Tag::PROFILE_VERSION,
                vec![
                    Ttlv::new(Tag::PROFILE_VERSION_MAJOR, Value::Integer(major)),
                    Ttlv::new(Tag::PROFILE_VERSION_MINOR, Value::Integer(minor)),
                ],
            ));
        }
        Ttlv::structure(Tag::PROFILE_INFORMATION, items)
    }
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
        out.extend(self.profiles.iter().map(ProfileInformation::to_ttlv));
        if !self.capability_information.is_empty() {
            out.push(Ttlv::structure(
                Tag::CAPABILITY_INFORMATION,
                self.capability_information.clone(),
            ));
        }
        out
    }
}
