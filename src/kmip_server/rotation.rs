//! Automatic rotation (KMIP 2.1 §4.48–4.54): a symmetric key, a key pair's private key or
//! a certificate with Rotate Automatic set to True and a Rotate Interval is re-keyed (or
//! re-certified) by the server once that long has passed since its Initial Date, with its
//! Rotate Offset as the Offset. The replacement copies the rotation attributes, so it
//! rotates in its turn; the old object stays usable as a Re-key leaves it. The server acts as the key's owner, and each
//! rotation is audited.

use std::collections::HashMap;

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{LinkType, ObjectType, Operation, State};
use kmip::{Tag, Value};

use crate::app::AppState;
use crate::authz::Principal;
use crate::kmip_server::ops::{certify, effective_state, key_pair, rekey, OpCtx};
use crate::store::ObjectRow;

/// How long a key whose rotation failed waits before it is tried again.
const RETRY_AFTER: i64 = 300;

/// Re-keys every object whose rotation is due (Re-key for symmetric keys, Re-key Key Pair
/// for private keys, Re-certify for certificates); returns how many were rotated. `failed` holds, across calls, when
/// each key that failed may be tried again, so a key that cannot rotate is not retried
/// (and audited) every second.
pub(crate) async fn rotate_due(
    state: &AppState,
    failed: &mut HashMap<String, i64>,
) -> Result<usize, crate::store::StoreError> {
    // Without the HSM every Re-key would fail: wait for it.
    if !state.hsm.is_up() {
        return Ok(0);
    }
    let now = crate::util::now();
    failed.retain(|_, retry| *retry > now);
    let mut rotated = 0;
    for id in state.store.keys_due_for_rotation(now).await? {
        if failed.contains_key(&id) {
            continue;
        }
        let now = crate::util::now();
        // One object that cannot be read (a stored value gone bad) must not stop the rest.
        let (row, attrs) = match state.store.object_with_attributes(&id).await {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(key = %id, error = %e, "a key due for rotation cannot be read");
                failed.insert(id, now + RETRY_AFTER);
                continue;
            }
        };
        let Some(offset) = due(&row, &attrs, now) else { continue };
        let owner = Principal::named(&row.owner);
        let operation = match ObjectType(row.object_type as u32) {
            ObjectType::PRIVATE_KEY => Operation::RE_KEY_KEY_PAIR,
            ObjectType::CERTIFICATE => Operation::RE_CERTIFY,
            _ => Operation::RE_KEY,
        };
        let cx = OpCtx {
            state,
            principal: &owner,
            version: kmip::ProtocolVersion::V2_1,
            now,
            placeholder: None,
            operation,
            policy_authorised: false,
            import: None,
        };
        let result = match operation {
            Operation::RE_KEY_KEY_PAIR => {
                let req = kmip::ops::rekey_key_pair::Request {
                    private_key_unique_identifier: Some(id.clone()),
                    offset,
                    keys: kmip::ops::create_key_pair::Request {
                        common: Vec::new(),
                        private: Vec::new(),
                        public: Vec::new(),
                    },
                };
                key_pair::rekey(&cx, req).await
            }
            Operation::RE_CERTIFY => {
                let req = kmip::ops::recertify::Request {
                    certify: kmip::ops::certify::Request {
                        unique_identifier: Some(id.clone()),
                        certificate_request: None,
                        attributes: Vec::new(),
                    },
                    offset,
                };
                certify::recertify(&cx, req).await
            }
            _ => {
                let req = kmip::ops::rekey::Request {
                    unique_identifier: Some(id.clone()),
                    offset,
                    attributes: Vec::new(),
                };
                rekey::handle(&cx, req).await
            }
        };
        let detail = "automatic rotation (Rotate Interval reached)".to_owned();
        match result {
            Ok(outcome) => {
                rotated += 1;
                tracing::info!(old = %id, new = ?outcome.object_id, "key rotated automatically");
                let new = outcome.object_id;
                super::dispatch::audit(state, &owner, operation, new, "ok", Some(detail)).await;
            }
            Err(e) => {
                tracing::warn!(key = %id, error = %e, "automatic rotation failed");
                let why = Some(format!("{detail}: {e}"));
                super::dispatch::audit(state, &owner, operation, Some(id.clone()), "failed", why)
                    .await;
                failed.insert(id, now + RETRY_AFTER);
            }
        }
    }
    Ok(rotated)
}

/// When the key is due for rotation at `now`: the Offset its Re-key takes (Rotate Offset).
/// Due means Rotate Automatic is True, Rotate Interval is set and has passed since the
/// Initial Date, the key is Active, and it has not been replaced already (checked again
/// on the object itself after the store's selection).
fn due(row: &ObjectRow, attrs: &[Attribute], now: i64) -> Option<Option<u32>> {
    let value = |name| find(attrs, name).map(|a| &a.value);
    if value(names::ROTATE_AUTOMATIC) != Some(&Value::Boolean(true)) {
        return None;
    }
    let Some(Value::Interval(interval)) = value(names::ROTATE_INTERVAL) else { return None };
    let replaced = attrs.iter().filter(|a| a.name == "Link").any(|a| {
        let link = kmip::Ttlv::new(Tag::LINK, a.value.clone());
        link.find(Tag::LINK_TYPE).and_then(|t| t.as_enum().ok())
            == Some(LinkType::REPLACEMENT_OBJECT_LINK.0)
    });
    let ripe = *interval > 0 && row.initial_date.saturating_add(i64::from(*interval)) <= now;
    if replaced || !ripe || effective_state(row, now) != State::ACTIVE {
        return None;
    }
    Some(match value(names::ROTATE_OFFSET) {
        Some(Value::Interval(o)) => Some(*o),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(initial: i64) -> ObjectRow {
        let mut row = ObjectRow::for_test("k", "alice", initial);
        row.state = i64::from(State::ACTIVE.0);
        row.activation_date = Some(initial);
        row
    }

    #[test]
    fn due_when_the_interval_has_passed_on_an_active_unreplaced_key() {
        let mut attrs = vec![
            Attribute::new(names::ROTATE_AUTOMATIC, Value::Boolean(true)),
            Attribute::new(names::ROTATE_INTERVAL, Value::Interval(60)),
        ];
        assert_eq!(due(&key(1000), &attrs, 1059), None, "not yet");
        assert_eq!(due(&key(1000), &attrs, 1060), Some(None));
        attrs.push(Attribute::new(names::ROTATE_OFFSET, Value::Interval(5)));
        assert_eq!(due(&key(1000), &attrs, 1060), Some(Some(5)));
        let mut pre_active = key(1000);
        pre_active.state = i64::from(State::PRE_ACTIVE.0);
        pre_active.activation_date = None;
        assert_eq!(due(&pre_active, &attrs, 2000), None, "only Active keys");
        attrs.push(rekey::link(LinkType::REPLACEMENT_OBJECT_LINK, "n"));
        assert_eq!(due(&key(1000), &attrs, 2000), None, "already replaced");
        attrs[0].value = Value::Boolean(false);
        attrs.pop();
        assert_eq!(due(&key(1000), &attrs, 2000), None, "Rotate Automatic False");
    }
}
