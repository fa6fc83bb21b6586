//! TDE key routes on the configured mount (default `tde`): the read side in Vault's KV
//! version 2 format, as MariaDB's `hashicorp_key_management` plugin and other Vault KV
//! clients read it (`MOUNT/data/NAME?version=N`, `MOUNT/metadata/NAME`, and
//! `sys/mounts/MOUNT/tune`, which the plugin checks at start), and Strongroom's own
//! management routes (`MOUNT/keys/NAME` create/read/delete, `MOUNT/keys/NAME/rotate`,
//! `MOUNT/destroy/NAME`).

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kmip::enums::Operation;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data, keys, ApiError, ApiResult, AuditObject, Body, Caller, Params};
use crate::app::AppState;
use crate::authz::Principal;
use crate::kmip_server::error::OpError;
use crate::kmip_server::ops::{effective_state, OpCtx};
use crate::store::StoreError;
use crate::tde::{TdeError, Version};

impl From<TdeError> for ApiError {
    fn from(e: TdeError) -> ApiError {
        let status = match &e {
            TdeError::NoKey(_) | TdeError::NoVersion { .. } | TdeError::Destroyed { .. } => {
                StatusCode::NOT_FOUND
            }
            TdeError::Unusable { .. } => StatusCode::FORBIDDEN,
            TdeError::Invalid(_) => StatusCode::BAD_REQUEST,
            TdeError::Exists(_)
            | TdeError::NeedsForce { .. }
            | TdeError::Ambiguous(_)
            | TdeError::Latest { .. } => StatusCode::CONFLICT,
            TdeError::BrokenChain(_) => return ApiError::internal(&e),
            TdeError::Op(op) => match op {
                OpError::NotFound(_) | OpError::Destroyed(_) => StatusCode::NOT_FOUND,
                OpError::Denied(_) => StatusCode::FORBIDDEN,
                OpError::WrongState { .. } | OpError::Store(StoreError::Conflict(_)) => {
                    StatusCode::CONFLICT
                }
                OpError::Store(_) | OpError::Hsm(_) => return ApiError::internal(&e),
                _ => StatusCode::BAD_REQUEST,
            },
        };
        let message = match &e {
            TdeError::Op(op) => op.client_message(),
            other => other.to_string(),
        };
        ApiError::new(status, message)
    }
}

/// The mount named in the path must be the configured one.
fn check_mount(state: &AppState, mount: &str) -> Result<(), ApiError> {
    if mount == state.tde.mount {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no secrets engine is mounted at {mount}/"),
        ))
    }
}

/// What every per-key route needs: the key named in the path (on the configured mount, or
/// 404) and the caller, whom the API's policies already allowed.
pub(super) struct KeyCall {
    name: String,
    caller: Caller,
    principal: Principal,
}

impl FromRequestParts<AppState> for KeyCall {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path((mount, name)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        check_mount(state, &mount)?;
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not authenticated"))?;
        let principal = Principal::named(&caller.identity);
        Ok(KeyCall { name, caller, principal })
    }
}

/// An operation context for a caller the API's policies already allowed.
fn context<'a>(state: &'a AppState, principal: &'a Principal, operation: Operation) -> OpCtx<'a> {
    OpCtx {
        state,
        principal,
        version: kmip::ProtocolVersion::V2_1,
        now: crate::util::now(),
        placeholder: None,
        operation,
        policy_authorised: true,
        import: None,
    }
}

fn state_name(v: &Version, now: i64) -> String {
    let s = effective_state(&v.row, now);
    s.name().map(str::to_owned).unwrap_or_else(|| format!("{:#x}", s.0))
}

/// A response for one managed object, recorded in the audit trail by the middleware.
fn audited(object_id: &str, detail: String, response: Response) -> ApiResult {
    let mut response = response;
    response.extensions_mut().insert(AuditObject { object_id: object_id.to_owned(), detail });
    Ok(response)
}

