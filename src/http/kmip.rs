//! KMIP over HTTPS (KMIP 2.1 §10.3 / KMIP Profiles §5): `POST /kmip` with a TTLV, XML or
//! JSON body, answered in the same encoding. The route requires a client certificate even
//! though the HTTPS listener does not (ACME clients have none).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kmip::ttlv::{binary, json, xml};

use super::Peer;
use crate::app::AppState;
use crate::kmip_server::dispatch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Ttlv,
    Xml,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Option<Encoding> {
        let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "application/octet-stream" => Encoding::Ttlv,
            "text/xml" | "application/xml" => Encoding::Xml,
            "application/json" => Encoding::Json,
            _ => return None,
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Ttlv => "application/octet-stream",
            Encoding::Xml => "text/xml",
            Encoding::Json => "application/json",
        }
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n"))
        .into_response()
}

pub(super) async fn post(
    State(state): State<AppState>,
    axum::Extension(peer): axum::Extension<Peer>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Checked before the body is read: a client without a certificate holds no memory.
    let Some(principal) = peer.0 else {
        return plain(StatusCode::UNAUTHORIZED, "KMIP requires a client certificate");
    };
    let Some(encoding) = Encoding::from_headers(&headers) else {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/octet-stream (TTLV), text/xml or application/json",
        );
    };
    let limits = state.kmip_limits;
    let too_large = || {
        let why = format!("the body is larger than {} bytes", limits.max_bytes);
        plain(StatusCode::PAYLOAD_TOO_LARGE, &why)
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > limits.max_bytes) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, limits.max_bytes).await {
        Ok(body) => body,
        // Without a Content-Length (chunked), the limit shows only while reading.
        Err(_) if declared.is_none() => return too_large(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
    };
    let decoded = match encoding {
        Encoding::Ttlv => binary::decode(&body, &limits).map_err(|e| e.to_string()),
        Encoding::Xml | Encoding::Json => match std::str::from_utf8(&body) {
            Err(_) => Err("the body is not UTF-8".to_owned()),
            Ok(text) if encoding == Encoding::Xml => {
                xml::decode(text, &limits).map_err(|e| e.to_string())
            }
            Ok(text) => json::decode(text, &limits).map_err(|e| e.to_string()),
        },
    };
    let response = match decoded {
        Ok(item) => dispatch::handle_tree(&state, &principal, &item).await,
        // A body that does not decode still gets a KMIP answer, as on the TTLV port.
        Err(why) => dispatch::message_failure(
            kmip::ProtocolVersion::V1_0,
            kmip::enums::ResultReason::INVALID_MESSAGE,
            why,
        ),
    };
    let body = match encoding {
        Encoding::Ttlv => binary::encode(&response),
        Encoding::Xml => xml::encode(&response).into_bytes(),
        Encoding::Json => json::encode(&response).into_bytes(),
    };
    ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}
