//! KMIP protocol types and codecs for Strongroom: the typed TTLV tree, its binary codec
//! (KMIP 1.4 §9.1, KMIP 2.1 §9.1), request/response messages (KMIP 2.1 §8) and typed
//! operation payloads (KMIP 2.1 §6), for KMIP 1.0–1.4 and 2.0–2.1.
//!
//! No I/O, no cryptography: callers hand in bytes and get typed values back.
#![warn(missing_docs)]

pub mod attributes;
pub mod credential;
pub mod dsa;
pub mod ec;
pub mod enums;
pub mod message;
pub mod objects;
pub mod ops;
pub mod pkcs1;
mod spec_tags;
pub mod tag;
pub mod ttlv;
pub mod version;

pub use tag::{ItemType, Tag};
pub use ttlv::{Ttlv, Value};
pub use version::ProtocolVersion;
