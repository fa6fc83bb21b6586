//! Set Attribute (KMIP 2.1 §6.1.50): sets a single-instance attribute to a New Attribute.

pub use super::add_attribute::Request;
