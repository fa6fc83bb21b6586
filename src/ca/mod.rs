//! The internal certificate authority: a root (self-signed, `DATA/ca.crt`) and issuing
//! intermediates, P-256 or P-384 keys (`[ca] key_type`) generated in and never leaving
//! the HSM. The newest
//! intermediate issues the service's own TLS certificate, KMIP client certificates and
//! the certificates of the API, ACME and KMIP Certify; rotation adds a new one while the
//! older ones keep answering for what they issued. Certificates and CRLs are built with
//! rcgen over the HSM signer.

pub(crate) mod ocsp;

use std::path::Path;
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::hsm::{Curve, EcSigner, Hsm, HsmError};
use crate::store::IssuerRow;

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
    #[error("CA issuer {0}: {1}")]
    BadIssuer(String, &'static str),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("CA task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One CA certificate and its HSM-held signer: the root, or an issuing intermediate.
pub(crate) struct Authority {
    /// `root`, or the intermediate's id (also in its HSM key label).
    id: String,
    signer: EcSigner,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    not_after: OffsetDateTime,
    /// Parts of the certificate that OCSP and ARI compare requests with, read once.
    subject_der: Vec<u8>,
    public_key_bits: Vec<u8>,
    key_id: Option<Vec<u8>>,
    /// `[ca] url`: where relying parties fetch CRLs, CA certificates and OCSP answers.
    base_url: Option<Arc<str>>,
}

/// The CA hierarchy: a root (`DATA/ca.crt`, the trust anchor) and the intermediates it
/// signed, which issue. The newest intermediate is the default issuer; older ones keep
/// answering for what they issued (CRLs, OCSP, revocation) until rotation retires them.
pub(crate) struct Ca {
    hsm: Hsm,
    base_url: Option<Arc<str>>,
    /// The curve of new CA keys (`[ca] key_type`); existing keys keep theirs.
    curve: Curve,
    root: Arc<Authority>,
    /// Oldest first; the last one issues.
    intermediates: RwLock<Vec<Arc<Authority>>>,
}

/// The root's id, as certificates and CRL routes name it.
pub(crate) const ROOT_ID: &str = "root";
/// HSM labels of intermediate keys start with this, followed by the intermediate's id.
const INTERMEDIATE_KEY_PREFIX: &str = "strongroom-ca-";
/// id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1).
const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-ocsp and id-ad-caIssuers (1.3.6.1.5.5.7.48.1 and .2), OID contents.
const AIA_OCSP: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
const AIA_CA_ISSUERS: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
/// How long an intermediate is valid (bounded by the root's own validity).
const INTERMEDIATE_DAYS: i64 = 5 * 365;

/// An issued certificate and the authority that signed it.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) cert_der: CertificateDer<'static>,
    /// The issuer's id (`root` or an intermediate's).
    pub(crate) issuer: String,
    /// The certificate followed by its issuer's certificate (the root excluded, as
    /// relying parties hold it): what a TLS peer sends and ACME downloads carry.
    pub(crate) chain_pem: String,
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_owned(), source }
}

