//! Challenge validation: http-01 (RFC 8555 §8.3) fetches the key authorization over plain
//! HTTP from the identifier's addresses on `[acme] http01_port`, following redirects as
//! Let's Encrypt does; dns-01 (§8.4) looks for the key authorization's digest in TXT
//! records at `_acme-challenge.NAME`. Failures come back as problem documents for the
//! challenge's `error`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{problem, Acme, Identifier};

/// Responses larger than this are not key authorizations.
const MAX_RESPONSE: usize = 16 * 1024;
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed from the challenge URL (RFC 8555 §8.3 lets the server follow them;
/// web servers that send all plain HTTP to HTTPS are common, and Let's Encrypt follows 10).
const MAX_REDIRECTS: usize = 10;

/// Where one http-01 request goes. Redirects may lead only to the ports a CA reaches web
/// servers on: `[acme] http01_port` for `http` and `[acme] tls_alpn01_port` for `https`
/// (80 and 443 unless configured otherwise).
#[derive(Clone, Debug, PartialEq)]
struct Target {
    https: bool,
    host: Identifier,
    port: u16,
    /// The path and query, starting with `/`.
    path: String,
}

impl Target {
    /// `host[:port]` as a Host header and URL authority: the port only where it is not
    /// the scheme's default.
    fn authority(&self) -> String {
        let host = match self.host.value.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.value.clone(),
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The target of a redirect's `Location` (absolute, scheme-relative or relative;
    /// RFC 9110 §10.2.2), or why it cannot be followed.
    fn follow(&self, location: &str, http_port: u16, https_port: u16) -> Result<Target, String> {
        let refuse = |why: &str| Err(format!("redirect to {location:?}: {why}"));
        let location = location.trim();
        if location.is_empty() || location.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return refuse("not a URL of printable ASCII");
        }
        let location = location.split('#').next().unwrap_or_default();
        let lower = location.to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("http://") {
            (false, &location[7..])
        } else if lower.starts_with("https://") {
            (true, &location[8..])
        } else if let Some(rest) = location.strip_prefix("//") {
            (self.https, rest)
        } else if location.starts_with('/') {
            return Ok(Target { path: location.to_owned(), ..self.clone() });
        } else if location.split(['/', '?']).next().is_some_and(|first| first.contains(':')) {
            return refuse("only http and https URLs are followed");
        } else {
            // Relative to the current path's directory.
            let current = self.path.split('?').next().unwrap_or("/");
            let dir = &current[..current.rfind('/').map_or(0, |i| i + 1)];
            let path = if location.starts_with('?') {
                format!("{current}{location}")
            } else {
                format!("{dir}{location}")
            };
            return Ok(Target { path, ..self.clone() });
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if authority.contains('@') {
            return refuse("URLs with user information are not followed");
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let Some((v6, after)) = bracketed.split_once(']') else {
                    return refuse("unclosed IPv6 address");
                };
                let Ok(v6) = v6.parse::<std::net::Ipv6Addr>() else {
                    return refuse("not an IPv6 address in brackets");
                };
                (v6.to_string(), after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (authority.to_owned(), None),
            },
        };
        let allowed = if https { https_port } else { http_port };
        let port = match port {
            None => allowed,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p == allowed => p,
                _ => {
                    let scheme = if https { "https" } else { "http" };
                    return refuse(&format!("{scheme} redirects may go to port {allowed} only"));
                }
            },
        };
        let kind = if host.parse::<IpAddr>().is_ok() { "ip" } else { "dns" };
        let host = Identifier { kind: kind.into(), value: host };
        let host = match host.checked() {
            Ok(h) if !h.is_wildcard() => h,
            _ => return refuse("not a host name or IP address"),
        };
        Ok(Target { https, host, port, path })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// An HTTP response as far as http-01 needs it.
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
    /// Whether its Content-Length says the body is all here.
    complete: bool,
}

pub(super) async fn http01(
    acme: &Acme,
    identifier: &Identifier,
    token: &str,
    expected: &str,
) -> Result<(), Value> {
    let settings = &acme.settings;
    let mut target = Target {
        https: false,
        host: identifier.clone(),
        port: settings.http01_port,
        path: format!("/.well-known/acme-challenge/{token}"),
    };
    // How far inside the network the identifier's own address is: redirects go no
    // further in.
    let mut depth = None;
    for hop in 0..=MAX_REDIRECTS {
        let (addr, response) = get(acme, &target, depth).await?;
        depth.get_or_insert(inwardness(addr.ip()));
        let at = if hop == 0 { addr.to_string() } else { format!("{target} ({addr})") };
        match response.status {
            200 => {
                // RFC 8555 §8.3: trailing whitespace is allowed.
                if String::from_utf8_lossy(&response.body).trim_end() == expected {
                    return Ok(());
                }
                let why = format!("{at} answered with another key authorization");
                return Err(problem("incorrectResponse", &why));
            }
            301 | 302 | 303 | 307 | 308 => {
                let Some(location) = response.location else {
                    let why = format!("{at} answered HTTP {} without a Location", response.status);
                    return Err(problem("incorrectResponse", &why));
                };
                target = target
                    .follow(&location, settings.http01_port, settings.tls_alpn01_port)
                    .map_err(|why| problem("connection", &format!("{at}: {why}")))?;
            }
            status => {
                return Err(problem("incorrectResponse", &format!("{at} answered HTTP {status}")));
            }
        }
    }
    let why = format!("more than {MAX_REDIRECTS} redirects, the last to {target}");
    Err(problem("connection", &why))
}

/// How far inside a network an address is: 0 public, 1 private (RFC 1918, shared
/// address space, unique local), 2 this host or link (loopback, link-local such as cloud
/// metadata services, unspecified, multicast, broadcast).
fn inwardness(ip: IpAddr) -> u8 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
            {
                2
            } else if v4.is_private() || (a == 100 && b & 0xC0 == 64) {
                1
            } else {
                0
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || first & 0xFFC0 == 0xFE80
            {
                2
            } else if first & 0xFE00 == 0xFC00 {
                1
            } else {
                0
            }
        }
    }
}

