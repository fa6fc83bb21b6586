//! Open KMIP enumerations (KMIP 1.4 §9.1.3.2, KMIP 2.1 §11) and the bit masks of §12.
//!
//! Each enumeration is a `u32` newtype with named constants, so values added by later
//! versions or vendors (0x8xxxxxxx) decode and re-encode untouched.

use std::fmt;

/// Defines an open enumeration: a `u32` newtype, named constants, and the spec names.
macro_rules! open_enum {
    ($(#[$meta:meta])* pub struct $name:ident { $($variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            $(
                #[doc = concat!("`", $text, "`")]
                pub const $variant: $name = $name($value);
            )*

            /// Every named value and its specification text.
            pub const ALL: &'static [($name, &'static str)] = &[$(($name($value), $text)),*];

            /// The specification's name for this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                Self::ALL.iter().find(|(v, _)| *v == self).map(|(_, n)| *n)
            }

            /// The value the specification names `text`.
            pub fn from_name(text: &str) -> Option<Self> {
                Self::ALL.iter().find(|(_, n)| *n == text).map(|(v, _)| *v)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n}"),
                    None => write!(f, "{}(0x{:08X})", stringify!($name), self.0),
                }
            }
        }
    };
}

include!("spec_enums.rs");

/// Cryptographic Usage Mask bits (KMIP 1.4 §9.1.3.3.1, KMIP 2.1 §12.1).
pub mod usage_mask {
    /// Sign.
    pub const SIGN: i32 = 0x0000_0001;
    /// Verify.
    pub const VERIFY: i32 = 0x0000_0002;
    /// Encrypt.
    pub const ENCRYPT: i32 = 0x0000_0004;
    /// Decrypt.
    pub const DECRYPT: i32 = 0x0000_0008;
    /// Wrap Key.
    pub const WRAP_KEY: i32 = 0x0000_0010;
    /// Unwrap Key.
    pub const UNWRAP_KEY: i32 = 0x0000_0020;
    /// MAC Generate.
    pub const MAC_GENERATE: i32 = 0x0000_0080;
    /// MAC Verify.
    pub const MAC_VERIFY: i32 = 0x0000_0100;
    /// Derive Key.
    pub const DERIVE_KEY: i32 = 0x0000_0200;
    /// Key Agreement.
    pub const KEY_AGREEMENT: i32 = 0x0000_0800;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enum_names_and_unknown_values() {
        assert_eq!(Operation::CREATE.0, 1);
        assert_eq!(Operation::from_name("Get Attributes"), Some(Operation::GET_ATTRIBUTES));
        assert_eq!(format!("{:?}", State::PRE_ACTIVE), "Pre-Active");
        assert_eq!(format!("{:?}", ObjectType(0x8000_0001)), "ObjectType(0x80000001)");
        assert_eq!(ResultReason::ITEM_NOT_FOUND.0, 1);
        assert_eq!(CryptographicAlgorithm::AES.0, 3);
    }
}
