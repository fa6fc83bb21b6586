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

            /// Every named value as a raw number and its specification text.
            pub const VALUES: &'static [(u32, &'static str)] = &[$(($value, $text)),*];

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

impl Operation {
    /// The KMIP version that defined this operation (KMIP 1.1–1.4 and 2.0–2.1 change
    /// annexes): Query lists only operations the client's version knows.
    pub fn introduced_in(self) -> crate::ProtocolVersion {
        use crate::ProtocolVersion as V;
        match self.0 {
            0x01..=0x1C => V::V1_0,
            0x1D..=0x1E => V::V1_1,
            0x1F..=0x29 => V::V1_2,
            0x2A..=0x2B => V::V1_4,
            0x2C..=0x35 => V::V2_0,
            _ => V::V2_1,
        }
    }
}

open_enum! {
    /// PKCS#11 Function (KMIP 2.1 §11.38): the 1-based position of the function in PKCS#11's
    /// CK_FUNCTION_LIST (the 2.40 functions, which CK_FUNCTION_LIST_3_0 begins with).
    pub struct Pkcs11Function {
        C_INITIALIZE = 0x00000001 => "C_Initialize",
        C_FINALIZE = 0x00000002 => "C_Finalize",
        C_GETINFO = 0x00000003 => "C_GetInfo",
        C_GETFUNCTIONLIST = 0x00000004 => "C_GetFunctionList",
        C_GETSLOTLIST = 0x00000005 => "C_GetSlotList",
        C_GETSLOTINFO = 0x00000006 => "C_GetSlotInfo",
        C_GETTOKENINFO = 0x00000007 => "C_GetTokenInfo",
        C_GETMECHANISMLIST = 0x00000008 => "C_GetMechanismList",
        C_GETMECHANISMINFO = 0x00000009 => "C_GetMechanismInfo",
        C_INITTOKEN = 0x0000000A => "C_InitToken",
        C_INITPIN = 0x0000000B => "C_InitPIN",
        C_SETPIN = 0x0000000C => "C_SetPIN",
        C_OPENSESSION = 0x0000000D => "C_OpenSession",
        C_CLOSESESSION = 0x0000000E => "C_CloseSession",
        C_CLOSEALLSESSIONS = 0x0000000F => "C_CloseAllSessions",
        C_GETSESSIONINFO = 0x00000010 => "C_GetSessionInfo",
        C_GETOPERATIONSTATE = 0x00000011 => "C_GetOperationState",
        C_SETOPERATIONSTATE = 0x00000012 => "C_SetOperationState",
        C_LOGIN = 0x00000013 => "C_Login",
        C_LOGOUT = 0x00000014 => "C_Logout",
        C_CREATEOBJECT = 0x00000015 => "C_CreateObject",
        C_COPYOBJECT = 0x00000016 => "C_CopyObject",
        C_DESTROYOBJECT = 0x00000017 => "C_DestroyObject",
        C_GETOBJECTSIZE = 0x00000018 => "C_GetObjectSize",
        C_GETATTRIBUTEVALUE = 0x00000019 => "C_GetAttributeValue",
        C_SETATTRIBUTEVALUE = 0x0000001A => "C_SetAttributeValue",
        C_FINDOBJECTSINIT = 0x0000001B => "C_FindObjectsInit",
        C_FINDOBJECTS = 0x0000001C => "C_FindObjects",
        C_FINDOBJECTSFINAL = 0x0000001D => "C_FindObjectsFinal",
        C_ENCRYPTINIT = 0x0000001E => "C_EncryptInit",
        C_ENCRYPT = 0x0000001F => "C_Encrypt",
        C_ENCRYPTUPDATE = 0x00000020 => "C_EncryptUpdate",
        C_ENCRYPTFINAL = 0x00000021 => "C_EncryptFinal",
        C_DECRYPTINIT = 0x00000022 => "C_DecryptInit",
        C_DECRYPT = 0x00000023 => "C_Decrypt",
        C_DECRYPTUPDATE = 0x00000024 => "C_DecryptUpdate",
        C_DECRYPTFINAL = 0x00000025 => "C_DecryptFinal",
        C_DIGESTINIT = 0x00000026 => "C_DigestInit",
        C_DIGEST = 0x00000027 => "C_Digest",
        C_DIGESTUPDATE = 0x00000028 => "C_DigestUpdate",
        C_DIGESTKEY = 0x00000029 => "C_DigestKey",
        C_DIGESTFINAL = 0x0000002A => "C_DigestFinal",
        C_SIGNINIT = 0x0000002B => "C_SignInit",
        C_SIGN = 0x0000002C => "C_Sign",
        C_SIGNUPDATE = 0x0000002D => "C_SignUpdate",
        C_SIGNFINAL = 0x0000002E => "C_SignFinal",
        C_SIGNRECOVERINIT = 0x0000002F => "C_SignRecoverInit",
        C_SIGNRECOVER = 0x00000030 => "C_SignRecover",
        C_VERIFYINIT = 0x00000031 => "C_VerifyInit",
        C_VERIFY = 0x00000032 => "C_Verify",
        C_VERIFYUPDATE = 0x00000033 => "C_VerifyUpdate",
        C_VERIFYFINAL = 0x00000034 => "C_VerifyFinal",
        C_VERIFYRECOVERINIT = 0x00000035 => "C_VerifyRecoverInit",
        C_VERIFYRECOVER = 0x00000036 => "C_VerifyRecover",
        C_DIGESTENCRYPTUPDATE = 0x00000037 => "C_DigestEncryptUpdate",
        C_DECRYPTDIGESTUPDATE = 0x00000038 => "C_DecryptDigestUpdate",
        C_SIGNENCRYPTUPDATE = 0x00000039 => "C_SignEncryptUpdate",
        C_DECRYPTVERIFYUPDATE = 0x0000003A => "C_DecryptVerifyUpdate",
        C_GENERATEKEY = 0x0000003B => "C_GenerateKey",
        C_GENERATEKEYPAIR = 0x0000003C => "C_GenerateKeyPair",
        C_WRAPKEY = 0x0000003D => "C_WrapKey",
        C_UNWRAPKEY = 0x0000003E => "C_UnwrapKey",
        C_DERIVEKEY = 0x0000003F => "C_DeriveKey",
        C_SEEDRANDOM = 0x00000040 => "C_SeedRandom",
        C_GENERATERANDOM = 0x00000041 => "C_GenerateRandom",
        C_GETFUNCTIONSTATUS = 0x00000042 => "C_GetFunctionStatus",
        C_CANCELFUNCTION = 0x00000043 => "C_CancelFunction",
        C_WAITFORSLOTEVENT = 0x00000044 => "C_WaitForSlotEvent",
    }
}

