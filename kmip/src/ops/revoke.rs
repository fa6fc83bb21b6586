//! Revoke (KMIP 1.4 §4.20, KMIP 2.1 §6.1.43).

use crate::enums::RevocationReasonCode;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv};

/// Revoke request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Revocation Reason Code.
    pub reason: RevocationReasonCode,
    /// Revocation Message.
    pub message: Option<String>,
    /// Compromise Occurrence Date (for Key Compromise and CA Compromise).
    pub compromise_occurrence_date: Option<i64>,
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let rr = payload.require(Tag::REVOCATION_REASON)?;
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            reason: RevocationReasonCode(rr.require(Tag::REVOCATION_REASON_CODE)?.as_enum()?),
            message: rr
                .find(Tag::REVOCATION_MESSAGE)
                .map(|t| t.as_text().map(str::to_owned))
                .transpose()?,
            compromise_occurrence_date: payload
                .find(Tag::COMPROMISE_OCCURRENCE_DATE)
                .map(Ttlv::as_datetime)
                .transpose()?,
        })
    }
}
