//! Name constraints (RFC 5280 §4.2.1.10) for issuing intermediates: the DNS subtrees and
//! IP ranges of `[ca]`, which intermediates made from then on carry as a critical
//! extension, and the check every issuance makes against its issuer's own constraints, so
//! that nothing is issued that relying parties would reject.

use std::net::IpAddr;

/// Permitted and excluded subtrees: DNS names (`example.com` is the domain and everything
/// under it, `.example.com` only what is under it) and IP ranges (address, prefix length).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NameConstraints {
    pub(crate) permitted_dns: Vec<String>,
    pub(crate) excluded_dns: Vec<String>,
    pub(crate) permitted_ip: Vec<(IpAddr, u8)>,
    pub(crate) excluded_ip: Vec<(IpAddr, u8)>,
}

impl NameConstraints {
    pub(crate) fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.excluded_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_ip.is_empty()
    }

    /// The extension rcgen writes into an intermediate, or none when nothing is set.
    pub(crate) fn to_rcgen(&self) -> Option<rcgen::NameConstraints> {
        use rcgen::{CidrSubnet, GeneralSubtree};
        if self.is_empty() {
            return None;
        }
        let subtrees =
            |dns: &[String], ips: &[(IpAddr, u8)]| {
                dns.iter()
                    .map(|d| GeneralSubtree::DnsName(d.clone()))
                    .chain(ips.iter().map(|(a, p)| {
                        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*a, *p))
                    }))
                    .collect()
            };
        Some(rcgen::NameConstraints {
            permitted_subtrees: subtrees(&self.permitted_dns, &self.permitted_ip),
            excluded_subtrees: subtrees(&self.excluded_dns, &self.excluded_ip),
        })
    }

    /// The DNS and IP constraints of a CA certificate, if it has the extension.
    pub(crate) fn of_certificate(
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> Option<NameConstraints> {
        use x509_parser::extensions::GeneralName;
        let ext = cert.name_constraints().ok().flatten()?;
        let read = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
            let (mut dns, mut ips) = (Vec::new(), Vec::new());
            for s in subtrees.iter().flatten() {
                match &s.base {
                    GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => ips.extend(ip_range(b)),
                    _ => {}
                }
            }
            (dns, ips)
        };
        let (permitted_dns, permitted_ip) = read(&ext.value.permitted_subtrees);
        let (excluded_dns, excluded_ip) = read(&ext.value.excluded_subtrees);
        Some(NameConstraints { permitted_dns, excluded_dns, permitted_ip, excluded_ip })
    }

    /// Whether a certificate naming `dns` and `ips` falls within these constraints; when not,
    /// the first name that does not.
    pub(crate) fn check(&self, dns: &[String], ips: &[IpAddr]) -> Result<(), String> {
        for d in dns {
            if self.excluded_dns.iter().any(|c| dns_within(d, c) || wildcard_reaches(d, c)) {
                return Err(format!("{d} is in a subtree the CA's name constraints exclude"));
            }
            if !self.permitted_dns.is_empty()
                && !self.permitted_dns.iter().any(|c| dns_within(d, c))
            {
                return Err(format!("{d} is outside the CA's permitted DNS names"));
            }
        }
        for ip in ips {
            // An IPv4-mapped address is its IPv4 address to a client that connects to it,
            // but relying parties match it against IPv6 ranges only: refused.
            if ip.to_canonical() != *ip {
                return Err(format!("{ip} is an IPv4-mapped address; name {}", ip.to_canonical()));
            }
            if self.excluded_ip.iter().any(|(a, p)| ip_within(ip, a, *p)) {
                return Err(format!("{ip} is in a range the CA's name constraints exclude"));
            }
            if !self.permitted_ip.is_empty()
                && !self.permitted_ip.iter().any(|(a, p)| ip_within(ip, a, *p))
            {
                return Err(format!("{ip} is outside the CA's permitted IP ranges"));
            }
        }
        Ok(())
    }
}

/// `ADDRESS/PREFIX` (a bare address is the one address).
pub(crate) fn parse_range(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some((addr, prefix))
}

/// A name constraint's iPAddress (address followed by mask, RFC 5280 §4.2.1.10).
fn ip_range(b: &[u8]) -> Option<(IpAddr, u8)> {
    let (addr, mask) = b.split_at(b.len() / 2);
    let addr = match addr.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(addr).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(addr).ok()?),
        _ => return None,
    };
    let prefix = mask.iter().map(|m| m.count_ones()).sum::<u32>();
    Some((addr, u8::try_from(prefix).ok()?))
}

