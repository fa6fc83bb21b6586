//! A small DNS stub resolver (RFC 1035) for challenge validation: A, AAAA and TXT queries
//! over UDP to one configured server (`[acme] dns_resolver`), or the system's resolver for
//! addresses and `/etc/resolv.conf`'s first name server for TXT. Queries offer EDNS0
//! (RFC 6891) answers up to 4 KiB; a truncated answer is asked again over TCP (RFC 7766).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

const A: u16 = 1;
const CNAME: u16 = 5;
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

/// Encodes a query for `name` and `qtype` with id `id`, recursion desired; with `edns`, an
/// EDNS0 OPT record offering answers up to [`MAX_MESSAGE`] bytes over UDP.
fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(name.len() + 29);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
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
    if edns {
        // OPT (RFC 6891 §6.1.2): root owner, type 41, the UDP size as class, no flags or
        // data.
        q.push(0);
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&(MAX_MESSAGE as u16).to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Ok(q)
}

/// The question section of a query made by [`query`]: what a response must repeat.
fn question(query: &[u8]) -> &[u8] {
    let end = skip_name(query, 12).map_or(query.len(), |e| (e + 4).min(query.len()));
    &query[12.min(end)..end]
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

/// The (possibly compressed) name at `pos`, in lower case without the trailing dot.
fn read_name(msg: &[u8], mut pos: usize) -> Option<String> {
    let mut labels: Vec<String> = Vec::new();
    // Bounds the pointers followed as well as the labels read.
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(labels.join(".")),
            l if l & 0xC0 == 0xC0 => {
                pos = usize::from(l & 0x3F) << 8 | usize::from(*msg.get(pos + 1)?);
            }
            l if l & 0xC0 != 0 => return None,
            l => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(l))?;
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                pos += 1 + usize::from(l);
            }
        }
    }
    None
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// Why [`answers`] found none.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The answer did not fit (TC set): ask again over TCP.
    Truncated,
    /// The server's RCODE.
    Rcode(u16),
    Other(String),
}

/// The RDATA of every answer of type `qtype` in a response to `query` (same id and
/// question) whose owner is the question's name or a name its CNAME records lead to.
fn answers(msg: &[u8], query: &[u8], qtype: u16) -> Result<Vec<Vec<u8>>, Refusal> {
    let bad = || Refusal::Other("malformed DNS response".to_owned());
    let differs = || Refusal::Other("response does not match the query".into());
    if msg.len() < 12 || msg.get(..2) != query.get(..2) {
        return Err(differs());
    }
    let flags = u16_at(msg, 2).ok_or_else(bad)?;
    let rcode = flags & 0x000F;
    // An error may come without the question (a server that cannot parse the query).
    if rcode != 0 && u16_at(msg, 4) == Some(0) {
        return Err(Refusal::Rcode(rcode));
    }
    let asked = question(query);
    let echoed = msg.get(12..12 + asked.len());
    if u16_at(msg, 4) != Some(1) || !echoed.is_some_and(|e| e.eq_ignore_ascii_case(asked)) {
        return Err(differs());
    }
    if flags & 0x0200 != 0 {
        return Err(Refusal::Truncated);
    }
    if rcode != 0 {
        return Err(Refusal::Rcode(rcode));
    }
    let an = u16_at(msg, 6).ok_or_else(bad)?;
    let mut pos = 12 + asked.len();
    // (owner, type, where the RDATA starts, the RDATA)
    let mut records = Vec::new();
    for _ in 0..an {
        let owner = read_name(msg, pos).ok_or_else(bad)?;
        pos = skip_name(msg, pos).ok_or_else(bad)?;
        let rtype = u16_at(msg, pos).ok_or_else(bad)?;
        let len = u16_at(msg, pos + 8).ok_or_else(bad)? as usize;
        let start = pos + 10;
        let data = msg.get(start..start + len).ok_or_else(bad)?;
        records.push((owner, rtype, start, data));
        pos = start + len;
    }
    // The question's name, then what CNAME records alias it to, in whatever order the
    // records come (at most 8 links, as resolvers limit chains).
    let mut names = vec![read_name(query, 12).ok_or_else(bad)?];
    for _ in 0..8 {
        let next = records.iter().find_map(|(owner, rtype, start, _)| {
            let target = (*rtype == CNAME && names.contains(owner)).then(|| read_name(msg, *start));
            target.flatten().filter(|t| !names.contains(t))
        });
        match next {
            Some(target) => names.push(target),
            None => break,
        }
    }
    Ok(records
        .into_iter()
        .filter(|(owner, rtype, _, _)| *rtype == qtype && names.contains(owner))
        .map(|(_, _, _, data)| data.to_vec())
        .collect())
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

/// Sends `q` over UDP, three tries of 3 s; the first datagram back, if any.
async fn udp(server: SocketAddr, q: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let bind: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    for _ in 0..3 {
        socket.send(q).await?;
        if let Ok(got) = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf)).await {
            buf.truncate(got?);
            return Ok(Some(buf));
        }
    }
    Ok(None)
}

