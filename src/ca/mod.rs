//! The internal certificate authority: a root (self-signed, `DATA/ca.crt`) and issuing
//! intermediates, P-256 or P-384 keys (`[ca] key_type`) generated in and never leaving
//! the HSM. The newest
//! intermediate issues the service's own TLS certificate, KMIP client certificates and
//! the certificates of the API, ACME and KMIP Certify; rotation adds a new one while the
//! older ones keep answering for what they issued. Certificates and CRLs are built with
//! rcgen over the HSM signer.

mod constraints;
mod crl;
mod hierarchy;
pub(crate) mod ocsp;

pub(crate) use constraints::{parse_range, NameConstraints};
pub(crate) use hierarchy::{revoke_intermediate, rotate, rotate_root, sync_issuers, Ca};

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::hsm::{Curve, Hsm, HsmError, HsmKey, HsmSigner, SigningKeyType};

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
    #[error("name constraints: {0}")]
    NameConstraints(String),
    #[error("CA issuer {0}: {1}")]
    BadIssuer(String, &'static str),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("CA task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One CA certificate and its HSM-held signer: a root, or an issuing intermediate.
pub(crate) struct Authority {
    /// `root` (DATA/ca.crt), or the id of a newer root or an intermediate (also in its HSM
    /// key label).
    id: String,
    /// The id of the authority that signed it; a root's own.
    parent: String,
    signer: HsmSigner,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    not_after: OffsetDateTime,
    /// Parts of the certificate that OCSP and ARI compare requests with, read once.
    subject_der: Vec<u8>,
    public_key_bits: Vec<u8>,
    key_id: Option<Vec<u8>>,
    /// The certificate's own name constraints, which everything it issues must meet.
    constraints: Option<NameConstraints>,
    /// `[ca] url`: where relying parties fetch CRLs, CA certificates and OCSP answers.
    base_url: Option<Arc<str>>,
}

/// id-kp-documentSigning (RFC 9336).
const DOCUMENT_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 36];

/// The root's id, as certificates and CRL routes name it.
pub(crate) const ROOT_ID: &str = "root";
/// id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1).
const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ce-freshestCRL (RFC 5280 §4.2.1.15): where the delta CRLs are.
const FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];
/// id-ad-ocsp and id-ad-caIssuers (1.3.6.1.5.5.7.48.1 and .2), OID contents.
const AIA_OCSP: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
const AIA_CA_ISSUERS: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

/// An issued certificate and the authority that signed it.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
    /// The issuer's id (`root` or an intermediate's).
    pub(crate) issuer: String,
    /// When it expires: as asked, or the issuer's own expiry if that is sooner.
    pub(crate) not_after: OffsetDateTime,
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
    /// Name the issuer's CRL and the OCSP responder (when `[ca] url` is set).
    pub(crate) revocation_pointers: bool,
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

/// Whether `code` is an RFC 5280 §5.3.1 reason a certificate can be revoked for: not 7
/// (unused) and not removeFromCRL (8), which only delta CRLs use.
pub(crate) fn revocation_reason_allowed(code: i64) -> bool {
    matches!(code, 0..=6 | 9 | 10)
}

/// The public key of a PKCS#10 request (DER) exactly as the request carries it, with its
/// kind: rcgen rebuilds a request's key from its signature's algorithm, which may name
/// another curve than the key's own (a P-384 key in a request signed with SHA-256).
/// The request's signature is checked by whoever parsed it with rcgen.
pub(crate) fn csr_key(
    csr_der: &[u8],
) -> Result<(crate::der::KeyKind, rcgen::SubjectPublicKeyInfo), &'static str> {
    let spki = csr_spki(csr_der)?;
    let kind = crate::der::key_kind(&spki).map_err(|_| "the CSR's public key is not supported")?;
    let key = rcgen::SubjectPublicKeyInfo::from_der(&spki)
        .map_err(|_| "the CSR's public key is not supported")?;
    Ok((kind, key))
}

/// A PKCS#10 request's SubjectPublicKeyInfo (DER) as the request carries it.
pub(crate) fn csr_spki(csr_der: &[u8]) -> Result<Vec<u8>, &'static str> {
    use x509_parser::prelude::FromDer;
    let (_, request) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
            .map_err(|_| "the CSR does not parse")?;
    Ok(request.certification_request_info.subject_pki.raw.to_vec())
}

/// Finds or makes the HSM key of the listeners' certificates. Made at start-up under the
/// bootstrap lock, so that replicas started together make one.
pub(crate) fn ensure_tls_key(hsm: &Hsm) -> Result<HsmKey, CaError> {
    Ok(hsm.with_session(|s| {
        hsm.ensure_signing_key(s, TLS_KEY_LABEL, SigningKeyType::Ec(Curve::P256))
    })?)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_owned(), source }
}

