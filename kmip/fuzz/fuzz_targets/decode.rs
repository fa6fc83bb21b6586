//! Decodes arbitrary bytes as TTLV; whatever decodes must re-encode to the same bytes
//! (modulo padding content) and decode again to the same tree, and read as a request
//! message without panicking.
#![no_main]

use kmip::message::RequestMessage;
use kmip::ttlv::binary::{Limits, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode(data, &Limits::default()) {
        let again = encode(&item);
        assert_eq!(again.len(), data.len());
        assert_eq!(decode(&again, &Limits::default()).ok(), Some(item.clone()));
        let _ = RequestMessage::from_ttlv(&item);
    }
});
