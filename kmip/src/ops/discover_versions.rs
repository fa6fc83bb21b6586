//! Discover Versions (KMIP 1.4 §4.26, KMIP 2.1 §6.1.22).

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};
use crate::version::ProtocolVersion;

/// The versions the client offers, in its order of preference (empty: ask for all).
pub fn request(payload: &Ttlv) -> Result<Vec<ProtocolVersion>, FieldError> {
    payload.find_all(Tag::PROTOCOL_VERSION).map(ProtocolVersion::from_ttlv).collect()
}

/// The versions both sides speak, in the client's order; every supported version, newest
/// first, when the client offered none.
pub fn negotiate(offered: &[ProtocolVersion]) -> Vec<ProtocolVersion> {
    if offered.is_empty() {
        return ProtocolVersion::SUPPORTED.to_vec();
    }
    offered.iter().copied().filter(|v| v.is_supported()).collect()
}

/// Encodes the response payload.
pub fn response(versions: &[ProtocolVersion]) -> Vec<Ttlv> {
    versions.iter().map(|v| v.to_ttlv()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_client_order_and_drops_unknown() {
        let offered =
            [ProtocolVersion { major: 3, minor: 0 }, ProtocolVersion::V1_2, ProtocolVersion::V2_0];
        assert_eq!(negotiate(&offered), vec![ProtocolVersion::V1_2, ProtocolVersion::V2_0]);
        assert_eq!(negotiate(&[]).first(), Some(&ProtocolVersion::V2_1));
    }
}