/// `GET /v1/sys/mounts/MOUNT/tune`: the mount's settings; `options.version` is what
/// MariaDB's plugin checks (it needs KV version 2).
pub(super) async fn tune(State(state): State<AppState>, Path(mount): Path<String>) -> ApiResult {
    check_mount(&state, &mount)?;
    let settings = json!({
        "default_lease_ttl": 0,
        "max_lease_ttl": 0,
        "force_no_cache": false,
        "description": "Strongroom TDE keys (managed AES keys, versions by re-key)",
        "options": { "version": "2" },
    });
    let mut body = settings.clone();
    body["data"] = settings;
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    #[serde(default)]
    version: Option<u32>,
}

/// `GET /v1/MOUNT/data/NAME[?version=N]`: the key material as hex, in KV v2's shape.
/// Version 0 or none means the latest.
pub(super) async fn read(
    State(state): State<AppState>,
    KeyCall { name, principal, .. }: KeyCall,
    Params(q): Params<VersionQuery>,
) -> ApiResult {
    let cx = context(&state, &principal, Operation::GET);
    let key = state.tde.read(&cx, &name, q.version.filter(|&v| v != 0)).await?;
    let body = json!({
        "request_id": crate::util::uuid_v4(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": {
            "data": { "data": hex::encode(&key.material) },
            "metadata": {
                "created_time": crate::util::rfc3339(key.created),
                "custom_metadata": null,
                "deletion_time": "",
                "destroyed": false,
                "version": key.version,
            },
        },
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    });
    let detail = format!("key {name} version {}", key.version);
    audited(&key.object_id, detail, Json(body).into_response())
}

/// `LIST /v1/MOUNT/metadata` and `LIST /v1/MOUNT/keys`: the key names.
pub(super) async fn list(State(state): State<AppState>, Path(mount): Path<String>) -> ApiResult {
    check_mount(&state, &mount)?;
    let prefix = state.tde.object_name("");
    let names = state.store.key_names_with_prefix(&prefix).await?;
    keys(names.into_iter().filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned)).collect())
}

/// `GET /v1/MOUNT/metadata/NAME`: the versions in KV v2's metadata shape.
pub(super) async fn metadata(
    State(state): State<AppState>,
    KeyCall { name, principal, .. }: KeyCall,
) -> ApiResult {
    let cx = context(&state, &principal, Operation::GET_ATTRIBUTES);
    let versions = state.tde.versions(&cx, &name).await?;
    let mut by_number = BTreeMap::new();
    for v in &versions {
        let destroyed = v.destroyed(cx.now);
        by_number.insert(
            v.number.to_string(),
            json!({
                "created_time": crate::util::rfc3339(v.row.initial_date),
                "deletion_time": v.row.destroy_date.map(crate::util::rfc3339).unwrap_or_default(),
                "destroyed": destroyed,
            }),
        );
    }
    let first = versions.first().map(|v| v.row.initial_date).unwrap_or_default();
    let last = versions.last().map(|v| v.row.last_change_date).unwrap_or_default();
    let oldest = versions.iter().find(|v| !v.destroyed(cx.now)).map_or(0, |v| v.number);
    data(json!({
        "cas_required": false,
        "created_time": crate::util::rfc3339(first),
        "current_version": versions.len(),
        "custom_metadata": null,
        "delete_version_after": "0s",
        "max_versions": 0,
        "oldest_version": oldest,
        "updated_time": crate::util::rfc3339(last),
        "versions": by_number,
    }))
}

