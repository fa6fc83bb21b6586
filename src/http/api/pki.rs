//! PKI engine routes: `pki/roles`, `issue`, `sign`, `revoke`, `cert`, the CA hierarchy
//! (`issuers`, `issuer/ID`, `intermediate/rotate`), and the public `ca/pem` (the root),
//! `ca_chain`, `crl`, `crl/pem` (the default issuer's) and each issuer's `pem` and CRLs.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{data, done, keys, ApiError, ApiResult, Body, Caller};
use std::sync::Arc;

use crate::app::AppState;
use crate::ca::Authority;
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
    crate::creds::check_name("role name", &name)?;
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
        "ca_chain": c.ca_chain,
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
    not_an_admin(&state, &caller, &req)?;
    issued(state.creds.issue_certificate(&role, req, caller.holder()).await?)
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
    not_an_admin(&state, &caller, &req)?;
    issued(state.creds.issue_certificate(&role, req, caller.holder()).await?)
}

/// A certificate's subject is its holder's identity on the KMIP and API listeners: only
/// a root token may have one issued in an administrator's name.
fn not_an_admin(state: &AppState, caller: &Caller, req: &CertRequest) -> Result<(), ApiError> {
    let subject = format!("CN={}", req.common_name.trim());
    if state.admins.contains(&subject) && !caller.is_root() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!("{subject} is an administrator's identity; only a root token may issue it"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub(super) struct Revoke {
    serial_number: String,
    /// RFC 5280 reason code (default 5, cessationOfOperation).
    #[serde(default)]
    reason: Option<i64>,
}

/// `POST /v1/pki/revoke`.
pub(super) async fn revoke(State(state): State<AppState>, Body(req): Body<Revoke>) -> ApiResult {
    let at = state.creds.revoke_certificate(&req.serial_number, req.reason).await?;
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
        "issuer_id": c.issuer,
    }))
}

const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// `GET /v1/pki/ca/pem`: the root certificate, the trust anchor (also `DATA/ca.crt`).
pub(super) async fn ca_pem(State(state): State<AppState>) -> ApiResult {
    Ok(([(CONTENT_TYPE, PEM_CHAIN)], state.ca.root().cert_pem().to_owned()).into_response())
}

/// `GET /v1/pki/ca_chain`: the default issuer's certificate, then the root's.
pub(super) async fn ca_chain(State(state): State<AppState>) -> ApiResult {
    let chain = state.ca.chain(&state.ca.current()).concat();
    Ok(([(CONTENT_TYPE, PEM_CHAIN)], chain).into_response())
}

/// `GET /v1/pki/crl`: the default issuer's CRL, DER.
pub(super) async fn crl_der(State(state): State<AppState>) -> ApiResult {
    issuer_crl_der(State(state), Path("default".to_owned())).await
}

/// `GET /v1/pki/crl/pem`: the default issuer's CRL, PEM.
pub(super) async fn crl_pem(State(state): State<AppState>) -> ApiResult {
    issuer_crl_pem(State(state), Path("default".to_owned())).await
}

/// The authority a route names: `default`, `root` or an intermediate's id.
fn authority(state: &AppState, id: &str) -> Result<Arc<Authority>, ApiError> {
    match id {
        "default" => Ok(state.ca.current()),
        _ => state.ca.authority(id).ok_or_else(|| ApiError::not_found(format!("issuer {id}"))),
    }
}

fn issuer_json(state: &AppState, a: &Authority) -> serde_json::Value {
    json!({
        "issuer_id": a.id(),
        "kind": if a.is_root() { "root" } else { "intermediate" },
        "certificate": a.cert_pem(),
        "ca_chain": state.ca.chain(a),
        "key_id": a.key_id().map(hex::encode),
        "not_after": a.not_after().unix_timestamp(),
        "default": state.ca.current().id() == a.id(),
        "revoked": state.ca.is_revoked(a.id()),
    })
}

/// `GET /v1/pki/issuers`: the root and the intermediates, oldest first (the last issues).
pub(super) async fn list_issuers(State(state): State<AppState>) -> ApiResult {
    let all = state.ca.authorities();
    let info: serde_json::Map<String, serde_json::Value> =
        all.iter().map(|a| (a.id().to_owned(), issuer_json(&state, a))).collect();
    let ids: Vec<&str> = all.iter().map(|a| a.id()).collect();
    data(json!({ "keys": ids, "key_info": info }))
}

/// `GET /v1/pki/issuer/ID`.
pub(super) async fn read_issuer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    let a = authority(&state, &id)?;
    data(issuer_json(&state, &a))
}

/// `GET /v1/pki/issuer/ID/pem`.
pub(super) async fn issuer_pem(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let a = authority(&state, &id)?;
    Ok(([(CONTENT_TYPE, PEM_CHAIN)], a.cert_pem().to_owned()).into_response())
}

