//! Lease routes: `sys/leases/{renew,revoke,revoke-prefix,lookup}`.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data, done, keys, ttl, ApiError, ApiResult, Body};
use crate::app::AppState;
use crate::store::{lease_state, LeaseRow};

#[derive(Deserialize)]
pub(super) struct LeaseRequest {
    lease_id: String,
    #[serde(default)]
    increment: Option<Value>,
}

fn lease_json(l: &LeaseRow) -> Value {
    let now = crate::util::now();
    json!({
        "id": l.id,
        "issue_time": l.issued_at,
        "expire_time": l.expires_at,
        "max_expire_time": l.max_expires_at,
        "ttl": if l.state == lease_state::ACTIVE { (l.expires_at - now).max(0) } else { 0 },
        "renewable": l.renewable && l.state == lease_state::ACTIVE,
        "state": l.state,
        "revoke_attempts": l.attempts,
        "last_error": l.last_error,
        "revoke_time": l.revoked_at,
    })
}

/// `POST /v1/sys/leases/renew`.
pub(super) async fn renew(
    State(state): State<AppState>,
    Body(req): Body<LeaseRequest>,
) -> ApiResult {
    let increment = match ttl(&req.increment)? {
        0 => None,
        i => Some(i),
    };
    let lease = state.creds.renew(&req.lease_id, increment).await?;
    let now = crate::util::now();
    Ok(axum::Json(json!({
        "lease_id": lease.id,
        "renewable": lease.expires_at < lease.max_expires_at,
        "lease_duration": (lease.expires_at - now).max(0),
    }))
    .into_response())
}

/// `POST /v1/sys/leases/revoke`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Body(req): Body<LeaseRequest>,
) -> ApiResult {
    state.creds.revoke(&req.lease_id).await?;
    done()
}

/// `POST /v1/sys/leases/revoke-prefix/PREFIX`.
pub(super) async fn revoke_prefix(
    State(state): State<AppState>,
    Path(prefix): Path<String>,
) -> ApiResult {
    if prefix.is_empty() {
        return Err(ApiError::bad_request("a prefix is required"));
    }
    // A path prefix, as in Vault: `database/creds/app` is not also `database/creds/app-2`.
    // One lease's own id revokes that lease.
    let prefix = match prefix.ends_with('/') || state.creds.lease(&prefix).await.is_ok() {
        true => prefix,
        false => format!("{prefix}/"),
    };
    let (_, failed) = state.creds.revoke_prefix(&prefix).await?;
    if let Some((id, e)) = failed.first() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            format!(
                "{} lease(s) could not be revoked yet and will be retried; first: {id}: {e}",
                failed.len()
            ),
        ));
    }
    done()
}

/// `POST /v1/sys/leases/lookup`.
pub(super) async fn lookup(
    State(state): State<AppState>,
    Body(req): Body<LeaseRequest>,
) -> ApiResult {
    data(lease_json(&state.creds.lease(&req.lease_id).await?))
}

/// `GET /v1/sys/leases/lookup/PREFIX`: the next path segments (or lease suffixes) under it.
pub(super) async fn list(State(state): State<AppState>, Path(prefix): Path<String>) -> ApiResult {
    let prefix = if prefix.ends_with('/') { prefix } else { format!("{prefix}/") };
    let mut names: Vec<String> = Vec::new();
    for lease in state.creds.leases(&prefix).await? {
        let rest = &lease.id[prefix.len()..];
        let key = match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_owned(),
        };
        if names.last() != Some(&key) {
            names.push(key);
        }
    }
    names.dedup();
    keys(names)
}