/// `GET /v1/MOUNT/keys/NAME`: each version with its managed object and state.
pub(super) async fn read_key(
    State(state): State<AppState>,
    KeyCall { name, principal, .. }: KeyCall,
) -> ApiResult {
    let cx = context(&state, &principal, Operation::GET_ATTRIBUTES);
    let versions = state.tde.versions(&cx, &name).await?;
    let list: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "version": v.number,
                "id": v.row.id,
                "state": state_name(v, cx.now),
                "owner": v.row.owner,
                "created_time": crate::util::rfc3339(v.row.initial_date),
            })
        })
        .collect();
    data(json!({
        "name": name,
        "kmip_name": state.tde.object_name(&name),
        "latest_version": versions.len(),
        "versions": list,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRequest {
    #[serde(default)]
    bits: Option<i32>,
    /// The KMIP identity (certificate subject) to own the key, so that client can also
    /// manage it over KMIP; root tokens only.
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /v1/MOUNT/keys/NAME`: creates key NAME (AES-256 by default) in the HSM.
pub(super) async fn create(
    State(state): State<AppState>,
    KeyCall { name, caller, .. }: KeyCall,
    Body(req): Body<CreateRequest>,
) -> ApiResult {
    if req.owner.is_some() && !caller.is_root() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only a root token may set owner"));
    }
    let principal = Principal::named(req.owner.as_deref().unwrap_or(&caller.identity));
    let cx = context(&state, &principal, Operation::CREATE);
    let id = state.tde.create(&cx, &name, req.bits.unwrap_or(256)).await?;
    let body = json!({ "data": { "name": name, "version": 1, "id": id } });
    audited(&id, format!("key {name} version 1 created"), Json(body).into_response())
}

/// `POST /v1/MOUNT/keys/NAME/rotate`: adds a version (KMIP Re-key of the latest).
pub(super) async fn rotate(
    State(state): State<AppState>,
    KeyCall { name, principal, .. }: KeyCall,
) -> ApiResult {
    let cx = context(&state, &principal, Operation::RE_KEY);
    let (version, id) = state.tde.rotate(&cx, &name).await?;
    let body = json!({ "data": { "name": name, "version": version, "id": id } });
    audited(&id, format!("key {name} version {version} created"), Json(body).into_response())
}

#[derive(Deserialize)]
pub(super) struct ForceQuery {
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DestroyRequest {
    versions: Vec<u32>,
    #[serde(default)]
    force: bool,
}

async fn destroy(state: &AppState, call: &KeyCall, versions: &[u32], force: bool) -> ApiResult {
    let mut cx = context(state, &call.principal, Operation::DESTROY);
    let done = state.tde.destroy(&mut cx, &call.name, versions, force).await?;
    data(json!({ "name": call.name, "destroyed_versions": done }))
}

/// `DELETE /v1/MOUNT/keys/NAME?force=true`: destroys every version and frees the name.
pub(super) async fn delete_key(
    State(state): State<AppState>,
    call: KeyCall,
    Params(q): Params<ForceQuery>,
) -> ApiResult {
    destroy(&state, &call, &[], q.force).await
}

/// `POST /v1/MOUNT/destroy/NAME` with `{"versions": [..], "force": true}`: destroys
/// those versions (as KV v2's destroy does, but only with force).
pub(super) async fn destroy_versions(
    State(state): State<AppState>,
    call: KeyCall,
    Body(req): Body<DestroyRequest>,
) -> ApiResult {
    if req.versions.is_empty() {
        return Err(ApiError::bad_request("versions: name at least one version to destroy"));
    }
    destroy(&state, &call, &req.versions, req.force).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmip::enums::State as KeyState;

    #[test]
    fn errors_map_to_the_statuses_vault_clients_expect() {
        let status = |e: TdeError| ApiError::from(e).status;
        assert_eq!(status(TdeError::NoKey("1".into())), StatusCode::NOT_FOUND);
        assert_eq!(
            status(TdeError::Destroyed { name: "1".into(), version: 1 }),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(TdeError::Unusable {
                name: "1".into(),
                version: 2,
                source: Box::new(OpError::WrongState {
                    op: "Encrypt",
                    state: KeyState::DEACTIVATED
                }),
            }),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(TdeError::NeedsForce { name: "1".into(), version: 1, last_read: String::new() }),
            StatusCode::CONFLICT
        );
    }
}
