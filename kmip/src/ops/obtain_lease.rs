//! Obtain Lease (KMIP 1.4 §4.20, KMIP 2.1 §6.1.32): the request names an object (or the ID
//! Placeholder); the response gives the Lease Time granted and the object's Last Change
//! Date.

use crate::tag::Tag;
use crate::ttlv::{Ttlv, Value};

/// Encodes the response payload.
pub fn response(uid: &str, lease_time: u32, last_change_date: i64) -> Vec<Ttlv> {
    vec![
        super::uid_item(uid),
        Ttlv::new(Tag::LEASE_TIME, Value::Interval(lease_time)),
        Ttlv::new(Tag::LAST_CHANGE_DATE, Value::DateTime(last_change_date)),
    ]
}