impl Ca {
    /// Loads `DATA/ca.crt` and the HSM's root key, creating both on first start. The
    /// intermediates come from the store ([`sync_issuers`]).
    pub(crate) fn load_or_create(
        hsm: &Hsm,
        data_dir: &Path,
        settings: &crate::config::CaSettings,
    ) -> Result<Ca, CaError> {
        let base_url: Option<Arc<str>> = settings.url.as_deref().map(Arc::from);
        let curve = settings.key_type;
        let key = hsm.with_session(|s| hsm.ensure_ec_key(s, CA_KEY_LABEL, curve))?;
        let signer = EcSigner::new(hsm.clone(), key.clone());
        let path = data_dir.join("ca.crt");
        let root = if let Ok(pem) = std::fs::read_to_string(&path) {
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
                .map_err(|_| CaError::KeyMismatch(path.clone()))?;
            let root = Authority::new(ROOT_ID, signer, der, pem, base_url.clone())
                .ok_or_else(|| CaError::KeyMismatch(path.clone()))?;
            if root.public_key_bits != key.public_point() {
                return Err(CaError::KeyMismatch(path));
            }
            root
        } else {
            let mut params = ca_params("Strongroom root CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.not_after = params.not_before + Duration::days(3650);
            let cert = params.self_signed(&signer)?;
            let cert_pem = cert.pem();
            crate::hsm::softhsm::write_private(&path, &cert_pem)?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .map_err(io(&path))?;
            Authority::new(ROOT_ID, signer, cert.der().clone(), cert_pem, base_url.clone())
                .ok_or_else(|| CaError::KeyMismatch(path.clone()))?
        };
        Ok(Ca {
            hsm: hsm.clone(),
            base_url,
            curve,
            root: Arc::new(root),
            intermediates: RwLock::default(),
        })
    }

    /// The root: the trust anchor, in `DATA/ca.crt`.
    pub(crate) fn root(&self) -> &Arc<Authority> {
        &self.root
    }

    /// The default issuer: the newest intermediate (the root only before there is one).
    pub(crate) fn current(&self) -> Arc<Authority> {
        self.read().last().cloned().unwrap_or_else(|| self.root.clone())
    }

    /// The intermediates, oldest first.
    pub(crate) fn intermediates(&self) -> Vec<Arc<Authority>> {
        self.read().clone()
    }

    /// The root and the intermediates.
    pub(crate) fn authorities(&self) -> Vec<Arc<Authority>> {
        std::iter::once(self.root.clone()).chain(self.intermediates()).collect()
    }

    /// The authority with this id (`root` or an intermediate's).
    pub(crate) fn authority(&self, id: &str) -> Option<Arc<Authority>> {
        self.authorities().into_iter().find(|a| a.id == id)
    }

    /// The authority whose Subject Key Identifier is `key_id` (what its certificates'
    /// Authority Key Identifier names; ACME renewal information uses it).
    pub(crate) fn by_key_id(&self, key_id: &[u8]) -> Option<Arc<Authority>> {
        self.authorities().into_iter().find(|a| a.key_id.as_deref() == Some(key_id))
    }

    /// `authority`'s chain up to the root, issuer first: the `ca_chain` of API answers.
    pub(crate) fn chain(&self, authority: &Authority) -> Vec<String> {
        let mut chain = vec![authority.cert_pem.clone()];
        if authority.id != ROOT_ID {
            chain.push(self.root.cert_pem.clone());
        }
        chain
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Authority>>> {
        // A panic while holding the lock cannot leave the list half-changed: writers only
        // push whole entries.
        self.intermediates.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Generates a new intermediate key in the HSM and its certificate, signed by the root.
    /// The caller records it in the store and then [`Ca::adopt`]s it. Blocking.
    fn new_intermediate(&self) -> Result<IssuerRow, CaError> {
        let id = hex::encode(crate::util::random_bytes(6));
        let key_label = format!("{INTERMEDIATE_KEY_PREFIX}{id}");
        let key = self.hsm.with_session(|s| self.hsm.ensure_ec_key(s, &key_label, self.curve))?;
        let signer = EcSigner::new(self.hsm.clone(), key);
        let now = OffsetDateTime::now_utc();
        let mut params = ca_params(&format!(
            "Strongroom issuing CA {}-{:02}-{:02} {id}",
            now.year(),
            u8::from(now.month()),
            now.day()
        ));
        // It signs end-entity certificates only.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.not_after = (now + Duration::days(INTERMEDIATE_DAYS)).min(self.root.not_after);
        params.use_authority_key_identifier_extension = true;
        // Relying parties check an intermediate on the root's CRL; OCSP answers only for
        // end-entity certificates.
        self.root.add_pointers(&mut params, false);
        let cert = params.signed_by(&signer, &self.root.issuer()?)?;
        Ok(IssuerRow { id, key_label, cert_pem: cert.pem(), created_at: now.unix_timestamp() })
    }

    /// Loads the intermediates in `rows` not loaded yet (their keys from the HSM), keeping
    /// the store's order. Rows that do not chain to this root, or whose HSM key is missing or
    /// different, are refused. Blocking.
    fn adopt(&self, rows: &[IssuerRow]) -> Result<(), CaError> {
        let known: Vec<String> = self.read().iter().map(|a| a.id.clone()).collect();
        let mut added = Vec::new();
        for row in rows.iter().filter(|r| !known.contains(&r.id)) {
            let bad = |why| CaError::BadIssuer(row.id.clone(), why);
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(row.cert_pem.as_bytes())
                .map_err(|_| bad("its certificate is not PEM"))?;
            if !row.key_label.starts_with(INTERMEDIATE_KEY_PREFIX) {
                return Err(bad("its key label is not an intermediate's"));
            }
            let key = self.hsm.with_session(|s| self.hsm.find_ec_key(s, &row.key_label))?;
            let key = key.ok_or_else(|| bad("its key is not in the HSM token"))?;
            let authority = Authority::new(
                &row.id,
                EcSigner::new(self.hsm.clone(), key.clone()),
                der,
                row.cert_pem.clone(),
                self.base_url.clone(),
            )
            .ok_or_else(|| bad("its certificate does not parse"))?;
            if authority.public_key_bits != key.public_point() {
                return Err(bad("its certificate is for another key than the HSM's"));
            }
            if !authority.signed_by(&self.root) {
                return Err(bad("its certificate was not signed by this root"));
            }
            added.push((row.id.clone(), Arc::new(authority)));
        }
        if added.is_empty() {
            return Ok(());
        }
        let mut list =
            self.intermediates.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, a) in added {
            if !list.iter().any(|k| k.id == a.id) {
                list.push(a);
            }
        }
        let order: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        list.sort_by_key(|a| order.iter().position(|id| *id == a.id));
        Ok(())
    }
}

/// Loads the intermediates the store lists (other replicas may have added some). With
/// `bootstrap`, creates the first one when there is none (first start, or a data directory
/// from before the hierarchy, whose root issued directly).
pub(crate) async fn sync_issuers(
    ca: &Arc<Ca>,
    store: &crate::store::Store,
    bootstrap: bool,
) -> Result<(), CaError> {
    let mut rows = store.ca_issuers().await?;
    if rows.is_empty() && bootstrap {
        rows.push(create_intermediate(ca, store).await?);
    }
    let ca = ca.clone();
    blocking(move || ca.adopt(&rows)).await
}

/// Rotation: a new intermediate becomes the default issuer; the older ones keep serving
/// their CRLs and OCSP answers.
pub(crate) async fn rotate(
    ca: &Arc<Ca>,
    store: &crate::store::Store,
) -> Result<Arc<Authority>, CaError> {
    let row = create_intermediate(ca, store).await?;
    sync_issuers(ca, store, false).await?;
    ca.authority(&row.id).ok_or(CaError::BadIssuer(row.id, "not loaded after rotation"))
}

async fn create_intermediate(
    ca: &Arc<Ca>,
    store: &crate::store::Store,
) -> Result<IssuerRow, CaError> {
    let c = ca.clone();
    let row = blocking(move || c.new_intermediate()).await?;
    store.insert_ca_issuer(&row).await?;
    tracing::info!(issuer = %row.id, "created a CA intermediate; it is now the default issuer");
    Ok(row)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CaError> + Send + 'static,
) -> Result<T, CaError> {
    tokio::task::spawn_blocking(f).await?
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

impl Authority {
    fn new(
        id: &str,
        signer: EcSigner,
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
        Some(Authority {
            id: id.to_owned(),
            signer,
            cert_der,
            cert_pem,
            not_after,
            subject_der,
            public_key_bits,
            key_id,
            base_url,
        })
    }

    /// Adds where to check what this authority issued, when `[ca] url` is set: its CRL
    /// (CRL Distribution Points) and its certificate (Authority Information Access
    /// caIssuers), and with `ocsp` the responder (RFC 5280 §4.2.1.13, §4.2.2.1).
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
    }

    /// Whether this certificate names `issuer` as its issuer and carries a signature its
    /// key verifies.
    fn signed_by(&self, issuer: &Authority) -> bool {
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        parsed.tbs_certificate.issuer.as_raw() == issuer.subject_der.as_slice()
            && aws_lc_rs::signature::UnparsedPublicKey::new(
                issuer.signer.curve().verifier(),
                &issuer.public_key_bits,
            )
            .verify(parsed.tbs_certificate.as_ref(), &parsed.signature_value.data)
            .is_ok()
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
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

    fn issuer(&self) -> Result<Issuer<'static, EcSigner>, CaError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, self.signer.clone())?)
    }

    fn certified(&self, cert: &rcgen::Certificate) -> Issued {
        let cert_pem = cert.pem();
        let chain_pem = if self.id == ROOT_ID {
            cert_pem.clone()
        } else {
            format!("{cert_pem}{}", self.cert_pem)
        };
        Issued { cert_pem, cert_der: cert.der().clone(), issuer: self.id.clone(), chain_pem }
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
        let key = hsm.with_session(|s| hsm.ensure_ec_key(s, TLS_KEY_LABEL, Curve::P256))?;
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
        Ok((self.certified(&cert), signer))
    }

    /// Issues a KMIP client certificate for a key generated here; returns the certificate
    /// and the private key, PEM encoded.
    pub(crate) fn issue_client(&self, name: &str, days: i64) -> Result<(Issued, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = Self::leaf_params(name, days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.add_pointers(&mut params, true);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok((self.certified(&cert), key.serialize_pem()))
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
        if spec.revocation_pointers {
            self.add_pointers(&mut params, true);
        }
        let cert = params.signed_by(key, &self.issuer()?)?;
        Ok((self.certified(&cert), hex::encode(serial)))
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
