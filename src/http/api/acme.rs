//! ACME External Account Binding keys (`acme/eab`): an administrator creates a key id and
//! HMAC key for a service, which its ACME client uses once to bind its new account (RFC
//! 8555 §7.3.4). The HMAC key is shown once and kept sealed by the HSM.

use axum::extract::{Path, State};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data, done, ApiError, ApiResult, Body, Caller};
use crate::app::AppState;
use crate::store::EabKeyRow;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// The ACME profiles accounts bound with this key may order; absent: all.
    #[serde(default)]
    profiles: Option<Vec<String>>,
}

/// `POST /v1/acme/eab` (body optional: `{"profiles": [...]}`): a new key;
/// `{"data": {"id", "key"}}` with the key as base64url.
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<NewKey>,
) -> ApiResult {
    if let Some(names) = &req.profiles {
        if let Some(unknown) = names.iter().find(|n| state.acme.settings.profile(Some(n)).is_none())
        {
            return Err(ApiError::bad_request(format!("no ACME profile {unknown:?}")));
        }
    }
    let id = crate::util::random_hex(12);
    let key = crate::util::random_bytes(32);
    let (secret, aad) = (key.clone(), crate::acme::eab_aad(&id));
    let sealed = state.hsm.seal_async(secret, aad).await.map_err(|e| ApiError::internal(&e))?;
    let row = EabKeyRow {
        id: id.clone(),
        sealed_key: sealed.bytes,
        created_at: crate::util::now(),
        created_by: caller.identity.clone(),
        account_id: None,
        bound_at: None,
        profiles: req.profiles.as_ref().map(|p| json!(p).to_string()),
    };
    state.store.insert_acme_eab_key(&row).await?;
    data(json!({ "id": id, "key": crate::acme::jws::encode(&key), "profiles": req.profiles }))
}

/// `GET /v1/acme/eab` (or LIST): every key with who made it and the account it bound.
pub(super) async fn list(State(state): State<AppState>) -> ApiResult {
    let keys: Vec<_> = state
        .store
        .acme_eab_keys()
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id,
                "created_time": crate::util::rfc3339(k.created_at),
                "created_by": k.created_by,
                "account": k.account_id,
                "bound_time": k.bound_at.map(crate::util::rfc3339),
                "profiles": k.profiles.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
            })
        })
        .collect();
    data(json!({ "keys": keys }))
}

/// `DELETE /v1/acme/eab/ID`: withdraws a key not yet bound to an account.
pub(super) async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    if state.store.delete_acme_eab_key(&id).await? {
        done()
    } else {
        Err(ApiError::not_found(format!("unbound EAB key {id}")))
    }
}
