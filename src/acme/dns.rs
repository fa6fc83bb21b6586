//! A small DNS stub resolver (RFC 1035) for challenge validation: A, AAAA and TXT queries
//! over UDP to one configured server (`[acme] dns_resolver`), or the system's resolver for
//! addresses and `/etc/resolv.conf`'s first name server for TXT. Answers are bounded by
//! the UDP message size; truncated answers are refused rather than retried over TCP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

const A: u16 = 1;
const TXT: u16 = 16;
const AAAA: u16 = 28;
const MAX_MESSAGE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DnsError {
    #[error("DNS query for {name} failed: {why}")]
    Failed { name: String, why: String },
    #[error("DNS server answered {rcode} for {name}")]
    Rcode { name: String, rcode: &'static str },
    #[error("no DNS server: set [acme] dns_resolver or a nameserver in /etc/resolv.conf")]
    NoServer,
}

/// Where queries go.
#[derive(Clone, Debug)]
pub(crate) struct Resolver {
    server: Option<SocketAddr>,
}

fn failed(name: &str, why: impl std::fmt::Display) -> DnsError {
    DnsError::Failed { name: name.to_owned(), why: why.to_string() }
}

/// Encodes a query for `name` and `qtype` with id `id`, recursion desired.
fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("bad label in {name:?}"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Ok(q)
}

/// Skips a (possibly compressed) name at `pos`; returns the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l => pos += 1 + l as usize,
        }
    }
    None
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The RDATA of every answer of type `qtype` in a response to query `id`.
fn answers(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<Vec<u8>>, String> {
    let bad = || "malformed DNS response".to_owned();
    if msg.len() < 12 || u16_at(msg, 0) != Some(id) {
        return Err("response does not match the query".into());
    }
    let flags = u16_at(msg, 2).ok_or_else(bad)?;
    if flags & 0x0200 != 0 {
        return Err("truncated response (TCP fallback is not supported)".into());
    }
    let rcode = flags & 0x000F;
    if rcode != 0 {
        return Err(format!("rcode:{rcode}"));
    }
    let qd = u16_at(msg, 4).ok_or_else(bad)?;
    let an = u16_at(msg, 6).ok_or_else(bad)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos).ok_or_else(bad)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = skip_name(msg, pos).ok_or_else(bad)?;
        let rtype = u16_at(msg, pos).ok_or_else(bad)?;
        let len = u16_at(msg, pos + 8).ok_or_else(bad)? as usize;
        let start = pos + 10;
        let data = msg.get(start..start + len).ok_or_else(bad)?;
        if rtype == qtype {
            out.push(data.to_vec());
        }
        pos = start + len;
    }
    Ok(out)
}

/// TXT RDATA: one or more length-prefixed character strings, concatenated.
fn txt_value(data: &[u8]) -> String {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(&len) = data.get(pos) {
        let end = (pos + 1 + len as usize).min(data.len());
        out.extend_from_slice(&data[pos + 1..end]);
        pos = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn system_nameserver() -> Option<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    conf.lines().find_map(|l| {
        let ip: IpAddr = l.strip_prefix("nameserver")?.trim().parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

impl Resolver {
    pub(crate) fn new(server: Option<SocketAddr>) -> Resolver {
        Resolver { server }
    }

    async fn ask(&self, name: &str, qtype: u16) -> Result<Vec<Vec<u8>>, DnsError> {
        let server = self.server.or_else(system_nameserver).ok_or(DnsError::NoServer)?;
        let r = crate::util::random_bytes(2);
        let id = u16::from_be_bytes([r[0], r[1]]);
        let q = query(id, name, qtype).map_err(|e| failed(name, e))?;
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await.map_err(|e| failed(name, e))?;
        socket.connect(server).await.map_err(|e| failed(name, e))?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        for _ in 0..3 {
            socket.send(&q).await.map_err(|e| failed(name, e))?;
            let Ok(got) = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf)).await
            else {
                continue;
            };
            let n = got.map_err(|e| failed(name, e))?;
            return match answers(&buf[..n], id, qtype) {
                Ok(a) => Ok(a),
                Err(e) if e == "rcode:3" => {
                    Err(DnsError::Rcode { name: name.to_owned(), rcode: "NXDOMAIN" })
                }
                Err(e) if e.starts_with("rcode:") => {
                    Err(DnsError::Rcode { name: name.to_owned(), rcode: "an error" })
                }
                Err(e) => Err(failed(name, e)),
            };
        }
        Err(failed(name, format!("no answer from {server}")))
    }

    /// The addresses of `name`, IPv4 first.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        if self.server.is_none() {
            let found = tokio::net::lookup_host((name, 0)).await.map_err(|e| failed(name, e))?;
            let mut ips: Vec<IpAddr> = found.map(|a| a.ip()).collect();
            ips.sort_by_key(|ip| ip.is_ipv6());
            ips.dedup();
            return Ok(ips);
        }
        let mut ips = Vec::new();
        for data in self.ask(name, A).await? {
            if let Ok(b) = <[u8; 4]>::try_from(data.as_slice()) {
                ips.push(IpAddr::V4(Ipv4Addr::from(b)));
            }
        }
        // A name with only IPv4 addresses may answer AAAA with an error; that is no failure.
        if let Ok(v6) = self.ask(name, AAAA).await {
            for data in v6 {
                if let Ok(b) = <[u8; 16]>::try_from(data.as_slice()) {
                    ips.push(IpAddr::V6(Ipv6Addr::from(b)));
                }
            }
        }
        if ips.is_empty() {
            return Err(failed(name, "no A or AAAA records"));
        }
        Ok(ips)
    }

    /// The TXT values at `name`.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        Ok(self.ask(name, TXT).await?.iter().map(|d| txt_value(d)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_answers_round_trip() {
        let q = query(0x1234, "_acme-challenge.svc.example.", TXT).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert!(query(1, "a..b", A).is_err());
        // A response: the query, then one TXT answer pointing back at the question name.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 6, 5]);
        r.extend_from_slice(b"hello");
        let a = answers(&r, 0x1234, TXT).unwrap();
        assert_eq!(a.iter().map(|d| txt_value(d)).collect::<Vec<_>>(), vec!["hello"]);
        assert!(answers(&r, 0x9999, TXT).is_err(), "another query's id");
        assert!(answers(&r[..r.len() - 2], 0x1234, TXT).is_err(), "cut short");
        let mut nx = r.clone();
        nx[3] = 0x83;
        assert_eq!(answers(&nx, 0x1234, TXT).unwrap_err(), "rcode:3");
    }
}
