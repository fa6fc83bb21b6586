//! Revoke: compromise reasons move the object to Compromised (a destroyed one to
//! Destroyed Compromised); other reasons deactivate it (KMIP 1.4 §4.20).

use kmip::enums::{ObjectType, RevocationReasonCode, State};
use kmip::ops::revoke;

use super::{refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: revoke::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    refresh_state(&mut row, cx.now);
    let state = State(row.state as u32);
    let compromise = matches!(
        req.reason,
        RevocationReasonCode::KEY_COMPROMISE | RevocationReasonCode::CA_COMPROMISE
    );
    // The transitions of KMIP 1.4 §3.22 (3, 5, 8 and 10 for a compromise, 6 for other
    // reasons), and one it does not list: a Pre-Active object revoked for another reason
    // is deactivated, as clients in the field expect (Percona's keyring_kmip revokes a
    // key it registered and never activated, then destroys it).
    let next = match (compromise, state) {
        (true, State::PRE_ACTIVE | State::ACTIVE | State::DEACTIVATED) => State::COMPROMISED,
        (true, State::DESTROYED) => State::DESTROYED_COMPROMISED,
        (false, State::PRE_ACTIVE | State::ACTIVE) => State::DEACTIVATED,
        _ => return Err(OpError::WrongState { op: "Revoke", state }),
    };
    row.state = i64::from(next.0);
    if compromise {
        row.compromise_date = Some(cx.now);
        row.compromise_occurrence_date = Some(req.compromise_occurrence_date.unwrap_or(cx.now));
    } else {
        row.deactivation_date = Some(cx.now);
    }
    row.revocation_reason = Some(i64::from(req.reason.0));
    row.revocation_message = req.message;
    row.last_change_date = cx.now;
    // A certificate this CA issued goes on its CRL and OCSP answers too, when this object
    // is the one Certify made for it: anyone may Register a copy of a certificate (or a
    // forgery with its serial), and revoking that copy must not revoke the original. By
    // the object, not its material: a destroyed object revoked for compromise has none.
    // First: should the state then fail to save, a retry finds the object as it was and
    // revokes again (the CA keeps the first revocation), rather than an object marked
    // revoked whose certificate the CA still vouches for.
    if row.object_type == i64::from(ObjectType::CERTIFICATE.0) {
        let reason = rfc5280_reason(req.reason);
        cx.state.store.revoke_certified(&id, reason, cx.now).await?;
    }
    cx.state.store.save_lifecycle(&row).await?;
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}

/// The RFC 5280 CRL reason code for a KMIP Revocation Reason Code.
fn rfc5280_reason(kmip: RevocationReasonCode) -> i64 {
    match kmip {
        RevocationReasonCode::KEY_COMPROMISE => 1,
        RevocationReasonCode::CA_COMPROMISE => 2,
        RevocationReasonCode::AFFILIATION_CHANGED => 3,
        RevocationReasonCode::SUPERSEDED => 4,
        RevocationReasonCode::CESSATION_OF_OPERATION => 5,
        RevocationReasonCode::PRIVILEGE_WITHDRAWN => 9,
        _ => 0,
    }
}