/// `GET /v1/pki/issuer/ID/der`: the certificate, DER (what Authority Information Access
/// caIssuers names).
pub(super) async fn issuer_der(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let a = authority(&state, &id)?;
    Ok(([(CONTENT_TYPE, "application/pkix-cert")], a.cert_der().to_vec()).into_response())
}

/// `GET /v1/pki/issuer/ID/crl`: what that authority issued and revoked, DER.
pub(super) async fn issuer_crl_der(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    crl_response(&state, &id, false, false).await
}

/// `GET /v1/pki/issuer/ID/crl/pem`.
pub(super) async fn issuer_crl_pem(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    crl_response(&state, &id, false, true).await
}

/// `GET /v1/pki/issuer/ID/crl/delta`: the delta CRL (RFC 5280 §5.2.4), DER: what the
/// authority revoked since the start of the UTC day, its base CRL number.
pub(super) async fn issuer_delta_crl_der(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    crl_response(&state, &id, true, false).await
}

/// `GET /v1/pki/issuer/ID/crl/delta/pem`.
pub(super) async fn issuer_delta_crl_pem(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    crl_response(&state, &id, true, true).await
}

/// `GET /v1/pki/crl/delta`: the default issuer's delta CRL, DER.
pub(super) async fn delta_crl_der(State(state): State<AppState>) -> ApiResult {
    crl_response(&state, "default", true, false).await
}

/// `GET /v1/pki/crl/delta/pem`: the default issuer's delta CRL, PEM.
pub(super) async fn delta_crl_pem(State(state): State<AppState>) -> ApiResult {
    crl_response(&state, "default", true, true).await
}

async fn crl_response(state: &AppState, id: &str, delta: bool, pem: bool) -> ApiResult {
    let a = authority(state, id)?;
    let (der, text) = match delta {
        true => state.creds.delta_crl(a.id()).await?,
        false => state.creds.crl(a.id()).await?,
    };
    Ok(match pem {
        true => ([(CONTENT_TYPE, "application/x-pem-file")], text).into_response(),
        false => ([(CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeIssuer {
    /// RFC 5280 reason code (default 0, unspecified; 1 keyCompromise, 2 cACompromise).
    #[serde(default)]
    reason: Option<i64>,
}

/// `POST /v1/pki/issuer/ID/revoke` (body optional: `{"reason": CODE}`): revokes an
/// intermediate that is not the default issuer: it issues no more, its root's CRL and OCSP
/// list it, and client certificates under it are refused.
pub(super) async fn revoke_issuer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(req): Body<RevokeIssuer>,
) -> ApiResult {
    let reason = req.reason.unwrap_or(0);
    if !crate::ca::revocation_reason_allowed(reason) {
        return Err(ApiError::bad_request("reason is an RFC 5280 code: 0-6, 9 or 10"));
    }
    // An unknown issuer is a 404, as on every other issuer route.
    authority(&state, &id)?;
    state.creds.revoke_issuer(&id, reason).await?;
    let a = authority(&state, &id)?;
    let mut r = data(issuer_json(&state, &a))?;
    r.extensions_mut().insert(super::AuditObject {
        object_id: id.clone(),
        detail: format!("revoked CA intermediate {id}, reason {reason}"),
    });
    Ok(r)
}

/// `POST /v1/pki/root/rotate`: a new root (key in the HSM), cross-signed by the newest
/// root so chains still reach `DATA/ca.crt`, and a new intermediate under it that becomes
/// the default issuer.
pub(super) async fn rotate_root(State(state): State<AppState>) -> ApiResult {
    let (root, intermediate) = state.creds.rotate_ca_root().await?;
    let mut r = data(json!({
        "root": issuer_json(&state, &root),
        "intermediate": issuer_json(&state, &intermediate),
    }))?;
    r.extensions_mut().insert(super::AuditObject {
        object_id: root.id().to_owned(),
        detail: format!(
            "rotated the CA root: root {} (cross-signed), intermediate {} is the default issuer",
            root.id(),
            intermediate.id()
        ),
    });
    Ok(r)
}

/// `POST /v1/pki/intermediate/rotate`: a new intermediate, signed by the root in the HSM,
/// becomes the default issuer; the older ones keep answering for what they issued.
pub(super) async fn rotate(State(state): State<AppState>) -> ApiResult {
    let a = state.creds.rotate_ca().await?;
    let mut r = data(issuer_json(&state, &a))?;
    r.extensions_mut().insert(super::AuditObject {
        object_id: a.id().to_owned(),
        detail: format!("rotated the CA: intermediate {} is the default issuer", a.id()),
    });
    Ok(r)
}