/// Parameters shared by the root and intermediates.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Strongroom");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.serial_number = Some(serial());
    params
}

/// Runs `f`, work of at most a few hundred microseconds around a signature by `signer`
/// (checking a request, building and signing a certificate or an OCSP answer): on this
/// thread when the signature is quick ([`HsmSigner::signs_quickly`]), where handing the
/// work to the blocking pool and back (two thread wake-ups) costs about as much as the
/// work; else on the blocking pool.
pub(crate) async fn run_signing<T: Send + 'static>(
    signer: Arc<Authority>,
    f: impl FnOnce(&Authority) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if signer.signer.signs_quickly() {
        return Ok(f(&signer));
    }
    tokio::task::spawn_blocking(move || f(&signer)).await
}

impl Authority {
    fn new(
        id: &str,
        parent: &str,
        signer: HsmSigner,
        cert_der: CertificateDer<'static>,
        cert_pem: String,
        base_url: Option<Arc<str>>,
    ) -> Option<Authority> {
        use x509_parser::extensions::ParsedExtension;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der).ok()?;
        let subject_der = parsed.tbs_certificate.subject.as_raw().to_vec();
        let public_key_bits = parsed.public_key().subject_public_key.data.to_vec();
        let key_id = parsed.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });
        let not_after = parsed.validity().not_after.to_datetime();
        let constraints = NameConstraints::of_certificate(&parsed);
        Some(Authority {
            id: id.to_owned(),
            parent: parent.to_owned(),
            signer,
            cert_der,
            cert_pem,
            not_after,
            subject_der,
            public_key_bits,
            key_id,
            constraints,
            base_url,
        })
    }

    /// Adds where to check what this authority issued, when `[ca] url` is set: its CRL
    /// (CRL Distribution Points), its delta CRL (Freshest CRL) and its certificate
    /// (Authority Information Access caIssuers), and with `ocsp` the responder (RFC 5280
    /// §4.2.1.13, §4.2.1.15, §4.2.2.1).
    fn add_pointers(&self, params: &mut CertificateParams, ocsp: bool) {
        let Some(base) = &self.base_url else { return };
        let issuer = format!("{base}/v1/pki/issuer/{}", self.id);
        params.crl_distribution_points =
            vec![rcgen::CrlDistributionPoint { uris: vec![format!("{issuer}/crl")] }];
        let access = |method: &[u8], url: &str| {
            crate::der::sequence(&[
                &crate::der::tlv(0x06, method),
                &crate::der::tlv(0x86, url.as_bytes()),
            ])
        };
        let mut descriptions = vec![access(AIA_CA_ISSUERS, &format!("{issuer}/der"))];
        if ocsp {
            descriptions.insert(0, access(AIA_OCSP, &format!("{base}/ocsp")));
        }
        let parts: Vec<&[u8]> = descriptions.iter().map(Vec::as_slice).collect();
        params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(
            AUTHORITY_INFO_ACCESS,
            crate::der::sequence(&parts),
        ));
        // The CRLDistributionPoints syntax: one point whose fullName is the URI.
        let uri = crate::der::tlv(0x86, format!("{issuer}/crl/delta").as_bytes());
        let point = crate::der::sequence(&[&crate::der::tlv(0xA0, &crate::der::tlv(0xA0, &uri))]);
        params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(
            FRESHEST_CRL,
            crate::der::sequence(&[&point]),
        ));
    }

    /// Whether the certificate `der` names this authority as its issuer and carries a
    /// signature its key verifies.
    fn verifies(&self, der: &[u8]) -> bool {
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(der) else {
            return false;
        };
        parsed.tbs_certificate.issuer.as_raw() == self.subject_der.as_slice()
            && aws_lc_rs::signature::UnparsedPublicKey::new(
                self.signer.key_type().verifier(),
                &self.public_key_bits,
            )
            .verify(parsed.tbs_certificate.as_ref(), &parsed.signature_value.data)
            .is_ok()
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Self-signed: `DATA/ca.crt` or a newer root.
    pub(crate) fn is_root(&self) -> bool {
        self.parent == self.id
    }

    /// The Subject Key Identifier.
    pub(crate) fn key_id(&self) -> Option<&[u8]> {
        self.key_id.as_deref()
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn issuer(&self) -> Result<Issuer<'static, HsmSigner>, CaError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, self.signer.clone())?)
    }

    /// Refuses names outside this authority's own name constraints (relying parties would
    /// reject the certificate).
    pub(crate) fn check_names(
        &self,
        dns: &[String],
        ips: &[std::net::IpAddr],
    ) -> Result<(), CaError> {
        match &self.constraints {
            Some(c) => c.check(dns, ips).map_err(CaError::NameConstraints),
            None => Ok(()),
        }
    }

    fn certified(&self, cert: &rcgen::Certificate, params: &CertificateParams) -> Issued {
        Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: self.id.clone(),
            not_after: params.not_after,
        }
    }

    /// A leaf's parameters, valid for `days` but never past this issuer's own expiry (a
    /// path is valid only while every certificate in it is, RFC 5280 §6.1.3).
    fn leaf_params(&self, common_name: &str, days: i64) -> Result<CertificateParams, CaError> {
        let now = OffsetDateTime::now_utc();
        // Cut to the issuer's expiry, a certificate must still be of some use.
        if self.not_after <= now + Duration::hours(1) {
            return Err(CaError::BadIssuer(
                self.id.clone(),
                "expires within the hour: make a new intermediate (`strongroom admin rotate-ca`, \
                 or POST /v1/pki/intermediate/rotate)",
            ));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Basic Constraints cA FALSE, which also makes rcgen write the Subject Key
        // Identifier (RFC 5280 §4.2.1.2: SHOULD be in end-entity certificates too).
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.not_before = now - Duration::minutes(5);
        params.not_after = (now + Duration::days(days)).min(self.not_after);
        params.serial_number = Some(serial());
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// Issues the TLS server certificate for an HSM-held key (created on first use), with
    /// 127.0.0.1, localhost and `hostnames` as subject alternative names.
    pub(crate) fn issue_server(
        &self,
        hsm: &Hsm,
        hostnames: &[String],
    ) -> Result<(Issued, HsmSigner), CaError> {
        let key = ensure_tls_key(hsm)?;
        let signer = HsmSigner::new(hsm.clone(), key);
        let mut params = self.leaf_params("Strongroom server", 397)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let mut sans = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
        ];
        let (mut dns, mut ips) = (vec!["localhost".to_owned()], vec![[127, 0, 0, 1].into()]);
        for h in hostnames {
            sans.push(match h.parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    ips.push(ip);
                    SanType::IpAddress(ip)
                }
                Err(_) => {
                    dns.push(h.clone());
                    SanType::DnsName(h.as_str().try_into()?)
                }
            });
        }
        self.check_names(&dns, &ips)?;
        params.subject_alt_names = sans;
        let cert = params.signed_by(&signer, &self.issuer()?)?;
        Ok((self.certified(&cert, &params), signer))
    }

    /// Issues a KMIP client certificate for a key generated here; returns the certificate,
    /// its serial (hex) and the private key, PEM encoded.
    pub(crate) fn issue_client(
        &self,
        name: &str,
        days: i64,
    ) -> Result<(Issued, String, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = self.leaf_params(name, days)?;
        let serial = serial_bytes();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.add_pointers(&mut params, true);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((self.certified(&cert, &params), hex::encode(serial), key.serialize_pem()))
    }

    /// Issues a certificate for `key` as `spec` says; returns it and its serial (hex).
    pub(crate) fn issue_leaf(
        &self,
        spec: &LeafSpec,
        key: &impl rcgen::PublicKeyData,
    ) -> Result<(Issued, String), CaError> {
        self.check_names(&spec.dns_names, &spec.ip_addresses)?;
        let mut params = self.leaf_params(&spec.common_name, 1)?;
        let serial = serial_bytes();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_after = spec.not_after.min(self.not_after);
        // Key encipherment is for RSA keys only (RFC 5480 §3, RFC 8410 §5).
        let rsa = matches!(
            crate::der::key_kind(&key.subject_public_key_info()),
            Ok(crate::der::KeyKind::Rsa(_))
        );
        params.key_usages = match rsa {
            true => vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment],
            false => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = [
            (spec.server_auth, ExtendedKeyUsagePurpose::ServerAuth),
            (spec.client_auth, ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .filter_map(|(on, eku)| on.then_some(eku))
        .collect();
        if params.extended_key_usages.is_empty() {
            // Without the extension a certificate is good for any purpose: document
            // signing (RFC 9336) is one no TLS peer accepts.
            params.extended_key_usages =
                vec![ExtendedKeyUsagePurpose::Other(DOCUMENT_SIGNING.to_vec())];
        }
        let mut sans = Vec::new();
        for d in &spec.dns_names {
            sans.push(SanType::DnsName(d.as_str().try_into()?));
        }
        sans.extend(spec.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        for u in &spec.uris {
            sans.push(SanType::URI(u.as_str().try_into()?));
        }
        params.subject_alt_names = sans;
        if spec.revocation_pointers {
            self.add_pointers(&mut params, true);
        }
        let cert = params.signed_by(key, &self.issuer()?)?;
        Ok((self.certified(&cert, &params), hex::encode(serial)))
    }
}
