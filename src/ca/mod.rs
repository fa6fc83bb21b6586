//! The internal certificate authority: a P-256 key generated in and never leaving the HSM,
//! a self-signed CA certificate written to `DATA/ca.crt`, and certificates it issues for the
//! service's own TLS listeners and for KMIP clients. Certificates are built with rcgen over
//! the HSM signer.

pub(crate) mod ocsp;

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
    /// Parts of the certificate that OCSP and ARI compare requests with, read once.
    subject_der: Vec<u8>,
    public_key_bits: Vec<u8>,
    key_id: Option<Vec<u8>>,
}

/// A certificate chain and a key for it.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
}

fn serial() -> SerialNumber {
    SerialNumber::from_slice(&serial_bytes())
}

fn serial_bytes() -> Vec<u8> {
    let mut b = crate::util::random_bytes(16);
    b[0] &= 0x7F; // positive
    b[0] |= 0x01; // and no leading zero byte, so the hex form is canonical
    b
}

/// What a leaf certificate from the API says, already checked against its role.
pub(crate) struct LeafSpec {
    pub(crate) common_name: String,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ip_addresses: Vec<std::net::IpAddr>,
    pub(crate) uris: Vec<String>,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    pub(crate) not_after: OffsetDateTime,
}

/// A revoked certificate as a CRL lists it.
pub(crate) struct RevokedEntry {
    /// Serial number, big-endian bytes.
    pub(crate) serial: Vec<u8>,
    pub(crate) revoked_at: OffsetDateTime,
    /// RFC 5280 reason code.
    pub(crate) reason: u8,
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
            let ca = Ca::new(signer, der, pem, &path)?;
            if ca.public_key_bits != key.public_point() {
                return Err(CaError::KeyMismatch(path));
            }
            return Ok(ca);
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
        Ca::new(signer, cert.der().clone(), cert_pem, &path)
    }

    fn new(
        signer: EcSigner,
        cert_der: CertificateDer<'static>,
        cert_pem: String,
        path: &Path,
    ) -> Result<Ca, CaError> {
        use x509_parser::extensions::ParsedExtension;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| CaError::KeyMismatch(path.to_owned()))?;
        let subject_der = parsed.tbs_certificate.subject.as_raw().to_vec();
        let public_key_bits = parsed.public_key().subject_public_key.data.to_vec();
        let key_id = parsed.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
        Ok(Ca { signer, cert_der, cert_pem, subject_der, public_key_bits, key_id })
    }

    /// The CA's Subject Key Identifier, which its certificates' Authority Key Identifier
    /// names (ACME renewal information uses it).
    pub(crate) fn key_id(&self) -> Option<&[u8]> {
        self.key_id.as_deref()
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

    /// Issues a certificate for `key` as `spec` says; returns it and its serial (hex).
    pub(crate) fn issue_leaf(
        &self,
        spec: &LeafSpec,
        key: &impl rcgen::PublicKeyData,
    ) -> Result<(Issued, String), CaError> {
        let mut params = Self::leaf_params(&spec.common_name, 1);
        let serial = serial_bytes();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_after = spec.not_after;
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = [
            (spec.server_auth, ExtendedKeyUsagePurpose::ServerAuth),
            (spec.client_auth, ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .filter_map(|(on, eku)| on.then_some(eku))
        .collect();
        let mut sans = Vec::new();
        for d in &spec.dns_names {
            sans.push(SanType::DnsName(d.as_str().try_into()?));
        }
        sans.extend(spec.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        for u in &spec.uris {
            sans.push(SanType::URI(u.as_str().try_into()?));
        }
        params.subject_alt_names = sans;
        let cert = params.signed_by(key, &self.issuer()?)?;
        Ok((Issued { cert_pem: cert.pem(), cert_der: cert.der().clone() }, hex::encode(serial)))
    }

    /// A CRL listing `revoked`, signed in the HSM, valid for `valid_for`; DER and PEM.
    pub(crate) fn crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        valid_for: Duration,
    ) -> Result<(Vec<u8>, String), CaError> {
        let now = OffsetDateTime::now_utc();
        let reason = |code: u8| {
            use rcgen::RevocationReason as R;
            Some(match code {
                1 => R::KeyCompromise,
                2 => R::CaCompromise,
                3 => R::AffiliationChanged,
                4 => R::Superseded,
                5 => R::CessationOfOperation,
                6 => R::CertificateHold,
                9 => R::PrivilegeWithdrawn,
                _ => return None,
            })
        };
        let params = rcgen::CertificateRevocationListParams {
            this_update: now,
            next_update: now + valid_for,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.revoked_at,
                    reason_code: reason(r.reason),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?)?;
        Ok((crl.der().to_vec(), crl.pem()?))
    }
}
