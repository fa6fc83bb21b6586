//! tls-alpn-01 validation (RFC 8737): a TLS handshake to the identifier's address on
//! `[acme] tls_alpn01_port`, offering only the `acme-tls/1` protocol and naming the
//! identifier (SNI; the reverse-DNS name for IP addresses, RFC 8738 §6). The server must
//! answer with a certificate for exactly that identifier carrying the critical
//! id-pe-acmeIdentifier extension with SHA-256 of the key authorization. The certificate is
//! self-signed by design, so it is not checked against any root; the handshake signature is.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::{problem, Acme, Identifier};

const ACME_TLS: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier (1.3.6.1.5.5.7.1.31).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Accepts any certificate (the challenge certificate is self-signed) but checks that the
/// server holds its key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_with_key(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_with_key(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl AnyCertificate {
    /// Checks the handshake signature with the certificate's public key. (rustls's own
    /// helpers parse the certificate with webpki, which refuses the critical acmeIdentifier
    /// extension every challenge certificate carries.)
    fn verify_with_key(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| bad())?;
        let key = &parsed.public_key().subject_public_key.data;
        let algorithms = self.0.signature_verification_algorithms.mapping.iter();
        let valid = algorithms
            .filter(|(scheme, _)| *scheme == dss.scheme)
            .flat_map(|(_, algs)| algs.iter())
            .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok());
        if valid {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(bad())
        }
    }
}

/// A TLS 1.2+ client offering `alpn` that accepts any server certificate (checking only
/// the handshake signature with its key).
pub(super) fn client_config(alpn: &[u8]) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The reverse-DNS name of an IP address (RFC 8738 §6).
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut nibbles: Vec<String> = Vec::with_capacity(32);
            for b in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", b & 0x0F));
                nibbles.push(format!("{:x}", b >> 4));
            }
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}

/// Checks the challenge certificate: one SAN, the identifier, and the critical
/// acmeIdentifier extension holding `digest`.
fn check_certificate(der: &[u8], identifier: &Identifier, digest: &[u8]) -> Result<(), String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| "the certificate does not parse")?;
    let mut names = Vec::new();
    let mut acme_value = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == ACME_IDENTIFIER_OID {
            if !ext.critical {
                return Err("the acmeIdentifier extension is not critical".into());
            }
            acme_value = Some(ext.value.to_vec());
        }
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for n in &san.general_names {
                names.push(match n {
                    GeneralName::DNSName(d) => d.to_ascii_lowercase(),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                        16 => {
                            IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string()
                        }
                        _ => String::from("?"),
                    },
                    other => format!("{other:?}"),
                });
            }
        }
    }
    if names != [identifier.value.clone()] {
        return Err(format!("the certificate names {names:?}, not only {}", identifier.value));
    }
    // The extension's value is an OCTET STRING of the 32-byte digest.
    let want = [&[0x04, 0x20][..], digest].concat();
    match acme_value {
        Some(v) if v == want => Ok(()),
        Some(_) => Err("the acmeIdentifier extension holds another key authorization".into()),
        None => Err("the certificate has no acmeIdentifier extension".into()),
    }
}

pub(super) async fn validate(
    acme: &Acme,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Value> {
    let (ips, sni) = match identifier.kind.as_str() {
        "ip" => {
            let ip: IpAddr =
                identifier.value.parse().map_err(|_| problem("malformed", "bad IP address"))?;
            (vec![ip], reverse_name(ip))
        }
        _ => (
            acme.resolver
                .addresses(&identifier.value)
                .await
                .map_err(|e| problem("dns", &e.to_string()))?,
            identifier.value.clone(),
        ),
    };
    let server_name = ServerName::try_from(sni.clone())
        .map_err(|_| problem("malformed", &format!("{sni} is not a server name")))?;
    let config = client_config(ACME_TLS).map_err(|e| problem("serverInternal", &e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let digest = Sha256::digest(key_authorization.as_bytes());
    let (addr, tcp) = super::validate::connect(ips, acme.settings.tls_alpn01_port).await?;
    let attempt = async {
        let tls = connector
            .connect(server_name.clone(), tcp)
            .await
            .map_err(|e| problem("tls", &format!("{addr}: TLS handshake: {e}")))?;
        let (_, conn) = tls.get_ref();
        if conn.alpn_protocol() != Some(ACME_TLS) {
            return Err(problem(
                "tls",
                &format!("{addr}: the server did not select the acme-tls/1 protocol"),
            ));
        }
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| problem("tls", &format!("{addr}: the server sent no certificate")))?;
        check_certificate(cert, identifier, &digest)
            .map_err(|e| problem("unauthorized", &format!("{addr}: {e}")))
    };
    tokio::time::timeout(super::validate::TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(problem("connection", &format!("{addr}: timed out"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge_cert(names: &[&str], digest: &[u8]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn challenge_certificates_are_checked() {
        let id = Identifier { kind: "dns".into(), value: "a.test".into() };
        let digest = [7u8; 32];
        assert!(check_certificate(&challenge_cert(&["a.test"], &digest), &id, &digest).is_ok());
        let other = [8u8; 32];
        assert!(check_certificate(&challenge_cert(&["a.test"], &other), &id, &digest).is_err());
        let two = challenge_cert(&["a.test", "b.test"], &digest);
        assert!(check_certificate(&two, &id, &digest).is_err());
        assert!(check_certificate(&challenge_cert(&["b.test"], &digest), &id, &digest).is_err());
        assert!(check_certificate(b"junk", &id, &digest).is_err());
    }

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(reverse_name("192.0.2.5".parse().unwrap()), "5.2.0.192.in-addr.arpa");
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }
}
