//! The internal certificate authority: a P-256 key generated in and never leaving the HSM,
//! a self-signed CA certificate written to `DATA/ca.crt`, and certificates it issues for the
//! service's own TLS listeners and for KMIP clients. Certificates are built with rcgen over
//! the HSM signer.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::hsm::{EcSigner, Hsm, HsmError};

/// HSM label of the CA key.
const CA_KEY_LABEL: &str = "strongroom-ca";
/// HSM label of the TLS server key.
const TLS_KEY_LABEL: &str = "strongroom-tls";

#[derive(Debug, thiserror::Error)]
pub(crate) enum CaError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("building a certificate failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds a certificate for a different key than the HSM's CA key")]
    KeyMismatch(std::path::PathBuf),
}

/// The CA: its certificate and its HSM-held signer.
pub(crate) struct Ca {
    signer: EcSigner,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

/// A certificate chain and a key for it.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
}

fn serial() -> SerialNumber {
    let mut b = crate::util::random_bytes(16);
    b[0] &= 0x7F; // positive
    SerialNumber::from_slice(&b)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_owned(), source }
}

impl Ca {
    /// Loads `DATA/ca.crt` and the HSM's CA key, creating both on first start.
    pub(crate) fn load_or_create(hsm: &Hsm, data_dir: &Path) -> Result<Ca, CaError> {
        let key = hsm.with_session(|s| hsm.ensure_ec_key(s, CA_KEY_LABEL))?;
        let signer = EcSigner::new(hsm.clone(), key.clone());
        let path = data_dir.join("ca.crt");
        if let Ok(pem) = std::fs::read_to_string(&path) {
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
                .map_err(|_| CaError::KeyMismatch(path.clone()))?;
            let cert_der: CertificateDer<'static> = der;
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
                .map_err(|_| CaError::KeyMismatch(path.clone()))?;
            if parsed.public_key().subject_public_key.data.as_ref() != key.public_point() {
                return Err(CaError::KeyMismatch(path));
            }
            return Ok(Ca { signer, cert_der, cert_pem: pem });
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Strongroom");
        dn.push(DnType::CommonName, "Strongroom internal CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(serial());
        let cert = params.self_signed(&signer)?;
        let cert_pem = cert.pem();
        crate::hsm::softhsm::write_private(&path, &cert_pem)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io(&path))?;
        Ok(Ca { signer, cert_der: cert.der().clone(), cert_pem })
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    fn issuer(&self) -> Result<Issuer<'static, EcSigner>, CaError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, self.signer.clone())?)
    }

    fn leaf_params(common_name: &str, days: i64) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(days);
        params.serial_number = Some(serial());
        params.use_authority_key_identifier_extension = true;
        params
    }

    /// Issues the TLS server certificate for an HSM-held key (created on first use), with
    /// 127.0.0.1, localhost and `hostnames` as subject alternative names.
    pub(crate) fn issue_server(
        &self,
        hsm: &Hsm,
        hostnames: &[String],
    ) -> Result<(Issued, EcSigner), CaError> {
        let key = hsm.with_session(|s| hsm.ensure_ec_key(s, TLS_KEY_LABEL))?;
        let signer = EcSigner::new(hsm.clone(), key);
        let mut params = Self::leaf_params("Strongroom server", 397);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let mut sans = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
        ];
        for h in hostnames {
            sans.push(match h.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(h.as_str().try_into()?),
            });
        }
        params.subject_alt_names = sans;
        let cert = params.signed_by(&signer, &self.issuer()?)?;
        Ok((Issued { cert_pem: cert.pem(), cert_der: cert.der().clone() }, signer))
    }

    /// Issues a KMIP client certificate for a key generated here; returns the certificate
    /// and the private key, PEM encoded.
    pub(crate) fn issue_client(&self, name: &str, days: i64) -> Result<(Issued, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = Self::leaf_params(name, days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((Issued { cert_pem: cert.pem(), cert_der: cert.der().clone() }, key.serialize_pem()))
    }
}
