//! The CA hierarchy: the root in `DATA/ca.crt` (the trust anchor relying parties were
//! given), newer roots made by root rotation (each cross-signed by the root before it, so
//! chains still reach `DATA/ca.crt`), and the intermediates that issue. Everything but the
//! first root lives in the store (`ca_issuers`), so replicas share it; keys stay in the HSM.

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use rcgen::{BasicConstraints, IsCa};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::{ca_params, io, Authority, CaError, CA_KEY_LABEL, ROOT_ID};
use crate::hsm::{Hsm, HsmSigner, SigningKeyType};
use crate::store::{IssuerRow, Store};

/// HSM labels of CA keys made after the first root start with this, then the id.
const KEY_PREFIX: &str = "strongroom-ca-";
/// How long a root is valid.
const ROOT_DAYS: i64 = 10 * 365;
/// How long an intermediate is valid (bounded by its root's validity).
const INTERMEDIATE_DAYS: i64 = 5 * 365;
/// Kinds of `ca_issuers` rows.
const KIND_ROOT: &str = "root";
const KIND_CROSS: &str = "cross";
const KIND_INTERMEDIATE: &str = "intermediate";
/// Longest chain followed (roots cross-signed by roots cross-signed by ...).
const MAX_DEPTH: usize = 8;

/// See the module docs.
pub(crate) struct Ca {
    hsm: Hsm,
    base_url: Option<Arc<str>>,
    /// The type of new CA keys (`[ca] key_type`); existing keys keep theirs.
    key_type: SigningKeyType,
    /// Name constraints for intermediates made from now on (`[ca] permitted_dns_domains`...).
    name_constraints: super::NameConstraints,
    /// `DATA/ca.crt`.
    root: Arc<Authority>,
    loaded: RwLock<Loaded>,
}

/// What the store holds, loaded.
#[derive(Clone, Default)]
struct Loaded {
    /// Roots made by rotation, oldest first.
    roots: Vec<Arc<Authority>>,
    /// Intermediates, oldest first; the last one not revoked issues.
    intermediates: Vec<Arc<Authority>>,
    cross: Vec<Cross>,
    /// Ids of revoked intermediates.
    revoked: std::collections::HashSet<String>,
}

/// A cross-certificate: a newer root's name and key, certified by an older root.
#[derive(Clone)]
struct Cross {
    /// The root it certifies.
    certifies: String,
    /// The root that signed it.
    parent: String,
    der: CertificateDer<'static>,
    pem: String,
}