open_enum! {
    /// PKCS#11 Return Code (KMIP 2.1 §11.39): CK_RV values, named without the CKR_ prefix.
    pub struct Pkcs11ReturnCode {
        OK = 0x00000000 => "OK",
        CANCEL = 0x00000001 => "CANCEL",
        HOST_MEMORY = 0x00000002 => "HOST_MEMORY",
        SLOT_ID_INVALID = 0x00000003 => "SLOT_ID_INVALID",
        GENERAL_ERROR = 0x00000005 => "GENERAL_ERROR",
        FUNCTION_FAILED = 0x00000006 => "FUNCTION_FAILED",
        ARGUMENTS_BAD = 0x00000007 => "ARGUMENTS_BAD",
        DATA_INVALID = 0x00000020 => "DATA_INVALID",
        DATA_LEN_RANGE = 0x00000021 => "DATA_LEN_RANGE",
        DEVICE_ERROR = 0x00000030 => "DEVICE_ERROR",
        DEVICE_MEMORY = 0x00000031 => "DEVICE_MEMORY",
        DEVICE_REMOVED = 0x00000032 => "DEVICE_REMOVED",
        FUNCTION_NOT_SUPPORTED = 0x00000054 => "FUNCTION_NOT_SUPPORTED",
        KEY_HANDLE_INVALID = 0x00000060 => "KEY_HANDLE_INVALID",
        MECHANISM_INVALID = 0x00000070 => "MECHANISM_INVALID",
        PIN_INCORRECT = 0x000000A0 => "PIN_INCORRECT",
        SESSION_HANDLE_INVALID = 0x000000B3 => "SESSION_HANDLE_INVALID",
        SIGNATURE_INVALID = 0x000000C0 => "SIGNATURE_INVALID",
        USER_ALREADY_LOGGED_IN = 0x00000100 => "USER_ALREADY_LOGGED_IN",
        USER_NOT_LOGGED_IN = 0x00000101 => "USER_NOT_LOGGED_IN",
        CRYPTOKI_NOT_INITIALIZED = 0x00000190 => "CRYPTOKI_NOT_INITIALIZED",
        CRYPTOKI_ALREADY_INITIALIZED = 0x00000191 => "CRYPTOKI_ALREADY_INITIALIZED",
    }
}

