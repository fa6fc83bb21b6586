//! The PKI engine: certificate roles (which names, key types, usages and lifetimes a caller
//! may get), issuance of a key pair and certificate or signing of a CSR, each under a
//! lease whose revocation revokes the certificate, and the CRL of what was revoked.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{check_name, Creds, CredsError};
use crate::ca::{LeafSpec, RevokedEntry};
use crate::store::{CertificateRow, LeaseRow};

pub(super) const KIND_PKI_ROLE: &str = "pki-role";

/// A certificate role (`/v1/pki/roles/NAME`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PkiRole {
    /// DNS names (and their subdomains, with `allow_subdomains`) the role may certify.
    #[serde(default, deserialize_with = "de_list")]
    pub(crate) allowed_domains: Vec<String>,
    #[serde(default)]
    pub(crate) allow_subdomains: bool,
    /// Whether an allowed domain itself may be certified (as in Vault, not unless set:
    /// a role for a domain's services does not certify the domain).
    #[serde(default)]
    pub(crate) allow_bare_domains: bool,
    #[serde(default)]
    pub(crate) allow_localhost: bool,
    #[serde(default)]
    pub(crate) allow_any_name: bool,
    #[serde(default)]
    pub(crate) allow_ip_sans: bool,
    /// URI SANs allowed (SPIFFE IDs); a trailing `*` allows any suffix.
    #[serde(default, deserialize_with = "de_list")]
    pub(crate) allowed_uri_sans: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) server_flag: bool,
    #[serde(default = "yes")]
    pub(crate) client_flag: bool,
    /// `ec` (the only key type issued here for now).
    #[serde(default = "ec")]
    pub(crate) key_type: String,
    /// 256 or 384 for EC keys.
    #[serde(default = "p256")]
    pub(crate) key_bits: u32,
    /// Default certificate lifetime (seconds, or text like `24h`; 24 hours when 0).
    #[serde(default, deserialize_with = "de_ttl")]
    pub(crate) ttl: i64,
    /// Longest certificate lifetime (seconds, or text like `30d`; 30 days when 0).
    #[serde(default, deserialize_with = "de_ttl")]
    pub(crate) max_ttl: i64,
}

/// A list as an array or one comma-separated string, as Vault takes a role's lists.
fn de_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    super::StringList::deserialize(d).map(super::StringList::comma_separated)
}

fn de_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    parse_ttl(&v).map_err(serde::de::Error::custom)
}

fn yes() -> bool {
    true
}
fn ec() -> String {
    "ec".to_owned()
}
fn p256() -> u32 {
    256
}

const DEFAULT_TTL: i64 = 24 * 3600;
const DEFAULT_MAX_TTL: i64 = 30 * 24 * 3600;

/// What a caller asks for in `/v1/pki/issue/ROLE` or `/v1/pki/sign/ROLE`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CertRequest {
    pub(crate) common_name: String,
    /// Comma-separated DNS names (Vault's form), beside the common name.
    #[serde(default)]
    pub(crate) alt_names: String,
    #[serde(default)]
    pub(crate) ip_sans: String,
    #[serde(default)]
    pub(crate) uri_sans: String,
    /// Lifetime in seconds, or with a unit suffix (`90m`, `24h`).
    #[serde(default)]
    pub(crate) ttl: Option<serde_json::Value>,
    /// For `/sign`: the PEM certificate signing request.
    #[serde(default)]
    pub(crate) csr: Option<String>,
}

/// A certificate just issued, with its lease.
pub(crate) struct IssuedCert {
    pub(crate) certificate: String,
    pub(crate) issuing_ca: String,
    /// The issuer's certificate, then the root's.
    pub(crate) ca_chain: Vec<String>,
    pub(crate) private_key: Option<String>,
    pub(crate) serial_number: String,
    pub(crate) expiration: i64,
    pub(crate) lease: LeaseRow,
}

/// A CRL once built: valid for an hour, reused for at most ten minutes and only while no
/// certificate was revoked since.
pub(crate) struct CachedCrl {
    der: Vec<u8>,
    pem: String,
    marker: (i64, Option<i64>, Option<i64>),
    built_at: i64,
}

