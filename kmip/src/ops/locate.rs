//! Locate (KMIP 1.4 §4.9, KMIP 2.1 §6.1.27): find objects whose attributes match.

use crate::attributes::{Attribute, read_attributes};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};
use crate::version::ProtocolVersion;

/// Locate request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Maximum Items.
    pub maximum_items: Option<i32>,
    /// Offset Items (1.3+).
    pub offset_items: Option<i32>,
    /// Storage Status Mask (1.x; 2.x Protection Storage Masks are not read).
    pub storage_status_mask: Option<i32>,
    /// Attributes every located object must have.
    pub attributes: Vec<Attribute>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let int = |tag| payload.find(tag).map(Ttlv::as_i32).transpose();
        let req = Request {
            maximum_items: int(Tag::MAXIMUM_ITEMS)?,
            offset_items: int(Tag::OFFSET_ITEMS)?,
            storage_status_mask: int(Tag::STORAGE_STATUS_MASK)?,
            attributes: read_attributes(payload, Tag::TEMPLATE_ATTRIBUTE)?,
        };
        for (tag, v) in
            [(Tag::MAXIMUM_ITEMS, req.maximum_items), (Tag::OFFSET_ITEMS, req.offset_items)]
        {
            if v.is_some_and(|v| v < 0) {
                return Err(FieldError::Invalid { tag, reason: "must not be negative" });
            }
        }
        Ok(req)
    }
}

/// Encodes the response payload. Located Items (the total match count, KMIP 1.4 §4.9) is
/// optional; it is sent to clients that page with Offset Items, which exists from 1.3.
pub fn response(
    located_items: i32,
    uids: &[String],
    version: ProtocolVersion,
    paged: bool,
) -> Vec<Ttlv> {
    let mut out = Vec::new();
    if paged && version >= ProtocolVersion::V1_3 {
        out.push(Ttlv::new(Tag::LOCATED_ITEMS, Value::Integer(located_items)));
    }
    out.extend(uids.iter().map(|u| super::uid_item(u)));
    out
}
