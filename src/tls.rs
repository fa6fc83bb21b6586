//! What the KMIP and HTTPS listeners share: TLS configuration (TLS 1.2 and 1.3 only, the
//! server key held in the HSM, client certificates checked against the internal CA) and
//! the accept loop's next-connection step.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::RootCertStore;

use crate::hsm::EcSigner;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier setup failed: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Whether a listener demands client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// KMIP: no certificate, no connection.
    Required,
    /// HTTPS: ACME clients have none; routes that need one check it themselves.
    Optional,
}

pub(crate) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: EcSigner,
    ca: &CertificateDer<'static>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
    let verifier = match auth {
        ClientAuth::Required => verifier.build()?,
        ClientAuth::Optional => verifier.allow_unauthenticated().build()?,
    };
    let certified = CertifiedKey::new(chain, Arc::new(key));
    let config = ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_client_cert_verifier(verifier)
    .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}

/// The next TCP connection, or `None` once `shutdown` turns true. Accept errors (such as
/// running out of file descriptors) are logged and retried after a short pause.
pub(crate) async fn next_connection(
    listener: &tokio::net::TcpListener,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    listener_name: &'static str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, listener = listener_name, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}