const CRL_REUSE_SECS: i64 = 600;

/// Delta CRLs list what was revoked since the start of the current UTC day.
const DELTA_BASE_SECS: i64 = 86_400;

/// Keeps the CRL current: every 30 seconds it is rebuilt if a certificate was revoked since
/// the last build or that build is ten minutes old, so requests (even for a CRL of
/// millions of entries) are answered from the cache.
pub(crate) async fn run_crl_refresher(creds: Creds, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(30);
    // Not at start: the first request builds it then, as before any revocation.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Other replicas build their copy when asked for it.
                if !creds.store.is_leader() {
                    continue;
                }
                for authority in creds.ca.authorities() {
                    if let Err(e) = creds.crl(authority.id()).await {
                        tracing::warn!(error = %e, issuer = authority.id(), "CRL refresh failed");
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Parses a TTL given as seconds (number or digits) or with a unit (`s`, `m`, `h`, `d`).
pub(crate) fn parse_ttl(v: &serde_json::Value) -> Result<i64, CredsError> {
    let bad = || CredsError::Invalid(format!("ttl {v} is not seconds or a duration like 24h"));
    match v {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(bad),
        serde_json::Value::String(s) => {
            let s = s.trim();
            let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
                Some((i, _)) => s.split_at(i),
                None => (s, "s"),
            };
            let n: i64 = digits.parse().map_err(|_| bad())?;
            let mult = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => return Err(bad()),
            };
            n.checked_mul(mult).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

impl PkiRole {
    fn check(&self) -> Result<(), CredsError> {
        if self.key_type != "ec" || !matches!(self.key_bits, 256 | 384) {
            return Err(CredsError::Invalid(
                "key_type must be \"ec\" with key_bits 256 or 384".into(),
            ));
        }
        if self.ttl < 0 || self.max_ttl < 0 || (self.max_ttl > 0 && self.ttl > self.max_ttl) {
            return Err(CredsError::Invalid(
                "ttl and max_ttl must be >= 0 and ttl <= max_ttl".into(),
            ));
        }
        if !self.server_flag && !self.client_flag {
            return Err(CredsError::Invalid("at least one of server_flag and client_flag".into()));
        }
        Ok(())
    }

    fn allows_dns(&self, name: &str) -> bool {
        // DNS names are ASCII (IDNs in their xn-- form); the suffix test below cuts bytes.
        if !name.is_ascii() {
            return false;
        }
        if self.allow_any_name {
            return true;
        }
        if self.allow_localhost && name == "localhost" {
            return true;
        }
        self.allowed_domains.iter().any(|d| {
            let d = d.trim_start_matches("*.");
            (self.allow_bare_domains && name.eq_ignore_ascii_case(d))
                || (self.allow_subdomains
                    && name.len() > d.len() + 1
                    && name[name.len() - d.len()..].eq_ignore_ascii_case(d)
                    && name.as_bytes()[name.len() - d.len() - 1] == b'.')
        })
    }

    fn allows_uri(&self, uri: &str) -> bool {
        self.allowed_uri_sans.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => uri.starts_with(prefix),
            None => uri == p,
        })
    }

    /// Checks a request against the role and turns it into what the CA will sign.
    fn spec(&self, req: &CertRequest, now: i64) -> Result<LeafSpec, CredsError> {
        let refuse =
            |what: &str| CredsError::Invalid(format!("{what} is not allowed by this role"));
        let mut dns_names = Vec::new();
        let cn = req.common_name.trim();
        let cn_is_uri = cn.contains("://");
        if cn.is_empty() {
            return Err(CredsError::Invalid("common_name is required".into()));
        }
        // A URI common name goes into the URI SAN (a SPIFFE ID may be longer).
        if !cn_is_uri && cn.len() > crate::acme::issue::MAX_COMMON_NAME {
            return Err(CredsError::Invalid(format!(
                "common_name has more than {} characters (RFC 5280 ub-common-name)",
                crate::acme::issue::MAX_COMMON_NAME
            )));
        }
        for name in std::iter::once(cn).filter(|_| !cn_is_uri).chain(split_list(&req.alt_names)) {
            if !self.allows_dns(name) {
                return Err(refuse(&format!("name {name:?}")));
            }
            if !dns_names.iter().any(|n: &String| n.eq_ignore_ascii_case(name)) {
                dns_names.push(name.to_owned());
            }
        }
        let mut ip_addresses = Vec::new();
        for ip in split_list(&req.ip_sans) {
            let ip: IpAddr = ip.parse().map_err(|_| {
                CredsError::Invalid(format!("ip_sans: {ip:?} is not an IP address"))
            })?;
            if !self.allow_ip_sans {
                return Err(refuse("an IP SAN"));
            }
            ip_addresses.push(ip);
        }
        let mut uris = Vec::new();
        for uri in std::iter::once(cn).filter(|_| cn_is_uri).chain(split_list(&req.uri_sans)) {
            if !self.allows_uri(uri) {
                return Err(refuse(&format!("URI {uri:?}")));
            }
            uris.push(uri.to_owned());
        }
        let default = if self.ttl > 0 { self.ttl } else { DEFAULT_TTL };
        let max = if self.max_ttl > 0 { self.max_ttl } else { DEFAULT_MAX_TTL };
        let ttl = match &req.ttl {
            Some(v) => parse_ttl(v)?,
            None => default.min(max),
        };
        if ttl <= 0 || ttl > max {
            return Err(CredsError::Invalid(format!("ttl must be between 1 and {max} seconds")));
        }
        let not_after = OffsetDateTime::from_unix_timestamp(now + ttl)
            .map_err(|_| CredsError::Invalid("ttl out of range".into()))?;
        Ok(LeafSpec {
            common_name: cn.to_owned(),
            dns_names,
            ip_addresses,
            uris,
            server_auth: self.server_flag,
            client_auth: self.client_flag,
            revocation_pointers: true,
            not_after,
        })
    }
}

impl Creds {
    pub(crate) async fn put_pki_role(&self, name: &str, role: PkiRole) -> Result<(), CredsError> {
        check_name("role name", name)?;
        role.check()?;
        let body = serde_json::to_string(&role).unwrap_or_default();
        self.store.put_engine_config(KIND_PKI_ROLE, name, &body, None, crate::util::now()).await?;
        Ok(())
    }

    pub(crate) async fn pki_role(&self, name: &str) -> Result<PkiRole, CredsError> {
        Ok(self.config(KIND_PKI_ROLE, name).await?.0)
    }

    pub(crate) async fn pki_role_names(&self) -> Result<Vec<String>, CredsError> {
        self.names(KIND_PKI_ROLE).await
    }

    pub(crate) async fn delete_pki_role(&self, name: &str) -> Result<bool, CredsError> {
        Ok(self.store.delete_engine_config(KIND_PKI_ROLE, name).await?)
    }

    /// Issues a certificate under `role_name`: for a new key pair (returned), or with
    /// `req.csr` for the CSR's key (whose signature is checked). The lease lasts as long as
    /// the certificate; revoking it revokes the certificate.
    pub(crate) async fn issue_certificate(
        &self,
        role_name: &str,
        req: CertRequest,
        holder: super::Holder<'_>,
    ) -> Result<IssuedCert, CredsError> {
        let role = self.pki_role(role_name).await?;
        let now = crate::util::now();
        let spec = role.spec(&req, now)?;
        let subject = spec.common_name.clone();
        let csr = req.csr.clone();
        let bits = role.key_bits;
        // The key made here, if any, is EC: microseconds.
        let (issued, serial, private_key) =
            crate::ca::run_signing(self.ca.current(), move |ca| match csr {
                Some(pem) => {
                    let bad = |e: &dyn std::fmt::Display| {
                        CredsError::Invalid(format!(
                            "csr is not a valid PEM CSR with a good signature: {e}"
                        ))
                    };
                    // Any label (NEW CERTIFICATE REQUEST, as keytool and certreq write).
                    let (_, pem) =
                        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| bad(&e))?;
                    let der = rustls::pki_types::CertificateSigningRequestDer::from(pem.contents);
                    rcgen::CertificateSigningRequestParams::from_der(&der).map_err(|e| bad(&e))?;
                    let (kind, key) =
                        crate::ca::csr_key(&der).map_err(|e| CredsError::Invalid(e.into()))?;
                    // The role's key type binds keys sent in a CSR as those made here.
                    if kind != crate::der::KeyKind::Ec(u16::try_from(bits).unwrap_or(0)) {
                        return Err(CredsError::Invalid(format!(
                            "the role takes EC P-{bits} keys, not {}",
                            kind.name()
                        )));
                    }
                    let (issued, serial) = ca.issue_leaf(&spec, &key)?;
                    Ok::<_, CredsError>((issued, serial, None))
                }
                None => {
                    let alg = if bits == 384 {
                        &rcgen::PKCS_ECDSA_P384_SHA384
                    } else {
                        &rcgen::PKCS_ECDSA_P256_SHA256
                    };
                    let key =
                        rcgen::KeyPair::generate_for(alg).map_err(crate::ca::CaError::from)?;
                    let (issued, serial) = ca.issue_leaf(&spec, &key)?;
                    Ok((issued, serial, Some(key.serialize_pem())))
                }
            })
            .await
            .map_err(|e| CredsError::Invalid(format!("certificate task failed: {e}")))??;
        let expiration = issued.not_after.unix_timestamp();
        let ttl = expiration - now;
        let path = if req.csr.is_some() { "sign" } else { "issue" };
        let data = serde_json::json!({ "serial": serial, "role": role_name }).to_string();
        let lease = self
            .new_lease(
                &format!("pki/{path}/{role_name}"),
                "pki",
                &data,
                ttl,
                ttl,
                holder.for_certificate(),
            )
            .await?;
        self.store
            .insert_certificate(&CertificateRow {
                serial: serial.clone(),
                role: role_name.to_owned(),
                subject,
                not_before: now,
                not_after: expiration,
                lease_id: Some(lease.id.clone()),
                revoked_at: None,
                revocation_reason: None,
                pem: issued.cert_pem.clone(),
                issuer: issued.issuer.clone(),
                kmip_object: None,
            })
            .await?;
        let ca_chain = match self.ca.authority(&issued.issuer) {
            Some(a) => self.ca.chain(&a),
            None => Vec::new(),
        };
        Ok(IssuedCert {
            certificate: issued.cert_pem,
            issuing_ca: ca_chain.first().cloned().unwrap_or_default(),
            ca_chain,
            private_key,
            serial_number: serial,
            expiration,
            lease,
        })
    }

    /// Revokes a certificate by serial (hex, with or without colons).
    /// Revokes a certificate by serial, for an RFC 5280 `reason` (default 5,
    /// cessationOfOperation: no longer needed); the revocation time.
    pub(crate) async fn revoke_certificate(
        &self,
        serial: &str,
        reason: Option<i64>,
    ) -> Result<i64, CredsError> {
        let serial = normalize_serial(serial);
        let now = crate::util::now();
        let reason = reason.unwrap_or(5);
        // Not a hold (6): nothing here would release it.
        if !crate::ca::revocation_reason_allowed(reason) || reason == 6 {
            return Err(CredsError::Invalid(
                "reason is an RFC 5280 code: 0-5, 9 or 10 (no certificateHold)".into(),
            ));
        }
        if !self.store.revoke_certificate(&serial, reason, now).await? {
            return Err(CredsError::NotFound { kind: "certificate", name: serial });
        }
        Ok(self.store.certificate(&serial).await?.and_then(|c| c.revoked_at).unwrap_or(now))
    }

    pub(super) async fn revoke_leased_certificate(
        &self,
        lease: &LeaseRow,
    ) -> Result<(), CredsError> {
        #[derive(Deserialize)]
        struct Data {
            serial: String,
        }
        let data: Data = super::leases::lease_data(lease)?;
        self.revoke_certificate(&data.serial, None).await.map(|_| ())
    }

    pub(crate) async fn certificate(&self, serial: &str) -> Result<CertificateRow, CredsError> {
        let serial = normalize_serial(serial);
        self.store
            .certificate(&serial)
            .await?
            .ok_or(CredsError::NotFound { kind: "certificate", name: serial })
    }

    /// The current CRL (DER and PEM) of the authority `issuer` (`root` or an intermediate),
    /// signed in the HSM: every certificate it issued that is revoked and not yet expired.
    pub(crate) async fn crl(&self, issuer: &str) -> Result<(Vec<u8>, String), CredsError> {
        self.build_crl(issuer, false).await
    }

    /// The current delta CRL of `issuer`: what it revoked since the start of the UTC day
    /// (its base CRL number), to complete any full CRL built since.
    pub(crate) async fn delta_crl(&self, issuer: &str) -> Result<(Vec<u8>, String), CredsError> {
        self.build_crl(issuer, true).await
    }

    async fn build_crl(&self, issuer: &str, delta: bool) -> Result<(Vec<u8>, String), CredsError> {
        let authority = self
            .ca
            .authority(issuer)
            .ok_or_else(|| CredsError::NotFound { kind: "issuer", name: issuer.to_owned() })?;
        let key = if delta { format!("{issuer}/delta") } else { issuer.to_owned() };
        // One build at a time; later callers get its result.
        let mut cache = self.crl.lock().await;
        let marker = self.store.revocation_marker().await?;
        let now = crate::util::now();
        // A delta lists what was revoked since the start of the UTC day.
        let base = now - now.rem_euclid(DELTA_BASE_SECS);
        if let Some(c) = cache.get(&key).filter(|c| {
            c.marker == marker && now - c.built_at < CRL_REUSE_SECS && c.built_at >= base
        }) {
            return Ok((c.der.clone(), c.pem.clone()));
        }
        // CRL numbers count milliseconds, or one more than the issuer's last where two
        // builds share one, so that a delta's base (the start of the UTC day) is below
        // the number of every full CRL built since. Full and delta CRLs share one sequence
        // (RFC 5280 §5.2.4), kept in the store for all replicas. Taken before the entries
        // are read, so every revocation committed before a CRL's number was taken is on it.
        let millis = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let floor = i64::try_from(millis).unwrap_or(i64::MAX);
        let number = self.store.next_crl_number(issuer, floor).await?;
        let number = u64::try_from(number).unwrap_or(0);
        let mut entries = Vec::new();
        for (serial, at, reason) in self.store.revocations(issuer, now).await? {
            if delta && at < base {
                continue;
            }
            let Ok(serial) = hex::decode(&serial) else { continue };
            entries.push(RevokedEntry {
                serial,
                revoked_at: OffsetDateTime::from_unix_timestamp(at)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                reason: reason.and_then(|r| u8::try_from(r).ok()).unwrap_or(0),
            });
        }
        let signer = authority.clone();
        let base = u64::try_from(base).unwrap_or(0) * 1000;
        let (der, pem) = tokio::task::spawn_blocking(move || match delta {
            true => signer.delta_crl(&entries, number, base, time::Duration::hours(1)),
            false => signer.crl(&entries, number, time::Duration::hours(1)),
        })
        .await
        .map_err(|e| CredsError::Invalid(format!("CRL task failed: {e}")))??;
        let cached = CachedCrl { der: der.clone(), pem: pem.clone(), marker, built_at: now };
        cache.insert(key, cached);
        if !delta && self.ca.current().id() == issuer {
            self.crl_built_at.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        Ok((der, pem))
    }

    /// CA rotation: a new intermediate becomes the default issuer.
    pub(crate) async fn rotate_ca(
        &self,
    ) -> Result<std::sync::Arc<crate::ca::Authority>, CredsError> {
        Ok(crate::ca::rotate(&self.ca, &self.store).await?)
    }

    /// Root rotation: a new cross-signed root and an intermediate under it, which becomes
    /// the default issuer.
    pub(crate) async fn rotate_ca_root(
        &self,
    ) -> Result<
        (std::sync::Arc<crate::ca::Authority>, std::sync::Arc<crate::ca::Authority>),
        CredsError,
    > {
        Ok(crate::ca::rotate_root(&self.ca, &self.store).await?)
    }

    /// Revokes an intermediate that no longer issues (see `ca::revoke_intermediate`).
    pub(crate) async fn revoke_issuer(&self, id: &str, reason: i64) -> Result<(), CredsError> {
        match crate::ca::revoke_intermediate(&self.ca, &self.store, id, reason).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(CredsError::Invalid(format!("issuer {id} is revoked already"))),
            Err(crate::ca::CaError::BadIssuer(id, why)) => {
                Err(CredsError::Invalid(format!("issuer {id}: {why}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Seconds since this process last built the default issuer's CRL, if it has.
    pub(crate) fn crl_age(&self, now: i64) -> Option<i64> {
        let built = self.crl_built_at.load(std::sync::atomic::Ordering::Relaxed);
        (built > 0).then(|| now - built)
    }
}

fn normalize_serial(s: &str) -> String {
    s.chars().filter(|c| *c != ':' && *c != '-').collect::<String>().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> PkiRole {
        serde_json::from_value(serde_json::json!({
            "allowed_domains": ["svc.internal"], "allow_subdomains": true,
            "allowed_uri_sans": ["spiffe://prod/*"], "max_ttl": 7200
        }))
        .unwrap()
    }

    #[test]
    fn role_lists_are_arrays_or_comma_separated() {
        let r: PkiRole = serde_json::from_value(serde_json::json!({
            "allowed_domains": "a.internal, b.internal", "allowed_uri_sans": ""
        }))
        .unwrap();
        assert_eq!(r.allowed_domains, ["a.internal", "b.internal"]);
        assert!(r.allowed_uri_sans.is_empty());
        assert_eq!(role().allowed_domains, ["svc.internal"]);
    }

    #[test]
    fn names_are_checked_against_the_role() {
        let r = role();
        let req = |cn: &str, alt: &str| CertRequest {
            common_name: cn.into(),
            alt_names: alt.into(),
            ..CertRequest::default()
        };
        let spec = r.spec(&req("api.svc.internal", "db.svc.internal"), 0).unwrap();
        assert_eq!(spec.dns_names, ["api.svc.internal", "db.svc.internal"]);
        // The domain itself only with allow_bare_domains, as in Vault.
        assert!(r.spec(&req("svc.internal", ""), 0).is_err());
        let bare = PkiRole { allow_bare_domains: true, ..role() };
        assert!(bare.spec(&req("svc.internal", ""), 0).is_ok());
        assert_eq!(spec.not_after.unix_timestamp(), DEFAULT_TTL.min(7200));
        assert!(r.spec(&req("evil.com", ""), 0).is_err());
        assert!(r.spec(&req("xsvc.internal", ""), 0).is_err());
        assert!(r.spec(&req("spiffe://prod/web", ""), 0).unwrap().dns_names.is_empty());
        assert!(r.spec(&req("spiffe://dev/web", ""), 0).is_err());
        let mut ip = req("a.svc.internal", "");
        ip.ip_sans = "10.0.0.1".into();
        assert!(r.spec(&ip, 0).is_err(), "IP SANs need allow_ip_sans");
        let mut long = req("a.svc.internal", "");
        long.ttl = Some(serde_json::json!("3h"));
        assert!(r.spec(&long, 0).is_err(), "beyond max_ttl");
    }

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl(&serde_json::json!(90)).unwrap(), 90);
        assert_eq!(parse_ttl(&serde_json::json!("90")).unwrap(), 90);
        assert_eq!(parse_ttl(&serde_json::json!("15m")).unwrap(), 900);
        assert_eq!(parse_ttl(&serde_json::json!("24h")).unwrap(), 86400);
        assert!(parse_ttl(&serde_json::json!("1w")).is_err());
        assert!(parse_ttl(&serde_json::json!(true)).is_err());
    }
}
