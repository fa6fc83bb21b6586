//! Decodes arbitrary text as the KMIP XML and JSON encodings; whatever decodes must
//! encode and decode again to the same tree, and read as a request message without
//! panicking.
#![no_main]

use kmip::message::RequestMessage;
use kmip::ttlv::binary::Limits;
use kmip::ttlv::{json, xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits::default();
    if let Ok(item) = xml::decode(text, &limits) {
        assert_eq!(xml::decode(&xml::encode(&item), &limits).ok(), Some(item.clone()));
        let _ = RequestMessage::from_ttlv(&item);
    }
    if let Ok(item) = json::decode(text, &limits) {
        assert_eq!(json::decode(&json::encode(&item), &limits).ok(), Some(item.clone()));
        let _ = RequestMessage::from_ttlv(&item);
    }
});
