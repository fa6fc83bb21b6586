//! Errors of the HSM layer. Each keeps the cryptoki error (which names the PKCS#11
//! function) and says whether retrying may help.

use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::{Error as Pkcs11Error, RvError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum HsmError {
    #[error("cannot load PKCS#11 module {module} (for the default SoftHSM: apt-get install softhsm2): {source}")]
    Load {
        module: PathBuf,
        #[source]
        source: Pkcs11Error,
    },
    #[error(transparent)]
    Pkcs11(#[from] Pkcs11Error),
    #[error("no token labelled {0:?} in the HSM")]
    TokenNotFound(String),
    #[error("the HSM has no uninitialised token to set up")]
    NoFreeSlot,
    #[error("the HSM did not return {0}")]
    MissingAttribute(&'static str),
    #[error("the HSM returned an EC point that is not an uncompressed P-256 point")]
    BadEcPoint,
    #[error("sealed key material is malformed or of an unknown format version")]
    BadSealed,
    #[error("no key with that identifier in the HSM")]
    KeyNotFound,
    #[error("the identifier names one of the service's own HSM keys")]
    ReservedId,
    #[error("the public key is not an RSA or named-curve EC SubjectPublicKeyInfo")]
    BadPublicKey,
    #[error("the digest's length does not match the hashing algorithm")]
    BadDigestLength,
    #[error("the HSM returned a signature of the wrong length")]
    BadSignature,
    #[error("the HSM is unavailable; reconnecting (last error: {0})")]
    Unavailable(String),
    #[error("HSM worker task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("HSM session pool lock poisoned")]
    Poisoned,
    #[error("too many multi-part operations are open; finish or abandon some first")]
    TooManyStreams,
    #[error("no multi-part operation with that Correlation Value (unknown, finished, idle too long, or another client's)")]
    NoSuchStream,
    #[error("value out of range for PKCS#11: {0}")]
    Range(#[from] std::num::TryFromIntError),
    #[error("cannot prepare the SoftHSM token directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HsmError {
    fn rv(&self) -> Option<RvError> {
        match self {
            HsmError::Pkcs11(Pkcs11Error::Pkcs11(rv, _)) => Some(*rv),
            _ => None,
        }
    }

    /// Whether the same call may succeed later (device busy, out of memory, session lost),
    /// as opposed to a permanent refusal (bad mechanism, bad key, bad PIN).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.rv(),
            Some(
                RvError::DeviceError
                    | RvError::DeviceMemory
                    | RvError::DeviceRemoved
                    | RvError::HostMemory
                    | RvError::SessionClosed
                    | RvError::SessionHandleInvalid
                    | RvError::SessionCount
                    | RvError::TokenNotPresent
                    | RvError::FunctionFailed
            )
        ) || matches!(self, HsmError::Join(_) | HsmError::Unavailable(_))
    }

    /// Whether the device, the token or the library's state is gone, so that only
    /// re-initialising the library and logging in again can help. Handles are never
    /// client-supplied, so an invalid one means the connection's cached state is stale.
    pub(crate) fn is_device_lost(&self) -> bool {
        !self.is_softhsm_tag_failure()
            && matches!(
                self.rv(),
                Some(
                    RvError::GeneralError
                        | RvError::DeviceError
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::TokenNotRecognized
                        | RvError::CryptokiNotInitialized
                        | RvError::UserNotLoggedIn
                        | RvError::ObjectHandleInvalid
                        | RvError::KeyHandleInvalid
                )
            )
    }

    /// SoftHSM answers a failed AES-GCM tag check, and a failed AES Key Wrap integrity check,
    /// with CKR_GENERAL_ERROR: from a decryption, verification or unwrap that is the data's
    /// fault, not the device's. So it answers an ECDH with a point it cannot use: the
    /// client's data too, which must not take the connection down.
    fn is_softhsm_tag_failure(&self) -> bool {
        matches!(
            self,
            HsmError::Pkcs11(Pkcs11Error::Pkcs11(
                RvError::GeneralError,
                Function::Decrypt
                    | Function::DecryptUpdate
                    | Function::DecryptFinal
                    | Function::Verify
                    | Function::VerifyUpdate
                    | Function::VerifyFinal
                    | Function::UnwrapKey
                    | Function::DeriveKey
            ))
        )
    }

    /// Whether the HSM refused the caller's data or parameters (a wrong tag, a bad length),
    /// rather than failing itself.
    pub(crate) fn is_data_rejected(&self) -> bool {
        matches!(
            self.rv(),
            Some(
                RvError::DataInvalid
                    | RvError::DataLenRange
                    | RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::MechanismParamInvalid
                    | RvError::SignatureInvalid
                    | RvError::WrappedKeyInvalid
                    | RvError::WrappedKeyLenRange
            )
        ) || matches!(self, HsmError::BadDigestLength)
            || self.is_softhsm_tag_failure()
    }

    /// Whether the HSM refused the key's size for the mechanism (SoftHSM wants HMAC keys at
    /// least as long as the hash, for one).
    pub(crate) fn is_key_size_rejected(&self) -> bool {
        matches!(self.rv(), Some(RvError::KeySizeRange))
    }

    /// Whether an object handle was no longer valid (its object destroyed meanwhile).
    pub(crate) fn is_stale_handle(&self) -> bool {
        matches!(self.rv(), Some(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid))
    }

    /// Whether the session that produced this error must not be reused.
    pub(crate) fn is_session_broken(&self) -> bool {
        matches!(
            self.rv(),
            Some(
                RvError::SessionClosed
                    | RvError::SessionHandleInvalid
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::UserNotLoggedIn
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(rv: RvError, f: Function) -> HsmError {
        HsmError::Pkcs11(Pkcs11Error::Pkcs11(rv, f))
    }

    #[test]
    fn a_lost_device_is_told_from_bad_data() {
        // SoftHSM's answer to a token directory that vanished under a key generation.
        assert!(rv(RvError::GeneralError, Function::GenerateKeyPair).is_device_lost());
        assert!(rv(RvError::DeviceRemoved, Function::Sign).is_device_lost());
        assert!(rv(RvError::ObjectHandleInvalid, Function::Encrypt).is_device_lost());
        // SoftHSM's answer to a tampered AES-GCM tag, and plain bad input.
        assert!(!rv(RvError::GeneralError, Function::Decrypt).is_device_lost());
        assert!(rv(RvError::GeneralError, Function::Decrypt).is_data_rejected());
        assert!(!rv(RvError::GeneralError, Function::DeriveKey).is_device_lost());
        assert!(!rv(RvError::EncryptedDataInvalid, Function::Decrypt).is_device_lost());
        assert!(!rv(RvError::KeySizeRange, Function::SignInit).is_device_lost());
        assert!(!HsmError::Unavailable("down".into()).is_device_lost());
    }
}
