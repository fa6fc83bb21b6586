//! Reads each batch item of an arbitrary binary request message with every typed request
//! reader of the crate (whatever its Operation says), as a server meeting a confused or
//! hostile client would: errors are fine, panics are not.
#![no_main]

use kmip::attributes::{read_attribute_references, read_attributes};
use kmip::enums::ObjectType;
use kmip::message::RequestMessage;
use kmip::objects::ManagedObject;
use kmip::ops::*;
use kmip::tag::Tag;
use kmip::ttlv::binary::{decode, Limits};
use kmip::ttlv::Ttlv;
use libfuzzer_sys::fuzz_target;

fn read_all(p: &Ttlv) {
    let _ = add_attribute::Request::from_ttlv(p);
    let _ = certify::Request::from_ttlv(p);
    let _ = check::Request::from_ttlv(p);
    let _ = create::Request::from_ttlv(p);
    let _ = create_key_pair::Request::from_ttlv(p);
    let _ = delete_attribute::Request::from_ttlv(p);
    let _ = derive_key::Request::from_ttlv(p);
    let _ = encrypt::Request::from_ttlv(p);
    let _ = get::Request::from_ttlv(p);
    let _ = get_attributes::Request::from_ttlv(p);
    let _ = get_usage_allocation::Request::from_ttlv(p);
    let _ = hash::Request::from_ttlv(p);
    let _ = import::Request::from_ttlv(p);
    let _ = interop::Request::from_ttlv(p);
    let _ = locate::Request::from_ttlv(p);
    let _ = log::Request::from_ttlv(p);
    let _ = mac::Request::from_ttlv(p);
    let _ = modify_attribute::Request::from_ttlv(p);
    let _ = pkcs11::Request::from_ttlv(p);
    let _ = pkcs11::Response::from_ttlv(p);
    let _ = recertify::Request::from_ttlv(p);
    let _ = register::Request::from_ttlv(p);
    let _ = rekey::Request::from_ttlv(p);
    let _ = rekey_key_pair::Request::from_ttlv(p);
    let _ = revoke::Request::from_ttlv(p);
    let _ = sign::Request::from_ttlv(p);
    let _ = UidRequest::from_ttlv(p);
    let _ = Stream::read(p);
    let _ = read_attributes(p, Tag::ATTRIBUTES);
    let _ = read_attributes(p, Tag::TEMPLATE_ATTRIBUTE);
    let _ = read_attribute_references(p);
    for t in 1..=10 {
        let _ = ManagedObject::from_payload(ObjectType(t), p);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(item) = decode(data, &Limits::default()) else { return };
    match RequestMessage::from_ttlv(&item) {
        Ok(m) => m.batch_items.iter().for_each(|b| read_all(&b.payload)),
        // Not a message: the tree itself as a payload.
        Err(_) => read_all(&item),
    }
});
