//! Finalization: the CSR's signature and names are checked against the order, then the
//! certificate is built for the CSR's key and signed by the HSM-held CA.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rcgen::SanType;

use super::{AcmeError, Identifier, Profile};
use crate::ca::{Authority, Issued, LeafSpec};

/// The longest common name X.509 allows (RFC 5280 Appendix A, ub-common-name).
pub(crate) const MAX_COMMON_NAME: usize = 64;

/// The identifier that names the certificate's subject (and so its holder's identity on
/// the KMIP and API listeners): the first that fits in a common name.
pub(crate) fn common_name(identifiers: &[Identifier]) -> Option<&str> {
    identifiers.iter().map(|i| i.value.as_str()).find(|v| v.len() <= MAX_COMMON_NAME)
}

/// Issues a certificate under `profile` for the key in `csr_der` naming exactly
/// `identifiers`; returns it with its serial (hex), subject and expiry (Unix seconds).
/// Blocking: it signs in the HSM.
pub(crate) fn from_csr(
    ca: &Authority,
    csr_der: &[u8],
    identifiers: &[Identifier],
    profile: &Profile,
) -> Result<(Issued, String, String, i64), AcmeError> {
    let der = rustls::pki_types::CertificateSigningRequestDer::from(csr_der);
    let csr = rcgen::CertificateSigningRequestParams::from_der(&der)
        .map_err(|e| AcmeError::BadCsr(format!("the CSR does not parse or verify: {e}")))?;
    // A common name, if any, must be one of the names (RFC 8555 §7.4), which may appear
    // there rather than in the subjectAltName extension.
    let cn = csr.params.distinguished_name.get(&rcgen::DnType::CommonName).and_then(|v| match v {
        rcgen::DnValue::Utf8String(s) => Some(s.clone()),
        rcgen::DnValue::PrintableString(s) => Some(s.as_str().to_owned()),
        rcgen::DnValue::Ia5String(s) => Some(s.as_str().to_owned()),
        _ => None,
    });
    let cn = cn.map(|cn| cn.trim_end_matches('.').to_ascii_lowercase());
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Some(cn) = cn.as_ref().filter(|cn| cn.parse::<IpAddr>().is_err()) {
        dns.insert(cn.clone());
    }
    for san in &csr.params.subject_alt_names {
        match san {
            SanType::DnsName(n) => {
                dns.insert(n.as_str().trim_end_matches('.').to_ascii_lowercase());
            }
            SanType::IpAddress(ip) => {
                ips.insert(*ip);
            }
            other => {
                return Err(AcmeError::BadCsr(format!("the CSR asks for {other:?}, not allowed")))
            }
        }
    }
    let want_dns: BTreeSet<String> =
        identifiers.iter().filter(|i| i.kind == "dns").map(|i| i.value.clone()).collect();
    let want_ips: BTreeSet<IpAddr> = identifiers
        .iter()
        .filter(|i| i.kind == "ip")
        .filter_map(|i| i.value.parse().ok())
        .collect();
    if dns != want_dns || ips != want_ips {
        return Err(AcmeError::BadCsr(format!(
            "the CSR names {:?} {:?}, the order {:?} {:?}",
            dns, ips, want_dns, want_ips
        )));
    }
    if let Some(cn) = cn {
        let known = dns.contains(&cn) || cn.parse::<IpAddr>().is_ok_and(|ip| ips.contains(&ip));
        if !known {
            return Err(AcmeError::BadCsr(format!("the CSR's common name {cn:?} is not ordered")));
        }
    }
    // The key as the CSR carries it; a kind this service cannot name (an RSA-PSS key, say)
    // is certified as rcgen reads it, unless the profile limits key types.
    let sent = crate::ca::csr_key(csr_der);
    if !profile.key_types.is_empty() {
        let (kind, _) = sent.as_ref().map_err(|e| AcmeError::BadCsr((*e).into()))?;
        // badCSR, as RFC 8555 §6.7 has it for keys the CA will not certify.
        if !profile.key_types.contains(&kind.name()) {
            return Err(AcmeError::BadCsr(format!(
                "profile {} takes {} keys, not {}",
                profile.name,
                profile.key_types.join(", "),
                kind.name()
            )));
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + time::Duration::seconds(profile.validity);
    let first = common_name(identifiers)
        .ok_or_else(|| {
            AcmeError::RejectedIdentifier(format!(
                "one identifier must have at most {MAX_COMMON_NAME} characters, to be the \
                 certificate's common name"
            ))
        })?
        .to_owned();
    let spec = LeafSpec {
        common_name: first.clone(),
        dns_names: want_dns.into_iter().collect(),
        ip_addresses: want_ips.into_iter().collect(),
        uris: Vec::new(),
        server_auth: profile.server_auth,
        client_auth: profile.client_auth,
        // Unstored certificates cannot be revoked: pointing to a CRL would mislead.
        revocation_pointers: profile.revocation_pointers && profile.store,
        not_after,
    };
    let (issued, serial) = match &sent {
        Ok((_, key)) => ca.issue_leaf(&spec, key)?,
        Err(_) => ca.issue_leaf(&spec, &csr.public_key)?,
    };
    let not_after = issued.not_after.unix_timestamp();
    Ok((issued, serial, format!("CN={first}"), not_after))
}
