//! Database engine routes: `database/config`, `roles`, `creds`, `rotate-root`,
//! `static-roles`, `static-creds`, `rotate-role`.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data, done, keys, ttl, ApiError, ApiResult, Body, Caller, StringList};
use crate::app::AppState;
use crate::creds::database::{ConnectionConfig, Flavor, RoleConfig, StaticRoleConfig};
use crate::creds::password::PasswordPolicy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WriteConnection {
    plugin_name: String,
    connection_url: String,
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    allowed_roles: StringList,
    #[serde(default)]
    root_rotation_statements: StringList,
    #[serde(default, deserialize_with = "super::object")]
    password_policy: Option<PasswordPolicy>,
    #[serde(default)]
    verify_connection: Option<bool>,
}

pub(super) async fn write_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<WriteConnection>,
) -> ApiResult {
    let flavor = Flavor::from_plugin(&req.plugin_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "plugin_name {:?} is not supported (postgresql-database-plugin, mysql-database-plugin)",
            req.plugin_name
        ))
    })?;
    let config = ConnectionConfig {
        plugin_name: req.plugin_name,
        flavor,
        connection_url: req.connection_url,
        username: req.username,
        allowed_roles: req.allowed_roles.comma_separated(),
        root_rotation_statements: req.root_rotation_statements.statements(),
        password_policy: req.password_policy.unwrap_or_default(),
        root_rotated_at: None,
    };
    state
        .creds
        .put_connection(&name, config, req.password, req.verify_connection.unwrap_or(true))
        .await?;
    done()
}

pub(super) async fn read_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    let c = state.creds.connection(&name).await?;
    data(json!({
        "plugin_name": c.plugin_name,
        "connection_details": { "connection_url": c.connection_url, "username": c.username },
        "allowed_roles": c.allowed_roles,
        "root_credentials_rotate_statements": c.root_rotation_statements,
        "password_policy": c.password_policy,
        "root_rotated_at": c.root_rotated_at,
    }))
}

pub(super) async fn delete_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.delete_connection(&name).await?;
    done()
}

pub(super) async fn list_connections(State(state): State<AppState>) -> ApiResult {
    keys(state.creds.connection_names().await?)
}

pub(super) async fn rotate_root(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.rotate_root(&name).await?;
    done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WriteRole {
    db_name: String,
    #[serde(default)]
    creation_statements: StringList,
    #[serde(default)]
    revocation_statements: StringList,
    #[serde(default)]
    renew_statements: StringList,
    #[serde(default)]
    rollback_statements: StringList,
    #[serde(default)]
    default_ttl: Option<Value>,
    #[serde(default)]
    max_ttl: Option<Value>,
    #[serde(default)]
    username_template: Option<String>,
}

pub(super) async fn write_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<WriteRole>,
) -> ApiResult {
    // The connection must exist (it may allow the role later).
    state.creds.connection(&req.db_name).await?;
    let role = RoleConfig {
        db_name: req.db_name,
        creation_statements: req.creation_statements.statements(),
        revocation_statements: req.revocation_statements.statements(),
        renew_statements: req.renew_statements.statements(),
        rollback_statements: req.rollback_statements.statements(),
        default_ttl: ttl(&req.default_ttl)?,
        max_ttl: ttl(&req.max_ttl)?,
        username_template: req.username_template,
    };
    state.creds.put_role(&name, role).await?;
    done()
}

pub(super) async fn read_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    let r = state.creds.role(&name).await?;
    data(json!({
        "db_name": r.db_name,
        "creation_statements": r.creation_statements,
        "revocation_statements": r.revocation_statements,
        "renew_statements": r.renew_statements,
        "rollback_statements": r.rollback_statements,
        "default_ttl": r.default_ttl,
        "max_ttl": r.max_ttl,
        "username_template": r.username_template,
    }))
}

pub(super) async fn delete_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.delete_role(&name).await?;
    done()
}

pub(super) async fn list_roles(State(state): State<AppState>) -> ApiResult {
    keys(state.creds.role_names().await?)
}

/// `GET /v1/database/creds/ROLE`: a new user in the role's database, under a lease.
pub(super) async fn creds(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(role): Path<String>,
) -> ApiResult {
    let issued = state.creds.issue_db_creds(&role, caller.holder(), &caller.display_name).await?;
    Ok(Json(json!({
        "lease_id": issued.lease.id,
        "lease_duration": issued.lease.expires_at - issued.lease.issued_at,
        "renewable": true,
        "data": { "username": issued.username, "password": issued.password },
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WriteStaticRole {
    db_name: String,
    username: String,
    rotation_period: Value,
    #[serde(default)]
    rotation_statements: StringList,
}

pub(super) async fn write_static_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<WriteStaticRole>,
) -> ApiResult {
    let role = StaticRoleConfig {
        db_name: req.db_name,
        username: req.username,
        rotation_period: ttl(&Some(req.rotation_period))?,
        rotation_statements: req.rotation_statements.statements(),
        last_rotated_at: None,
    };
    state.creds.put_static_role(&name, role).await?;
    done()
}

pub(super) async fn read_static_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    let r = state.creds.static_role(&name).await?;
    data(json!({
        "db_name": r.db_name,
        "username": r.username,
        "rotation_period": r.rotation_period,
        "rotation_statements": r.rotation_statements,
        "last_vault_rotation": r.last_rotated_at,
    }))
}

pub(super) async fn delete_static_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.delete_static_role(&name).await?;
    done()
}

pub(super) async fn list_static_roles(State(state): State<AppState>) -> ApiResult {
    keys(state.creds.static_role_names().await?)
}

pub(super) async fn static_creds(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    let c = state.creds.static_creds(&name).await?;
    data(serde_json::to_value(c).unwrap_or_default())
}

pub(super) async fn rotate_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.rotate_static(&name, None).await?;
    done()
}
