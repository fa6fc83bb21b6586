//! `strongroom admin`: administration over a running server's REST API (any replica, from
//! any host): status, listings of keys, certificates and leases, revocation. It speaks
//! HTTPS with a token like any API client, so every call is authorised by policy and
//! audited by the server; it needs no HSM or database access of its own.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

/// Largest answer read (a page of 1000 listings is far smaller).
const MAX_ANSWER: usize = 16 << 20;

/// What to do.
pub(crate) enum Action {
    Status,
    Keys { offset: i64, limit: i64 },
    Key { id: String },
    Certs { offset: i64, limit: i64 },
    Leases { prefix: String },
    RevokeCert { serial: String },
    RevokeLease { id: String },
    Issuers,
    RotateCa,
    RotateRoot,
    RevokeIssuer { id: String, reason: Option<i64> },
}

/// Where the server is and how to reach it.
pub(crate) struct Target {
    /// `host:port` of the HTTPS listener.
    pub(crate) addr: String,
    pub(crate) token: String,
    /// The CA certificate that the listener's certificate chains to.
    pub(crate) ca: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no usable CA certificate")]
    BadCa(PathBuf),
    #[error("{0} is not HOST:PORT")]
    BadAddr(String),
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {addr} failed: {message}")]
    Http { addr: String, message: String },
    #[error("the server answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
}

impl Target {
    /// One request; the answer's JSON (`null` for 204).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let (host, _) =
            self.addr.rsplit_once(':').ok_or_else(|| AdminError::BadAddr(self.addr.clone()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| AdminError::BadAddr(self.addr.clone()))?;
        let http = |e: &dyn std::fmt::Display| AdminError::Http {
            addr: self.addr.clone(),
            message: e.to_string(),
        };
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|source| AdminError::Connect { addr: self.addr.clone(), source })?;
        let tls = tokio_rustls::TlsConnector::from(self.tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|source| AdminError::Connect { addr: self.addr.clone(), source })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| http(&e))?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header("x-vault-token", &self.token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .map_err(|e| http(&e))?;
        let response = sender.send_request(request).await.map_err(|e| http(&e))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER)
            .await
            .map_err(|e| http(&e))?;
        let answer: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| http(&e))?
        };
        if !status.is_success() {
            let message = match answer["errors"].as_array() {
                Some(errors) => {
                    errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
                }
                None => String::from_utf8_lossy(&bytes).into_owned(),
            };
            return Err(AdminError::Refused { status, message });
        }
        Ok(answer)
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, AdminError> {
        let pem = std::fs::read(&self.ca)
            .map_err(|source| AdminError::Read { path: self.ca.clone(), source })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| AdminError::BadCa(self.ca.clone()))?;
            roots.add(cert).map_err(|_| AdminError::BadCa(self.ca.clone()))?;
        }
        if roots.is_empty() {
            return Err(AdminError::BadCa(self.ca.clone()));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AdminError::Http { addr: self.addr.clone(), message: e.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// Runs `action` against `target`; prints the answer's data as JSON.
pub(crate) async fn run(target: &Target, action: Action) -> Result<(), AdminError> {
    let page =
        |what: &str, offset: i64, limit: i64| format!("/v1/{what}?offset={offset}&limit={limit}");
    let answer = match action {
        Action::Status => target.call(Method::GET, "/v1/sys/status", None).await?,
        Action::Keys { offset, limit } => {
            target.call(Method::GET, &page("sys/keys", offset, limit), None).await?
        }
        Action::Key { id } => {
            target.call(Method::GET, &format!("/v1/sys/keys/{}", escape(&id)), None).await?
        }
        Action::Certs { offset, limit } => {
            target.call(Method::GET, &page("pki/certs", offset, limit), None).await?
        }
        Action::Leases { prefix } => {
            target
                .call(Method::GET, &format!("/v1/sys/leases/lookup/{}", escape_path(&prefix)), None)
                .await?
        }
        Action::Issuers => target.call(Method::GET, "/v1/pki/issuers", None).await?,
        Action::RotateCa => target.call(Method::POST, "/v1/pki/intermediate/rotate", None).await?,
        Action::RotateRoot => target.call(Method::POST, "/v1/pki/root/rotate", None).await?,
        Action::RevokeIssuer { id, reason } => {
            let path = format!("/v1/pki/issuer/{}/revoke", escape(&id));
            target.call(Method::POST, &path, Some(json!({ "reason": reason }))).await?
        }
        Action::RevokeCert { serial } => {
            target
                .call(Method::POST, "/v1/pki/revoke", Some(json!({ "serial_number": serial })))
                .await?
        }
        Action::RevokeLease { id } => {
            target
                .call(Method::POST, "/v1/sys/leases/revoke", Some(json!({ "lease_id": id })))
                .await?
        }
    };
    let shown = match answer.get("data") {
        Some(data) => data.clone(),
        None if answer.is_null() => json!({ "done": true }),
        None => answer,
    };
    println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    Ok(())
}

/// Percent-encodes one path segment.
fn escape(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes each segment of a path, keeping its slashes.
fn escape_path(path: &str) -> String {
    path.split('/').map(escape).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_escaped() {
        assert_eq!(super::escape("a b/c"), "a%20b%2Fc");
        assert_eq!(super::escape_path("database/creds/r 1/"), "database/creds/r%201/");
    }
}
