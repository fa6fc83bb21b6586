//! Activate (KMIP 1.4 §4.19, KMIP 2.1 §6.1.1): payload is an optional Unique Identifier;
//! the response carries the Unique Identifier.

pub use super::UidRequest as Request;