/// One GET of `target`: the address that answered and its response. After a redirect,
/// `depth` is the identifier's address's [`inwardness`]: a challenge for a public name
/// must not make the CA fetch from its own private network, host or metadata service.
async fn get(
    acme: &Acme,
    target: &Target,
    depth: Option<u8>,
) -> Result<(SocketAddr, Response), Value> {
    let mut ips: Vec<IpAddr> = match target.host.value.parse() {
        Ok(ip) => vec![ip],
        Err(_) => acme
            .resolver
            .addresses(&target.host.value)
            .await
            .map_err(|e| problem("dns", &e.to_string()))?,
    };
    if let Some(depth) = depth {
        ips.retain(|ip| inwardness(*ip) <= depth);
        if ips.is_empty() {
            let why = format!("redirect to {target}: its addresses are further inside the network than the identifier's");
            return Err(problem("connection", &why));
        }
    }
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\
         User-Agent: Strongroom-ACME\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path,
        target.authority()
    );
    let (addr, tcp) = connect(ips, target.port).await?;
    let fetched = async {
        if !target.https {
            return fetch(tcp, &request).await;
        }
        // The certificate is not checked, as Let's Encrypt does not: the key authorization
        // proves control, and a site moving to HTTPS may not have its certificate yet.
        let config = super::tls_alpn::client_config(b"http/1.1").map_err(std::io::Error::other)?;
        let name = match target.host.value.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => {
                ServerName::try_from(target.host.value.clone()).map_err(std::io::Error::other)?
            }
        };
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
        fetch(tls, &request).await
    };
    match tokio::time::timeout(TIMEOUT, fetched).await {
        Ok(Ok(response)) => Ok((addr, response)),
        Ok(Err(e)) => Err(problem("connection", &format!("{target} ({addr}): {e}"))),
        Err(_) => Err(problem("connection", &format!("{target} ({addr}): timed out"))),
    }
}

/// A connection to the first of `ips` that takes one on `port`. Only an address that
/// cannot be reached is passed over: the first that answers speaks for the name, so that
/// a second address (a stale record, another tenant's) cannot win a challenge the name's
/// own server failed.
pub(super) async fn connect(ips: Vec<IpAddr>, port: u16) -> Result<(SocketAddr, TcpStream), Value> {
    let mut last = problem("connection", "no address to connect to");
    for ip in ips {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok((addr, tcp)),
            Ok(Err(e)) => last = problem("connection", &format!("{addr}: {e}")),
            Err(_) => last = problem("connection", &format!("{addr}: timed out")),
        }
    }
    Err(last)
}

/// One HTTP/1.1 exchange: the request out, the response's status, Location and body
/// (Content-Length, chunked, or until close) back.
async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> std::io::Result<Response> {
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS server that closes without close_notify (many do after `Connection:
            // close`): what arrived is checked against Content-Length below.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(std::io::Error::other("response too large"));
        }
        // A server that keeps the connection open despite `Connection: close` has said
        // all once its Content-Length has arrived.
        if parse_response(&buf).is_some_and(|r| r.complete) {
            break;
        }
    }
    parse_response(&buf).ok_or_else(|| std::io::Error::other("malformed HTTP response"))
}

