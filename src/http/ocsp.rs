//! The OCSP responder (RFC 6960 Appendix A): `POST /ocsp` with an
//! `application/ocsp-request` body, or `GET /ocsp/BASE64`. No authentication, as relying
//! parties need none; answers are signed in the HSM by the key of the CA certificate that
//! issued the certificates asked about (root or intermediate: each is its own responder).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::app::AppState;
use crate::ca::ocsp::{self, Status};

pub(super) async fn post(State(state): State<AppState>, body: Bytes) -> Response {
    answer(&state, &body).await
}

pub(super) async fn get(State(state): State<AppState>, Path(encoded): Path<String>) -> Response {
    let der = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
    answer(&state, &der).await
}

async fn answer(state: &AppState, der: &[u8]) -> Response {
    let body = match respond(state, der).await {
        Ok(b) => b,
        Err(status) => ocsp::error_response(status),
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/ocsp-response"));
    r
}

/// Answers for the authority (root or intermediate) the first query names; queries naming
/// another issuer, or certificates it did not issue, are unknown (§2.2). When no query
/// names one of this CA's authorities, the answer is the unsigned unauthorized (§2.3).
async fn respond(state: &AppState, der: &[u8]) -> Result<Vec<u8>, u8> {
    let request = ocsp::parse(der).ok_or(ocsp::MALFORMED_REQUEST)?;
    let authorities = state.ca.authorities();
    let responder = request
        .queries
        .iter()
        .find_map(|q| authorities.iter().find(|a| a.issued(q)))
        .ok_or(ocsp::UNAUTHORIZED)?
        .clone();
    let mut statuses = Vec::with_capacity(request.queries.len());
    for q in &request.queries {
        let status = if !responder.issued(q) {
            Status::Unknown
        } else {
            match state.store.certificate(&q.serial).await {
                Ok(Some(c)) if c.issuer == responder.id() => match c.revoked_at {
                    Some(at) => Status::Revoked(at, c.revocation_reason.unwrap_or(0) as u8),
                    None => Status::Good,
                },
                Ok(_) => Status::Unknown,
                Err(e) => {
                    tracing::error!(error = %e, "OCSP: store lookup failed");
                    return Err(ocsp::INTERNAL_ERROR);
                }
            }
        };
        statuses.push(status);
    }
    let now = crate::util::now();
    let signed =
        crate::ca::run_signing(responder, move |r| r.ocsp_response(&request, &statuses, now))
            .await
            .map_err(|_| ocsp::INTERNAL_ERROR)?;
    signed.map_err(|e| {
        tracing::error!(error = %e, "OCSP: signing failed");
        ocsp::INTERNAL_ERROR
    })
}