/// Sends `q` over TCP (RFC 1035 §4.2.2: each message after its two-byte length); the
/// response, within 5 s.
async fn tcp(server: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(q.len()).map_err(std::io::Error::other)?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        conn.write_all(&framed).await?;
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).await?;
        // At most 64 KiB, by the length's size.
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut msg).await?;
        Ok(msg)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("timed out")))
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
        let mut q = query(id, name, qtype, true).map_err(|e| failed(name, e))?;
        let mut answered = match udp(server, &q).await.map_err(|e| failed(name, e))? {
            Some(msg) => answers(&msg, &q, qtype),
            None => return Err(failed(name, format!("no answer from {server}"))),
        };
        if answered == Err(Refusal::Rcode(1)) {
            // FORMERR: a server without EDNS0 is asked again without it (RFC 6891 §7).
            q = query(id, name, qtype, false).map_err(|e| failed(name, e))?;
            answered = match udp(server, &q).await.map_err(|e| failed(name, e))? {
                Some(msg) => answers(&msg, &q, qtype),
                None => return Err(failed(name, format!("no answer from {server}"))),
            };
        }
        if answered == Err(Refusal::Truncated) {
            let msg = tcp(server, &q).await.map_err(|e| failed(name, format!("over TCP: {e}")))?;
            answered = answers(&msg, &q, qtype);
        }
        answered.map_err(|refusal| match refusal {
            Refusal::Rcode(3) => DnsError::Rcode { name: name.to_owned(), rcode: "NXDOMAIN" },
            Refusal::Rcode(_) => DnsError::Rcode { name: name.to_owned(), rcode: "an error" },
            Refusal::Truncated => failed(name, "truncated response over TCP"),
            Refusal::Other(why) => failed(name, why),
        })
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

    /// A response to `q`: its header with `flags` and one answer, its question, then
    /// one TXT answer pointing back at the question name.
    fn response(q: &[u8], flags: [u8; 2], txt: &[u8]) -> Vec<u8> {
        let mut r = q[..12].to_vec();
        r[2..4].copy_from_slice(&flags);
        r[7] = 1;
        r[11] = 0;
        r.extend_from_slice(question(q));
        r.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, txt.len() as u8 + 1]);
        r.push(txt.len() as u8);
        r.extend_from_slice(txt);
        r
    }

    #[test]
    fn queries_and_answers_round_trip() {
        let q = query(0x1234, "_acme-challenge.svc.example.", TXT, true).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[10..12], &[0, 1], "one additional record: EDNS0's OPT");
        assert_eq!(&q[q.len() - 11..q.len() - 6], &[0, 0, 41, 0x10, 0], "OPT, 4096 bytes");
        assert!(query(1, "a..b", A, true).is_err());
        let r = response(&q, [0x81, 0x80], b"hello");
        let a = answers(&r, &q, TXT).unwrap();
        assert_eq!(a.iter().map(|d| txt_value(d)).collect::<Vec<_>>(), vec!["hello"]);
        let other = query(0x9999, "_acme-challenge.svc.example.", TXT, true).unwrap();
        assert!(answers(&r, &other, TXT).is_err(), "another query's id");
        let elsewhere = query(0x1234, "_acme-challenge.evil.example.", TXT, true).unwrap();
        assert!(answers(&r, &elsewhere, TXT).is_err(), "another question");
        assert!(answers(&r[..r.len() - 2], &q, TXT).is_err(), "cut short");
        let nx = response(&q, [0x81, 0x83], b"");
        assert_eq!(answers(&nx, &q, TXT).unwrap_err(), Refusal::Rcode(3));
        let cut = response(&q, [0x83, 0x80], b"");
        assert_eq!(answers(&cut, &q, TXT).unwrap_err(), Refusal::Truncated);
        // FORMERR without the question: the server's error, not a mismatch.
        let formerr = [&q[..2], &[0x81, 0x81], &[0; 8]].concat();
        assert_eq!(answers(&formerr, &q, TXT).unwrap_err(), Refusal::Rcode(1));
        let plain = query(0x1234, "_acme-challenge.svc.example.", TXT, false).unwrap();
        assert_eq!(question(&plain), question(&q));
        assert_eq!(answers(&response(&plain, [0x81, 0x80], b"hi"), &plain, TXT).unwrap().len(), 1);
    }

    /// Answers count only for the question's name and the names its CNAMEs lead to.
    #[test]
    fn answers_for_other_names_are_ignored() {
        let q = query(7, "_acme-challenge.A.test", TXT, true).unwrap();
        // Record: an owner name (uncompressed), type, class IN, TTL, RDATA.
        let record = |owner: &str, rtype: u16, data: &[u8]| {
            let mut r = query(0, owner, 0, false).unwrap()[12..].to_vec();
            r.truncate(r.len() - 4);
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(data);
            r
        };
        let name = |n: &str| {
            let q = query(0, n, 0, false).unwrap();
            q[12..q.len() - 4].to_vec()
        };
        let txt = |t: &str| [&[t.len() as u8][..], t.as_bytes()].concat();
        let records = [
            record("elsewhere.test", TXT, &txt("wrong")),
            // Compressed: a pointer to the question's name.
            [&[0xC0, 12][..], &record("x", CNAME, &name("alias.test"))[3..]].concat(),
            record("ALIAS.test", CNAME, &name("final.test")),
            record("final.test", TXT, &txt("right")),
            record("_acme-challenge.a.test", A, &[127, 0, 0, 1]),
        ];
        let mut r = q[..12].to_vec();
        r[2..4].copy_from_slice(&[0x81, 0x80]);
        r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        r[11] = 0;
        r.extend_from_slice(question(&q));
        r.extend_from_slice(&records.concat());
        let found: Vec<String> =
            answers(&r, &q, TXT).unwrap().iter().map(|d| txt_value(d)).collect();
        assert_eq!(found, ["right"]);
        // A pointer loop is malformed, not a hang.
        let mut looped = r[..12 + question(&q).len()].to_vec();
        looped[6..8].copy_from_slice(&[0, 1]);
        let at = looped.len() as u8;
        looped.extend_from_slice(&[0xC0, at, 0, 16, 0, 1, 0, 0, 0, 60, 0, 0]);
        assert!(answers(&looped, &q, TXT).is_err());
    }

    /// A truncated UDP answer is asked again over TCP.
    #[tokio::test]
    async fn truncated_answers_are_asked_again_over_tcp() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).await.unwrap();
            udp.send_to(&response(&buf[..n], [0x83, 0x80], b""), from).await.unwrap();
            let (mut conn, _) = tcp.accept().await.unwrap();
            let mut len = [0u8; 2];
            conn.read_exact(&mut len).await.unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            conn.read_exact(&mut q).await.unwrap();
            let long = vec![b'x'; 200];
            let r = response(&q, [0x81, 0x80], &long);
            conn.write_all(&(r.len() as u16).to_be_bytes()).await.unwrap();
            conn.write_all(&r).await.unwrap();
        });
        let found = Resolver::new(Some(addr)).txt("_acme-challenge.svc.example").await.unwrap();
        assert_eq!(found, vec!["x".repeat(200)]);
    }
}