/// RFC 5280 dNSName matching: the name itself or names with labels added on the left; a
/// constraint starting with a dot only the latter.
fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let constraint = constraint.trim_end_matches('.').to_ascii_lowercase();
    if constraint.is_empty() {
        return true;
    }
    if let Some(suffix) = constraint.strip_prefix('.') {
        return name.ends_with(&format!(".{suffix}"));
    }
    name == constraint || name.ends_with(&format!(".{constraint}"))
}

/// Whether the wildcard `name` (`*.BASE`) stands for the name `constraint` (`x.BASE`): a
/// relying party matching the wildcard literally would not see it as within the excluded
/// subtree, yet it serves that host.
fn wildcard_reaches(name: &str, constraint: &str) -> bool {
    let Some(base) = name.strip_prefix("*.") else { return false };
    let constraint = constraint.trim_end_matches('.');
    !constraint.starts_with('.')
        && constraint
            .split_once('.')
            .is_some_and(|(_, parent)| parent.eq_ignore_ascii_case(base.trim_end_matches('.')))
}

fn ip_within(ip: &IpAddr, base: &IpAddr, prefix: u8) -> bool {
    let bits = |a: &IpAddr| -> (u128, u32) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(*v)), 32),
            IpAddr::V6(v) => (u128::from(*v), 128),
        }
    };
    let ((ip, len), (base, base_len)) = (bits(ip), bits(base));
    if len != base_len || u32::from(prefix) > len {
        return false;
    }
    let shift = len - u32::from(prefix);
    shift >= len || (ip >> shift) == (base >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_and_ip_subtrees_follow_rfc_5280() {
        let c = NameConstraints {
            permitted_dns: vec!["svc.internal".into(), ".example.com".into()],
            excluded_dns: vec!["secret.svc.internal".into()],
            permitted_ip: vec![parse_range("10.0.0.0/8").unwrap()],
            excluded_ip: vec![parse_range("10.9.0.0/16").unwrap()],
        };
        assert!(c.check(&["svc.internal".into(), "a.b.svc.internal".into()], &[]).is_ok());
        assert!(c.check(&["api.example.com".into()], &[]).is_ok());
        assert!(c.check(&["example.com".into()], &[]).is_err(), "leading dot: subdomains only");
        assert!(c.check(&["evilsvc.internal".into()], &[]).is_err(), "whole labels only");
        assert!(c.check(&["x.secret.svc.internal".into()], &[]).is_err());
        assert!(c.check(&["*.svc.internal".into()], &[]).is_err(), "stands for secret.…");
        assert!(c.check(&["*.secret.svc.internal".into()], &[]).is_err());
        assert!(c.check(&["*.b.svc.internal".into()], &[]).is_ok());
        assert!(c.check(&[], &["10.1.2.3".parse().unwrap()]).is_ok());
        assert!(c.check(&[], &["10.9.2.3".parse().unwrap()]).is_err());
        assert!(c.check(&[], &["::ffff:10.9.2.3".parse().unwrap()]).is_err(), "mapped");
        assert!(c.check(&[], &["192.168.1.1".parse().unwrap()]).is_err());
        assert!(c.check(&[], &["::1".parse().unwrap()]).is_err(), "no IPv6 range permitted");
        assert_eq!(parse_range("fd00::/8"), Some(("fd00::".parse().unwrap(), 8)));
        assert_eq!(parse_range("10.0.0.1"), Some(("10.0.0.1".parse().unwrap(), 32)));
        assert_eq!(parse_range("10.0.0.0/33"), None);
        assert!(NameConstraints::default().check(&["any.thing".into()], &[]).is_ok());
    }

    #[test]
    fn constraints_survive_a_certificate() {
        let c = NameConstraints {
            permitted_dns: vec!["svc.internal".into()],
            excluded_dns: vec![],
            permitted_ip: vec![parse_range("127.0.0.0/8").unwrap()],
            excluded_ip: vec![parse_range("fd00::/8").unwrap()],
        };
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.name_constraints = c.to_rcgen();
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.der()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(NameConstraints::of_certificate(&parsed), Some(c));
    }
}
