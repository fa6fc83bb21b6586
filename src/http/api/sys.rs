//! Administration views for `strongroom admin`: the service's status, and listings of
//! managed objects and issued certificates. Read-only; policies grant them like any path
//! (`sys/status`, `sys/keys`, `pki/certs`).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::{data, ApiError, ApiResult, Params};
use crate::app::AppState;

/// `?offset=N&limit=M` on listings (limit 1 to 1000, default 100).
#[derive(Debug, Deserialize)]
pub(super) struct Page {
    #[serde(default)]
    offset: i64,
    limit: Option<i64>,
}

impl Page {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    fn offset(&self) -> i64 {
        self.offset.max(0)
    }
}

/// Version, store, leadership, HSM, the root CA certificate and the default issuer, counts, and the ages of the CRL
/// and the last audit seal.
pub(super) async fn status(State(state): State<AppState>) -> ApiResult {
    let g = state.store.gauges().await?;
    let now = crate::util::now();
    let hsm = match state.hsm.run(|_, _| Ok(())).await {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let (subject, not_after) = match x509_parser::parse_x509_certificate(state.ca.root().cert_der())
    {
        Ok((_, c)) => (c.subject().to_string(), c.validity().not_after.timestamp()),
        Err(e) => return Err(ApiError::internal(&e)),
    };
    let issuer = state.ca.current();
    data(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": if state.store.is_shared() { "postgresql" } else { "sqlite" },
        "leader": state.store.is_leader(),
        "hsm": hsm,
        "ca": {
            "subject": subject,
            "not_after": not_after,
            "default_issuer": issuer.id(),
            "default_issuer_not_after": issuer.not_after().unix_timestamp(),
            "issuers": state.ca.authorities().len(),
        },
        "managed_objects": g.objects,
        "leases_active": g.leases_active,
        "certificates_issued": g.certificates,
        "certificates_revoked": g.revoked,
        "acme_accounts": g.acme_accounts,
        "audit_records": g.audit_head,
        "audit_seal_age": g.last_seal.map(|at| now - at),
        "crl_age": state.creds.crl_age(now),
    }))
}

/// Managed objects, oldest first: id, type, state (KMIP enumeration values), owner,
/// creation time and names.
pub(super) async fn list_keys(State(state): State<AppState>, Params(p): Params<Page>) -> ApiResult {
    let objects = state.store.object_summaries(p.offset(), p.limit()).await?;
    data(json!({ "objects": objects, "offset": p.offset() }))
}

/// One managed object: its lifecycle fields and every attribute (values as text).
pub(super) async fn read_key(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let o = state
        .store
        .object(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("object {id}")))?;
    let attributes: Vec<_> = state
        .store
        .attributes(&id)
        .await?
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "index": a.index,
                "value": crate::store::match_key(&a.name, &a.value),
            })
        })
        .collect();
    data(json!({
        "id": o.id,
        "object_type": o.object_type,
        "state": o.state,
        "owner": o.owner,
        "initial_date": o.initial_date,
        "activation_date": o.activation_date,
        "deactivation_date": o.deactivation_date,
        "destroy_date": o.destroy_date,
        "compromise_date": o.compromise_date,
        "last_change_date": o.last_change_date,
        "archived": o.archived,
        "key_material_stored": o.sealed_material.is_some() || o.public_material.is_some(),
        "attributes": attributes,
    }))
}

/// Issued certificates (API and ACME), newest first.
pub(super) async fn list_certs(
    State(state): State<AppState>,
    Params(p): Params<Page>,
) -> ApiResult {
    let certs: Vec<_> = state
        .store
        .certificate_page(p.offset(), p.limit())
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "serial_number": c.serial,
                "role": c.role,
                "subject": c.subject,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "revocation_time": c.revoked_at,
                "revocation_reason": c.revocation_reason,
            })
        })
        .collect();
    data(json!({ "certificates": certs, "offset": p.offset() }))
}