fn parse_response(buf: &[u8]) -> Option<Response> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let (mut location, mut length, mut chunked) = (None, None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "location" => location = Some(value.to_owned()),
            "content-length" => length = Some(value.parse::<usize>().ok()?),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = &buf[end + 4..];
    let complete = !chunked && length.is_some_and(|n| body.len() >= n);
    let body = match (chunked, length) {
        (true, _) => dechunk(body)?,
        (false, Some(n)) => body.get(..n)?.to_vec(),
        (false, None) => body.to_vec(),
    };
    Some(Response { status, location, body, complete })
}

/// Decodes a chunked body (RFC 9112 §7.1), ignoring extensions and trailers.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

pub(super) async fn dns01(
    acme: &Acme,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Value> {
    if identifier.kind != "dns" {
        return Err(problem("malformed", "dns-01 proves DNS names only"));
    }
    let base = identifier.value.trim_start_matches("*.");
    let name = format!("_acme-challenge.{base}");
    let want = super::jws::encode(&Sha256::digest(key_authorization.as_bytes()));
    let found = acme.resolver.txt(&name).await.map_err(|e| problem("dns", &e.to_string()))?;
    if found.iter().any(|v| v.trim() == want) {
        Ok(())
    } else {
        Err(problem(
            "incorrectResponse",
            &format!(
                "no TXT record at {name} holds this challenge's digest ({} found)",
                found.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(https: bool, host: &str, port: u16, path: &str) -> Target {
        let kind = if host.parse::<IpAddr>().is_ok() { "ip" } else { "dns" };
        let host = Identifier { kind: kind.into(), value: host.into() };
        Target { https, host, port, path: path.into() }
    }

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let here = target(false, "a.test", 80, "/.well-known/acme-challenge/T?x=1");
        let follow = |location: &str| here.follow(location, 80, 443);
        let cases = [
            ("https://A.test/x/T", target(true, "a.test", 443, "/x/T")),
            ("https://a.test:443?q", target(true, "a.test", 443, "/?q")),
            ("http://b.test", target(false, "b.test", 80, "/")),
            ("//b.test/y#frag", target(false, "b.test", 80, "/y")),
            ("/moved/T", target(false, "a.test", 80, "/moved/T")),
            ("other", target(false, "a.test", 80, "/.well-known/acme-challenge/other")),
            ("?y=2", target(false, "a.test", 80, "/.well-known/acme-challenge/T?y=2")),
            ("https://[::1]/z", target(true, "::1", 443, "/z")),
            ("http://192.0.2.7:80/z", target(false, "192.0.2.7", 80, "/z")),
        ];
        for (location, want) in cases {
            assert_eq!(follow(location).unwrap(), want, "{location}");
        }
        assert_eq!(target(true, "::1", 443, "/z").to_string(), "https://[::1]/z");
        assert_eq!(target(false, "a.test", 5002, "/z").to_string(), "http://a.test:5002/z");
        for bad in [
            "ftp://a.test/T",
            "javascript:alert(1)",
            "http://a.test:8080/T",
            "https://a.test:80/T",
            "http://user@a.test/T",
            "http://*.a.test/T",
            "http://bad_name.test/T",
            "http://127.1/T",
            "http://[::1/T",
            "http://a.test/T x",
            "",
        ] {
            assert!(follow(bad).is_err(), "{bad}");
        }
        // Ports other than the defaults, where configured.
        assert_eq!(here.follow("https://a.test/T", 5002, 5001).unwrap().port, 5001);
        assert!(here.follow("https://a.test:443/T", 5002, 5001).is_err());
    }

    #[test]
    fn redirects_go_no_further_in_than_the_identifier() {
        let depth = |ip: &str| inwardness(ip.parse().unwrap());
        for (ip, want) in [
            ("203.0.113.9", 0),
            ("2001:db8::1", 0),
            ("10.1.2.3", 1),
            ("172.16.0.1", 1),
            ("192.168.1.1", 1),
            ("100.64.0.1", 1),
            ("fd00::1", 1),
            ("127.0.0.1", 2),
            ("169.254.169.254", 2),
            ("::ffff:169.254.169.254", 2),
            ("0.0.0.0", 2),
            ("::1", 2),
            ("fe80::1", 2),
            ("224.0.0.1", 2),
        ] {
            assert_eq!(depth(ip), want, "{ip}");
        }
    }

    #[test]
    fn responses_parse() {
        let r =
            parse_response(b"HTTP/1.1 301 Moved\r\nlocation:  https://a.test/\r\n\r\n").unwrap();
        assert_eq!((r.status, r.location.as_deref()), (301, Some("https://a.test/")));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(r.body, b"abc");
        assert!(r.complete, "all of its Content-Length is here");
        let r = parse_response(b"HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n").unwrap();
        assert!(!r.complete, "without a Content-Length, the end is the connection's");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_none());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, b"ok");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_none());
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(dechunk(b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n").unwrap(), b"hello!");
        assert!(dechunk(b"5\r\nhel").is_none());
    }
}
