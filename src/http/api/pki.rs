//! PKI engine routes: `pki/roles`, `issue`, `sign`, `revoke`, `cert`, and the public
//! `ca/pem`, `crl` and `crl/pem`.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{data, done, keys, ApiError, ApiResult, Body, Caller};
use crate::app::AppState;
use crate::creds::pki::{CertRequest, IssuedCert, PkiRole};

pub(super) async fn write_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(role): Body<PkiRole>,
) -> ApiResult {
    state.creds.put_pki_role(&name, role).await?;
    done()
}

pub(super) async fn read_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    data(serde_json::to_value(state.creds.pki_role(&name).await?).unwrap_or_default())
}

pub(super) async fn delete_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult {
    state.creds.delete_pki_role(&name).await?;
    done()
}

pub(super) async fn list_roles(State(state): State<AppState>) -> ApiResult {
    keys(state.creds.pki_role_names().await?)
}

fn issued(c: IssuedCert) -> ApiResult {
    let mut d = json!({
        "certificate": c.certificate,
        "issuing_ca": c.issuing_ca,
        "ca_chain": [c.issuing_ca],
        "serial_number": c.serial_number,
        "expiration": c.expiration,
    });
    if let Some(k) = c.private_key {
        d["private_key"] = json!(k);
        d["private_key_type"] = json!("ec");
    }
    Ok(Json(json!({
        "lease_id": c.lease.id,
        "lease_duration": c.lease.expires_at - c.lease.issued_at,
        "renewable": false,
        "data": d,
    }))
    .into_response())
}

/// `POST /v1/pki/issue/ROLE`: a new key pair and its certificate.
pub(super) async fn issue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(role): Path<String>,
    Body(req): Body<CertRequest>,
) -> ApiResult {
    if req.csr.is_some() {
        return Err(ApiError::bad_request(
            "issue generates the key; send a CSR to /v1/pki/sign/ROLE",
        ));
    }
    issued(state.creds.issue_certificate(&role, req, &caller.identity).await?)
}

/// `POST /v1/pki/sign/ROLE`: a certificate for the key of a CSR.
pub(super) async fn sign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(role): Path<String>,
    Body(req): Body<CertRequest>,
) -> ApiResult {
    if req.csr.is_none() {
        return Err(ApiError::bad_request("csr is required"));
    }
    issued(state.creds.issue_certificate(&role, req, &caller.identity).await?)
}

#[derive(Deserialize)]
pub(super) struct Revoke {
    serial_number: String,
}

/// `POST /v1/pki/revoke`.
pub(super) async fn revoke(State(state): State<AppState>, Body(req): Body<Revoke>) -> ApiResult {
    let at = state.creds.revoke_certificate(&req.serial_number).await?;
    data(json!({ "revocation_time": at }))
}

pub(super) async fn read_cert(
    State(state): State<AppState>,
    Path(serial): Path<String>,
) -> ApiResult {
    let c = state.creds.certificate(&serial).await?;
    data(json!({
        "certificate": c.pem,
        "serial_number": c.serial,
        "revocation_time": c.revoked_at.unwrap_or(0),
        "expiration": c.not_after,
    }))
}

pub(super) async fn ca_pem(State(state): State<AppState>) -> ApiResult {
    Ok(([(CONTENT_TYPE, "application/pem-certificate-chain")], state.ca.cert_pem().to_owned())
        .into_response())
}

pub(super) async fn crl_der(State(state): State<AppState>) -> ApiResult {
    let (der, _) = state.creds.crl().await?;
    Ok(([(CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

pub(super) async fn crl_pem(State(state): State<AppState>) -> ApiResult {
    let (_, pem) = state.creds.crl().await?;
    Ok(([(CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}