impl Ca {
    /// Loads `DATA/ca.crt` and the HSM's root key, creating both on first start. The rest
    /// of the hierarchy comes from the store ([`sync_issuers`]).
    pub(crate) fn load_or_create(
        hsm: &Hsm,
        data_dir: &Path,
        settings: &crate::config::CaSettings,
    ) -> Result<Ca, CaError> {
        let base_url: Option<Arc<str>> = settings.url.as_deref().map(Arc::from);
        let key_type = settings.key_type;
        let key = hsm.with_session(|s| hsm.ensure_signing_key(s, CA_KEY_LABEL, key_type))?;
        let signer = HsmSigner::new(hsm.clone(), key.clone());
        let path = data_dir.join("ca.crt");
        let new = |der, pem| {
            Authority::new(ROOT_ID, ROOT_ID, signer.clone(), der, pem, base_url.clone())
                .ok_or_else(|| CaError::KeyMismatch(path.clone()))
        };
        let root = if let Ok(pem) = std::fs::read_to_string(&path) {
            let der = CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|_| CaError::KeyMismatch(path.clone()))?;
            let root = new(der, pem)?;
            if root.public_key_bits != key.public_key_bits() {
                return Err(CaError::KeyMismatch(path));
            }
            root
        } else {
            let cert = root_params("Strongroom root CA").self_signed(&signer)?;
            let cert_pem = cert.pem();
            crate::hsm::softhsm::write_private(&path, &cert_pem)?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .map_err(io(&path))?;
            new(cert.der().clone(), cert_pem)?
        };
        Ok(Ca {
            hsm: hsm.clone(),
            base_url,
            key_type,
            name_constraints: settings.name_constraints.clone(),
            root: Arc::new(root),
            loaded: RwLock::default(),
        })
    }

    /// The root in `DATA/ca.crt`, the trust anchor every chain reaches.
    pub(crate) fn root(&self) -> &Arc<Authority> {
        &self.root
    }

    /// The newest root: it signs new intermediates.
    fn newest_root(&self) -> Arc<Authority> {
        self.read().roots.last().cloned().unwrap_or_else(|| self.root.clone())
    }

    /// The default issuer: the newest intermediate not revoked (the root only before there
    /// is one).
    pub(crate) fn current(&self) -> Arc<Authority> {
        let l = self.read();
        let live = l.intermediates.iter().rev().find(|a| !l.revoked.contains(&a.id));
        live.cloned().unwrap_or_else(|| self.root.clone())
    }

    /// Whether the authority whose Subject Key Identifier is `key_id` was revoked.
    pub(crate) fn revoked_key_id(&self, key_id: &[u8]) -> bool {
        let l = self.read();
        l.intermediates
            .iter()
            .any(|a| a.key_id.as_deref() == Some(key_id) && l.revoked.contains(&a.id))
    }

    pub(crate) fn is_revoked(&self, id: &str) -> bool {
        self.read().revoked.contains(id)
    }

    /// Every root's certificate: trust anchors for client certificates.
    pub(crate) fn root_certs(&self) -> Vec<CertificateDer<'static>> {
        let l = self.read();
        std::iter::once(&self.root).chain(&l.roots).map(|a| a.cert_der.clone()).collect()
    }

    /// The intermediates not revoked and the cross-certificates, which a client
    /// certificate's chain may need to reach a root.
    pub(crate) fn chain_certs(&self) -> Vec<CertificateDer<'static>> {
        let l = self.read();
        let live = l.intermediates.iter().filter(|a| !l.revoked.contains(&a.id));
        let intermediates = live.map(|a| a.cert_der.clone());
        intermediates.chain(l.cross.iter().map(|c| c.der.clone())).collect()
    }

    /// The roots, then the intermediates, oldest first.
    pub(crate) fn authorities(&self) -> Vec<Arc<Authority>> {
        let l = self.read();
        std::iter::once(self.root.clone())
            .chain(l.roots.iter().cloned())
            .chain(l.intermediates.iter().cloned())
            .collect()
    }

    /// The authority with this id (`root`, a newer root's or an intermediate's).
    pub(crate) fn authority(&self, id: &str) -> Option<Arc<Authority>> {
        self.authorities().into_iter().find(|a| a.id == id)
    }

    /// The authority whose Subject Key Identifier is `key_id` (what its certificates'
    /// Authority Key Identifier names; ACME renewal information uses it).
    pub(crate) fn by_key_id(&self, key_id: &[u8]) -> Option<Arc<Authority>> {
        self.authorities().into_iter().find(|a| a.key_id.as_deref() == Some(key_id))
    }

    /// `a`'s certificate and those above it up to `DATA/ca.crt`'s root (included), newer
    /// roots replaced by their cross-certificates: the `ca_chain` of API answers.
    pub(crate) fn chain(&self, a: &Authority) -> Vec<String> {
        let l = self.read();
        let mut chain = vec![a.cert_pem.clone()];
        if !a.is_root() {
            chain.extend(self.above(&l, &a.parent, true, 0));
        }
        chain
    }

    /// What to send with a certificate `issuer` signed: `issuer`'s chain without its
    /// root, which relying parties hold. With cross-signed roots there are two: through
    /// the cross-certificates to `DATA/ca.crt` (the default), and ending at the issuer's
    /// own newer root (an alternate chain, for relying parties that trust it).
    pub(crate) fn chains_for(&self, issuer: &Authority) -> Vec<Vec<String>> {
        let l = self.read();
        let mut chains = Vec::new();
        for through_cross in [true, false] {
            let mut chain = vec![issuer.cert_pem.clone()];
            if issuer.is_root() {
                chain.clear();
            } else {
                chain.extend(self.above(&l, &issuer.parent, through_cross, 0));
                chain.pop(); // the root
            }
            if !chains.contains(&chain) {
                chains.push(chain);
            }
        }
        chains
    }

    /// The certificates from the authority `id` up to a root (included), `id`'s first.
    /// With `through_cross`, a newer root is replaced by its cross-certificate and the climb
    /// goes on to the root that signed it.
    fn above(&self, l: &Loaded, id: &str, through_cross: bool, depth: usize) -> Vec<String> {
        if depth > MAX_DEPTH {
            return Vec::new();
        }
        if id == ROOT_ID {
            return vec![self.root.cert_pem.clone()];
        }
        let find = |id: &str| l.roots.iter().chain(&l.intermediates).find(|a| a.id == id);
        let Some(a) = find(id) else { return Vec::new() };
        if !a.is_root() {
            let mut out = vec![a.cert_pem.clone()];
            out.extend(self.above(l, &a.parent, through_cross, depth + 1));
            return out;
        }
        match l.cross.iter().rev().find(|c| c.certifies == a.id).filter(|_| through_cross) {
            Some(c) => {
                let mut out = vec![c.pem.clone()];
                out.extend(self.above(l, &c.parent, through_cross, depth + 1));
                out
            }
            None => vec![a.cert_pem.clone()],
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Loaded> {
        // Writers swap in a whole new value, so a poisoned lock still holds a consistent one.
        self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new CA key pair in the HSM, labelled for `id`.
    fn new_key(&self, id: &str) -> Result<(String, HsmSigner), CaError> {
        let key_label = format!("{KEY_PREFIX}{id}");
        let key =
            self.hsm.with_session(|s| self.hsm.ensure_signing_key(s, &key_label, self.key_type))?;
        Ok((key_label, HsmSigner::new(self.hsm.clone(), key)))
    }

    /// Generates a new intermediate key in the HSM and its certificate, signed by the newest
    /// root (or `parent`). The caller records it in the store, then [`Ca::adopt`]s it.
    /// Blocking.
    fn new_intermediate(&self, parent: Option<&Authority>) -> Result<IssuerRow, CaError> {
        let newest;
        let parent = match parent {
            Some(p) => p,
            None => {
                newest = self.newest_root();
                &newest
            }
        };
        let id = new_id();
        let (key_label, signer) = self.new_key(&id)?;
        let now = OffsetDateTime::now_utc();
        let mut params = ca_params(&format!("Strongroom issuing CA {} {id}", date(now)));
        // It signs end-entity certificates only, and only for the configured names.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.name_constraints = self.name_constraints.to_rcgen();
        params.not_after = (now + Duration::days(INTERMEDIATE_DAYS)).min(parent.not_after);
        params.use_authority_key_identifier_extension = true;
        // Relying parties check an intermediate on its root's CRL; OCSP answers only for
        // end-entity certificates.
        parent.add_pointers(&mut params, false);
        let cert = params.signed_by(&signer, &parent.issuer()?)?;
        Ok(row(id, KIND_INTERMEDIATE, &parent.id, key_label, cert.pem(), now))
    }

    /// A new root (self-signed, key in the HSM), its cross-certificate signed by the newest
    /// root, and an intermediate under it. Blocking.
    fn new_root(&self) -> Result<Vec<IssuerRow>, CaError> {
        let id = new_id();
        let (key_label, signer) = self.new_key(&id)?;
        let now = OffsetDateTime::now_utc();
        let name = format!("Strongroom root CA {} {id}", date(now));
        let cert = root_params(&name).self_signed(&signer)?;
        let root = Authority::new(
            &id,
            &id,
            signer.clone(),
            cert.der().clone(),
            cert.pem(),
            self.base_url.clone(),
        )
        .ok_or(CaError::BadIssuer(id.clone(), "its certificate does not parse"))?;
        // The cross-certificate: the same name and key, vouched for by the older root, so
        // chains through it reach DATA/ca.crt. No path length limit, as on the root itself:
        // after a second rotation a chain runs through two cross-certificates.
        let older = self.newest_root();
        let mut cross = root_params(&name);
        cross.not_after = cross.not_after.min(older.not_after);
        cross.use_authority_key_identifier_extension = true;
        older.add_pointers(&mut cross, false);
        let cross = cross.signed_by(&signer, &older.issuer()?)?;
        let mut rows = vec![
            row(id.clone(), KIND_ROOT, &id, key_label.clone(), cert.pem(), now),
            IssuerRow {
                certifies: Some(id.clone()),
                ..row(
                    format!("{id}-by-{}", older.id),
                    KIND_CROSS,
                    &older.id,
                    key_label,
                    cross.pem(),
                    now,
                )
            },
        ];
        rows.push(self.new_intermediate(Some(&root))?);
        Ok(rows)
    }

    /// Loads the rows not loaded yet, in the store's order (parents come first): their keys
    /// from the HSM, each certificate checked against its key and its issuer's signature.
    /// Blocking.
    fn adopt(&self, rows: &[IssuerRow]) -> Result<(), CaError> {
        let mut l = self.read().clone();
        let revoked: std::collections::HashSet<String> =
            rows.iter().filter(|r| r.revoked_at.is_some()).map(|r| r.id.clone()).collect();
        let mut added = revoked != l.revoked;
        l.revoked = revoked;
        for row in rows {
            let known = l.roots.iter().chain(&l.intermediates).any(|a| a.id == row.id)
                || l.cross.iter().any(|c| {
                    row.certifies.as_deref() == Some(c.certifies.as_str()) && c.parent == row.parent
                });
            if known {
                continue;
            }
            let bad = |why| CaError::BadIssuer(row.id.clone(), why);
            let der = CertificateDer::from_pem_slice(row.cert_pem.as_bytes())
                .map_err(|_| bad("its certificate is not PEM"))?;
            let find = |l: &Loaded, id: &str| -> Option<Arc<Authority>> {
                std::iter::once(&self.root)
                    .chain(&l.roots)
                    .chain(&l.intermediates)
                    .find(|a| a.id == id)
                    .cloned()
            };
            let parent = find(&l, &row.parent);
            if row.kind == KIND_CROSS {
                let certifies = row.certifies.as_deref().unwrap_or_default();
                let (Some(parent), Some(subject)) = (parent, find(&l, certifies)) else {
                    return Err(bad("it names a root that is not loaded"));
                };
                let key_matches = x509_parser::parse_x509_certificate(&der).is_ok_and(|(_, c)| {
                    c.public_key().subject_public_key.data == subject.public_key_bits.as_slice()
                });
                if !key_matches || !parent.verifies(&der) {
                    return Err(bad("its cross-certificate does not match its roots"));
                }
                let (certifies, parent) = (certifies.to_owned(), row.parent.clone());
                l.cross.push(Cross { certifies, parent, der, pem: row.cert_pem.clone() });
                added = true;
                continue;
            }
            if !row.key_label.starts_with(KEY_PREFIX) {
                return Err(bad("its key label is not a CA key's"));
            }
            let key = self.hsm.with_session(|s| self.hsm.find_signing_key(s, &row.key_label))?;
            let key = key.ok_or_else(|| bad("its key is not in the HSM token"))?;
            let signer = HsmSigner::new(self.hsm.clone(), key.clone());
            let authority = Authority::new(
                &row.id,
                &row.parent,
                signer,
                der,
                row.cert_pem.clone(),
                self.base_url.clone(),
            )
            .ok_or_else(|| bad("its certificate does not parse"))?;
            if authority.public_key_bits != key.public_key_bits() {
                return Err(bad("its certificate is for another key than the HSM's"));
            }
            let signed = match row.kind.as_str() {
                KIND_ROOT => authority.verifies(&authority.cert_der),
                _ => parent.is_some_and(|p| p.verifies(&authority.cert_der)),
            };
            if !signed {
                return Err(bad("its certificate was not signed by its issuer"));
            }
            match row.kind.as_str() {
                KIND_ROOT => l.roots.push(Arc::new(authority)),
                _ => l.intermediates.push(Arc::new(authority)),
            }
            added = true;
        }
        if added {
            *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = l;
        }
        Ok(())
    }
}

fn new_id() -> String {
    hex::encode(crate::util::random_bytes(6))
}

fn date(t: OffsetDateTime) -> String {
    format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn row(
    id: String,
    kind: &str,
    parent: &str,
    key_label: String,
    cert_pem: String,
    now: OffsetDateTime,
) -> IssuerRow {
    IssuerRow {
        id,
        kind: kind.to_owned(),
        parent: parent.to_owned(),
        certifies: None,
        key_label,
        cert_pem,
        created_at: now.unix_timestamp(),
        revoked_at: None,
    }
}

/// A self-signed root's parameters.
fn root_params(common_name: &str) -> rcgen::CertificateParams {
    let mut params = ca_params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_after = params.not_before + Duration::days(ROOT_DAYS);
    params
}

/// Loads what the store lists (other replicas may have added some). With `bootstrap`,
/// creates the first intermediate when there is none (first start, or a data directory
/// from before the hierarchy, whose root issued directly).
pub(crate) async fn sync_issuers(
    ca: &Arc<Ca>,
    store: &Store,
    bootstrap: bool,
) -> Result<(), CaError> {
    let rows = store.ca_issuers().await?;
    if rows.iter().all(|r| r.kind != KIND_INTERMEDIATE) && bootstrap {
        create(ca, store, |ca| Ok(vec![ca.new_intermediate(None)?])).await?;
        return Ok(());
    }
    let ca = ca.clone();
    blocking(move || ca.adopt(&rows)).await
}

/// Rotation: a new intermediate under the newest root becomes the default issuer; the
/// older ones keep serving their CRLs and OCSP answers.
pub(crate) async fn rotate(ca: &Arc<Ca>, store: &Store) -> Result<Arc<Authority>, CaError> {
    let rows = create(ca, store, |ca| Ok(vec![ca.new_intermediate(None)?])).await?;
    let id = &rows[0].id;
    ca.authority(id).ok_or_else(|| CaError::BadIssuer(id.clone(), "not loaded after rotation"))
}

/// Root rotation: a new root, cross-signed by the newest one, and an intermediate under it
/// that becomes the default issuer. Returns the new root and the intermediate.
pub(crate) async fn rotate_root(
    ca: &Arc<Ca>,
    store: &Store,
) -> Result<(Arc<Authority>, Arc<Authority>), CaError> {
    let rows = create(ca, store, Ca::new_root).await?;
    let load = |id: &String| {
        ca.authority(id).ok_or_else(|| CaError::BadIssuer(id.clone(), "not loaded after rotation"))
    };
    Ok((load(&rows[0].id)?, load(&rows[2].id)?))
}

/// Revokes the intermediate `id` (RFC 5280 reason `reason`): it issues no more, its root's
/// CRL and OCSP answers list it, and client certificates under it are refused. The default
/// issuer cannot be revoked before a rotation replaces it.
pub(crate) async fn revoke_intermediate(
    ca: &Arc<Ca>,
    store: &Store,
    id: &str,
    reason: i64,
) -> Result<bool, CaError> {
    let bad = |why| CaError::BadIssuer(id.to_owned(), why);
    let a = ca.authority(id).ok_or_else(|| bad("no such CA certificate"))?;
    if a.is_root() {
        return Err(bad("roots are retired by root rotation, not revoked"));
    }
    if ca.current().id == a.id {
        return Err(bad("it is the default issuer: rotate first"));
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(&a.cert_der)
        .map_err(|_| bad("its certificate does not parse"))?;
    let cert = crate::store::CertificateRow {
        serial: hex::encode(parsed.raw_serial()),
        role: "ca-intermediate".to_owned(),
        subject: parsed.subject().to_string(),
        not_before: parsed.validity().not_before.timestamp(),
        not_after: parsed.validity().not_after.timestamp(),
        lease_id: None,
        revoked_at: None,
        revocation_reason: None,
        pem: a.cert_pem.clone(),
        issuer: a.parent.clone(),
        kmip_object: None,
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let done = store.revoke_ca_issuer(id, &cert, reason, now).await?;
    sync_issuers(ca, store, false).await?;
    tracing::warn!(issuer = %id, reason, "CA intermediate revoked");
    Ok(done)
}

/// Makes rows with `make` (in the HSM), records them in one transaction and loads what
/// the store then holds.
async fn create(
    ca: &Arc<Ca>,
    store: &Store,
    make: impl FnOnce(&Ca) -> Result<Vec<IssuerRow>, CaError> + Send + 'static,
) -> Result<Vec<IssuerRow>, CaError> {
    let c = ca.clone();
    let rows = blocking(move || make(&c)).await?;
    store.insert_ca_issuers(&rows).await?;
    for r in &rows {
        tracing::info!(issuer = %r.id, kind = %r.kind, parent = %r.parent, "CA certificate created");
    }
    let all = store.ca_issuers().await?;
    let c = ca.clone();
    blocking(move || c.adopt(&all)).await?;
    Ok(rows)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CaError> + Send + 'static,
) -> Result<T, CaError> {
    tokio::task::spawn_blocking(f).await?
}

impl Ca {
    /// `issued` followed by its default chain (see [`Ca::chains_for`]), PEM.
    pub(crate) fn chain_pem(&self, issued: &super::Issued) -> String {
        let chain = match self.authority(&issued.issuer) {
            Some(a) => self.chains_for(&a).swap_remove(0),
            None => Vec::new(),
        };
        std::iter::once(issued.cert_pem.as_str()).chain(chain.iter().map(String::as_str)).collect()
    }
}
