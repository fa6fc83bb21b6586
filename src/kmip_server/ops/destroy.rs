//! Destroy: removes the key material and keeps the metadata. Active objects must be
//! revoked first (KMIP 1.4 §4.21).

use kmip::enums::State;
use kmip::ops::destroy;

use super::{refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: destroy::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    refresh_state(&mut row, cx.now);
    let state = State(row.state as u32);
    row.state = i64::from(match state {
        State::PRE_ACTIVE | State::DEACTIVATED => State::DESTROYED.0,
        State::COMPROMISED => State::DESTROYED_COMPROMISED.0,
        State::DESTROYED | State::DESTROYED_COMPROMISED => {
            // A key-pair half whose removal from the HSM failed before goes now.
            if super::is_key_pair_half(&row) {
                let hsm_id = row.id.clone();
                let _ =
                    cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await;
            }
            return Err(OpError::Destroyed(id));
        }
        _ => return Err(OpError::WrongState { op: "Destroy", state }),
    });
    let half = super::is_key_pair_half(&row);
    let had_secret = row.sealed_material.is_some();
    row.sealed_material = None;
    row.public_material = None;
    row.kek_label = None;
    row.destroy_date = Some(cx.now);
    row.last_change_date = cx.now;
    // Recorded first: should this fail (a change made meanwhile), nothing is lost, and the
    // client may try again; the key in the HSM is unusable from then on.
    cx.state.store.save_lifecycle(&row).await?;
    // Key-pair halves live in the HSM.
    if half {
        let hsm_id = row.id.clone();
        let removed = cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await;
        if let Err(e) = removed {
            tracing::error!(error = %e, object = %id, "a destroyed key is still in the HSM");
            return Err(e.into());
        }
    }
    // A copy opened for Encrypt/Decrypt is removed from the HSM too (it could not be used
    // anyway: operations read the sealed material first).
    if had_secret {
        let hsm_id = id.clone();
        if let Err(e) =
            cx.state.hsm.run(move |hsm, s| hsm.forget_open_key(s, hsm_id.as_bytes())).await
        {
            tracing::warn!(error = %e, "removing the destroyed key's open copy failed");
        }
    }
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}
