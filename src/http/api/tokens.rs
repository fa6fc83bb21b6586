//! Token and policy routes: `auth/token/*` and `sys/policies/acl/*`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data, done, keys, ttl, ApiError, ApiResult, Body, Caller, Params, StringList};
use crate::app::AppState;
use crate::authz::{DEFAULT_POLICY, ROOT_POLICY};
use crate::policy::Policy;

/// Default and longest lifetime of a token created through the API (seconds).
const DEFAULT_TOKEN_TTL: i64 = 24 * 3600;
const MAX_TOKEN_TTL: i64 = 366 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// An array, or one comma-separated string (as Vault takes it).
    #[serde(default)]
    policies: Option<StringList>,
    #[serde(default)]
    ttl: Option<Value>,
    #[serde(default)]
    display_name: Option<String>,
    /// Accepted for Vault clients; tokens here are never renewable.
    #[serde(default)]
    renewable: Option<bool>,
}

/// Most policies one token holds.
const MAX_POLICIES: usize = 64;

/// `POST /v1/auth/token/create`: a child token with at most the caller's policies.
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateToken>,
) -> ApiResult {
    let _ = req.renewable;
    let mut policies = match req.policies {
        None | Some(StringList::None) => caller.policies.clone(),
        Some(list) => list.comma_separated(),
    };
    // Each is loaded at every request the token makes.
    let mut seen = std::collections::HashSet::new();
    policies.retain(|p| seen.insert(p.clone()));
    if policies.len() > MAX_POLICIES {
        return Err(ApiError::bad_request(format!("a token has at most {MAX_POLICIES} policies")));
    }
    if !caller.is_root() {
        if let Some(p) =
            policies.iter().find(|p| *p != DEFAULT_POLICY && !caller.policies.contains(p))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("cannot create a token with policy {p:?}, which the caller does not have"),
            ));
        }
    }
    let ttl = match ttl(&req.ttl)? {
        0 => DEFAULT_TOKEN_TTL,
        t if (1..=MAX_TOKEN_TTL).contains(&t) => t,
        _ => return Err(ApiError::bad_request("ttl must be between 1s and 366 days")),
    };
    // A child never outlives its parent.
    let ttl = match caller.token_expires_at {
        Some(e) => ttl.min(e - crate::util::now()).max(1),
        None => ttl,
    };
    let display = req.display_name.unwrap_or_else(|| "token".to_owned());
    if display.len() > 128 {
        return Err(ApiError::bad_request("display_name is longer than 128 characters"));
    }
    let (token, row) =
        crate::authz::mint_token(&state.store, &display, &policies, Some(ttl), &caller.identity)
            .await?;
    Ok(Json(json!({
        "auth": {
            "client_token": token,
            "accessor": row.accessor,
            "policies": policies,
            "token_policies": policies,
            "lease_duration": ttl,
            "renewable": false,
        }
    }))
    .into_response())
}

/// `GET /v1/auth/token/lookup-self`.
pub(super) async fn lookup_self(Extension(caller): Extension<Caller>) -> ApiResult {
    let now = crate::util::now();
    data(json!({
        "accessor": caller.accessor,
        "display_name": caller.display_name,
        "policies": caller.policies,
        "identity": caller.identity,
        "creation_time": caller.token_created_at,
        "expire_time": caller.token_expires_at,
        "ttl": caller.token_expires_at.map_or(0, |e| (e - now).max(0)),
    }))
}

/// `POST /v1/auth/token/revoke-self`.
pub(super) async fn revoke_self(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    let Some(accessor) = caller.accessor else {
        return Err(ApiError::bad_request("the request did not use a token"));
    };
    revoke_token(&state, &accessor).await?;
    done()
}

/// Revokes a token, the tokens it created (theirs too), and the leases issued to any of
/// them, as Vault does; false when it was not live. A lease whose engine cannot remove the
/// credential yet stays due, and the reaper retries it.
async fn revoke_token(state: &AppState, accessor: &str) -> Result<bool, ApiError> {
    let revoked = state.store.revoke_token_tree(accessor, crate::util::now()).await?;
    // Each token's leases in turn; one token's failure does not keep the others'.
    for accessor in &revoked {
        match state.creds.revoke_issued_to(&format!("token:{accessor}")).await {
            Ok((_, failed)) => {
                for (lease, e) in failed {
                    tracing::warn!(%lease, error = %e, "a revoked token's lease is not revoked yet; retrying");
                }
            }
            Err(e) => {
                tracing::error!(%accessor, error = %e, "a revoked token's leases were not revoked; they expire on their own");
            }
        }
    }
    Ok(!revoked.is_empty())
}

#[derive(Deserialize)]
pub(super) struct Accessor {
    accessor: String,
}

/// `POST /v1/auth/token/revoke-accessor`.
pub(super) async fn revoke_accessor(
    State(state): State<AppState>,
    Body(req): Body<Accessor>,
) -> ApiResult {
    if !revoke_token(&state, &req.accessor).await? {
        return Err(ApiError::not_found(format_args!(
            "live token with accessor {:?}",
            req.accessor
        )));
    }
    done()
}

pub(super) async fn list_policies(State(state): State<AppState>) -> ApiResult {
    let mut names = vec![DEFAULT_POLICY.to_owned(), ROOT_POLICY.to_owned()];
    names.extend(state.store.policy_names().await?);
    keys(names)
}

pub(super) async fn read_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    let body = match name.as_str() {
        DEFAULT_POLICY => crate::policy::DEFAULT_POLICY.to_owned(),
        ROOT_POLICY => "path \"*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }".to_owned(),
        _ => state.store.policy(&name).await?.ok_or_else(|| ApiError::not_found(format_args!("policy {name:?}")))?,
    };
    data(json!({ "name": name, "policy": body }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WritePolicy {
    policy: String,
}

pub(super) async fn write_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<WritePolicy>,
) -> ApiResult {
    if name == ROOT_POLICY || name == DEFAULT_POLICY {
        return Err(ApiError::bad_request(format!(
            "policy {name:?} is built in and cannot be changed"
        )));
    }
    crate::creds::check_name("policy name", &name)?;
    Policy::parse(&req.policy).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.store.put_policy(&name, &req.policy, crate::util::now()).await?;
    done()
}

pub(super) async fn delete_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    crate::creds::check_name("policy name", &name)?;
    if name == ROOT_POLICY || name == DEFAULT_POLICY {
        return Err(ApiError::bad_request(format!(
            "policy {name:?} is built in and cannot be deleted"
        )));
    }
    state.store.delete_policy(&name).await?;
    done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    #[serde(default)]
    after: i64,
    principal: Option<String>,
    outcome: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/sys/audit?after=SEQ&principal=P&outcome=denied&limit=N`: audit records, oldest
/// first; page on with `after` set to the last `seq`.
pub(super) async fn audit(
    State(state): State<AppState>,
    Params(q): Params<AuditQuery>,
) -> ApiResult {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .audit_events(q.after, q.principal.as_deref(), q.outcome.as_deref(), limit)
        .await?;
    data(json!({ "events": rows }))
}