/// The named values of the enumeration that items tagged `tag` carry, if any.
pub(crate) fn enum_values(tag: crate::tag::Tag) -> Option<&'static [(u32, &'static str)]> {
    use crate::tag::Tag;
    match tag {
        Tag::PKCS_11_FUNCTION => Some(Pkcs11Function::VALUES),
        Tag::PKCS_11_RETURN_CODE => Some(Pkcs11ReturnCode::VALUES),
        _ => values_for_tag(tag),
    }
}

/// Bit-mask Integer items whose flags the XML and JSON encodings may spell by name
/// (KMIP 2.1 §12), with their flags.
pub(crate) fn mask_flags(tag: crate::tag::Tag) -> Option<&'static [(u32, &'static str)]> {
    use crate::tag::Tag;
    Some(match tag {
        Tag::CRYPTOGRAPHIC_USAGE_MASK => &[
            (0x1, "Sign"),
            (0x2, "Verify"),
            (0x4, "Encrypt"),
            (0x8, "Decrypt"),
            (0x10, "Wrap Key"),
            (0x20, "Unwrap Key"),
            (0x40, "Export"),
            (0x80, "MAC Generate"),
            (0x100, "MAC Verify"),
            (0x200, "Derive Key"),
            (0x400, "Content Commitment"),
            (0x800, "Key Agreement"),
            (0x1000, "Certificate Sign"),
            (0x2000, "CRL Sign"),
            (0x4000, "Generate Cryptogram"),
            (0x8000, "Validate Cryptogram"),
            (0x10000, "Translate Encrypt"),
            (0x20000, "Translate Decrypt"),
            (0x40000, "Translate Wrap"),
            (0x80000, "Translate Unwrap"),
            (0x100000, "Authenticate"),
            (0x200000, "Unrestricted"),
            (0x400000, "FPE Encrypt"),
            (0x800000, "FPE Decrypt"),
        ],
        Tag::STORAGE_STATUS_MASK => {
            &[(0x1, "On-line Storage"), (0x2, "Archival Storage"), (0x4, "Destroyed Storage")]
        }
        Tag::PROTECTION_STORAGE_MASK => &[
            (0x1, "Software"),
            (0x2, "Hardware"),
            (0x4, "On Processor"),
            (0x8, "On System"),
            (0x10, "Off System"),
            (0x20, "Hypervisor"),
            (0x40, "Operating System"),
            (0x80, "Container"),
            (0x100, "On Premises"),
            (0x200, "Off Premises"),
            (0x400, "Self Managed"),
            (0x800, "Outsourced"),
            (0x1000, "Validated"),
            (0x2000, "Same Jurisdiction"),
        ],
        _ => return None,
    })
}

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
