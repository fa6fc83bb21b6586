//! Errors of KMIP operations, and their one mapping to Result Reason and Result Message.
//! Reasons that only KMIP 2.x defines fall back to their nearest 1.x reason for 1.x clients.

use kmip::enums::{ResultReason, State};
use kmip::ttlv::FieldError;
use kmip::{ProtocolVersion, Ttlv};

use crate::hsm::HsmError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("object {0} not found")]
    NotFound(String),
    #[error("access to object {0} denied")]
    Denied(String),
    #[error("names under {0} are the TDE API's: a KMIP client cannot give one")]
    ReservedName(String),
    #[error("{op} is not allowed in state {state:?}")]
    WrongState { op: &'static str, state: State },
    #[error("object {0} has been destroyed")]
    Destroyed(String),
    #[error("operation not supported")]
    UnsupportedOperation,
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
    /// A request that cannot be carried out as sent (the OASIS test cases answer a
    /// Decrypt without its IV with Invalid Message).
    #[error("{0}")]
    InvalidMessage(&'static str),
    #[error("key format not supported: {0}")]
    KeyFormat(&'static str),
    #[error("attribute {0} is set by the server and cannot be changed")]
    ReadOnly(String),
    #[error("attribute {0} can have only one value")]
    SingleValued(String),
    #[error("object {0} exists already")]
    AlreadyExists(String),
    #[error("the object already has that Name")]
    NonUniqueName,
    #[error("attribute {0} not found")]
    AttributeNotFound(String),
    #[error("no asynchronous operation has that correlation value (all operations complete synchronously)")]
    NoSuchAsyncOperation,
    #[error("object {0} is archived; Recover it first")]
    Archived(String),
    #[error("private keys never leave the HSM")]
    NotExtractable,
    #[error("{0}")]
    CryptoFailure(&'static str),
    #[error("the key's Cryptographic Usage Mask does not allow {0}")]
    UsageMask(&'static str),
    #[error("the Usage Limits of object {0} are used up")]
    UsageLimitsExhausted(String),
    #[error("{0}")]
    Illegal(&'static str),
    /// Cryptographic parameters outside what the algorithm allows (a GCM tag length other
    /// than 12 to 16 bytes): General Failure, as the OASIS test cases answer
    /// (CS-BC-M-GCM-1), with the message saying which.
    #[error("{0}")]
    BadCryptoParameter(&'static str),
    #[error("object {0} is Sensitive: it is returned only wrapped by another key")]
    Sensitive(String),
    /// The object must be Quantum Safe (KMIP 2.1 §4.45) and would not be: General Failure,
    /// as the OASIS test case QS-M-2 answers.
    #[error("not quantum safe: {0}")]
    NotQuantumSafe(&'static str),
    /// Check denied the use. KMIP 1.x answers Permission Denied with a payload naming the
    /// fields that caused it (KMIP 1.4 §4.10, §11.11); 2.x answers with the reason of the
    /// first (KMIP 2.1 §6.1.7.1), without a payload, as its baseline test cases do.
    #[error("Check denied the intended use")]
    CheckDenied { fields: Vec<Ttlv>, reason: ResultReason },
    #[error("PKCS#11 interface {0:?} is not offered (only the default PKCS#11 interface)")]
    Pkcs11Interface(String),
    #[error("no object for the ID placeholder: no earlier batch item named one")]
    NoPlaceholder,
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("HSM error: {0}")]
    Hsm(#[from] HsmError),
    #[error("certificate authority error: {0}")]
    Ca(#[from] crate::ca::CaError),
}

impl OpError {
    /// The Result Reason for a client speaking `version`.
    pub(crate) fn reason(&self, version: ProtocolVersion) -> ResultReason {
        let v2 = version.is_v2();
        let pick = |two, one| if v2 { two } else { one };
        match self {
            OpError::Field(FieldError::Missing { .. }) => ResultReason::MISSING_DATA,
            OpError::Field(_) | OpError::Invalid(_) => ResultReason::INVALID_FIELD,
            OpError::InvalidMessage(_) => ResultReason::INVALID_MESSAGE,
            // KMIP 2.x names an unknown object Object Not Found (2.1 §11.18; OASIS BL-M-4).
            OpError::NotFound(_) => {
                pick(ResultReason::OBJECT_NOT_FOUND, ResultReason::ITEM_NOT_FOUND)
            }
            OpError::NoPlaceholder => ResultReason::ITEM_NOT_FOUND,
            OpError::Pkcs11Interface(_) => ResultReason::PKCS_11_INVALID_INTERFACE,
            OpError::Denied(_) | OpError::ReservedName(_) | OpError::UsageLimitsExhausted(_) => {
                ResultReason::PERMISSION_DENIED
            }
            OpError::CheckDenied { reason, .. } => pick(*reason, ResultReason::PERMISSION_DENIED),
            OpError::Illegal(_) => ResultReason::ILLEGAL_OPERATION,
            // 1.x has no lifecycle reason; the OASIS 1.4 test cases expect Permission Denied.
            OpError::WrongState { .. } => {
                pick(ResultReason::WRONG_KEY_LIFECYCLE_STATE, ResultReason::PERMISSION_DENIED)
            }
            OpError::Destroyed(_) => {
                pick(ResultReason::OBJECT_DESTROYED, ResultReason::ILLEGAL_OPERATION)
            }
            OpError::UnsupportedOperation => ResultReason::OPERATION_NOT_SUPPORTED,
            OpError::Unsupported(_) => ResultReason::FEATURE_NOT_SUPPORTED,
            OpError::KeyFormat(_) => ResultReason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
            OpError::ReadOnly(_) => {
                pick(ResultReason::ATTRIBUTE_READ_ONLY, ResultReason::PERMISSION_DENIED)
            }
            OpError::SingleValued(_) => {
                pick(ResultReason::ATTRIBUTE_SINGLE_VALUED, ResultReason::INVALID_FIELD)
            }
            OpError::AlreadyExists(_) => {
                pick(ResultReason::OBJECT_ALREADY_EXISTS, ResultReason::INVALID_FIELD)
            }
            OpError::NonUniqueName => {
                pick(ResultReason::NON_UNIQUE_NAME_ATTRIBUTE, ResultReason::INVALID_FIELD)
            }
            OpError::AttributeNotFound(_) => {
                pick(ResultReason::ATTRIBUTE_NOT_FOUND, ResultReason::ITEM_NOT_FOUND)
            }
            OpError::NotExtractable => ResultReason::NOT_EXTRACTABLE,
            OpError::Sensitive(_) => pick(ResultReason::SENSITIVE, ResultReason::PERMISSION_DENIED),
            OpError::Archived(_) => ResultReason::OBJECT_ARCHIVED,
            OpError::NoSuchAsyncOperation => pick(
                ResultReason::INVALID_ASYNCHRONOUS_CORRELATION_VALUE,
                ResultReason::ITEM_NOT_FOUND,
            ),
            OpError::UsageMask(_) => pick(
                ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
                ResultReason::PERMISSION_DENIED,
            ),
            OpError::Store(e) if e.is_input() => ResultReason::INVALID_FIELD,
            OpError::Store(_) | OpError::BadCryptoParameter(_) | OpError::NotQuantumSafe(_) => {
                ResultReason::GENERAL_FAILURE
            }
            // 2.x has a reason for it; 1.x clients sent a value that names nothing.
            OpError::Hsm(HsmError::NoSuchStream) => {
                pick(ResultReason::INVALID_CORRELATION_VALUE, ResultReason::ITEM_NOT_FOUND)
            }
            OpError::Hsm(HsmError::TooManyStreams) => ResultReason::GENERAL_FAILURE,
            OpError::Hsm(_) | OpError::CryptoFailure(_) => ResultReason::CRYPTOGRAPHIC_FAILURE,
            OpError::Ca(crate::ca::CaError::NameConstraints(_)) => ResultReason::INVALID_FIELD,
            OpError::Ca(_) => ResultReason::GENERAL_FAILURE,
        }
    }

    /// The Result Message: precise for the client's mistakes, generic for internal failures
    /// (whose details go to the server log, not to the client).
    pub(crate) fn client_message(&self) -> String {
        match self {
            OpError::Store(StoreError::Conflict(id)) => {
                format!("object {id} was changed concurrently; retry")
            }
            OpError::Store(e) if e.is_input() => e.to_string(),
            OpError::Store(_) => "internal storage error".to_owned(),
            OpError::Hsm(e @ (HsmError::NoSuchStream | HsmError::TooManyStreams)) => e.to_string(),
            OpError::Hsm(e) if e.is_transient() => "HSM temporarily unavailable; retry".to_owned(),
            OpError::Hsm(e) if e.is_key_size_rejected() => {
                "the HSM does not accept a key of this size for this operation".to_owned()
            }
            OpError::Hsm(e) if e.is_data_rejected() => {
                "the data does not decrypt or verify with this key and these parameters".to_owned()
            }
            OpError::Hsm(_) => "HSM operation failed".to_owned(),
            OpError::Ca(e @ crate::ca::CaError::NameConstraints(_)) => e.to_string(),
            OpError::Ca(_) => "the certificate authority could not issue".to_owned(),
            other => other.to_string(),
        }
    }

    /// Whether this is an internal failure worth logging.
    pub(crate) fn is_internal(&self) -> bool {
        match self {
            OpError::Ca(crate::ca::CaError::NameConstraints(_)) => false,
            OpError::Store(e) => !e.is_input(),
            OpError::Ca(_) => true,
            OpError::Hsm(HsmError::NoSuchStream) => false,
            OpError::Hsm(e) => !e.is_data_rejected() && !e.is_key_size_rejected(),
            _ => false,
        }
    }
}
