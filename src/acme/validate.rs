//! Challenge validation: http-01 (RFC 8555 §8.3) fetches the key authorization over plain
//! HTTP from the identifier's addresses on `[acme] http01_port`; dns-01 (§8.4) looks for
//! the key authorization's digest in TXT records at `_acme-challenge.NAME`. Failures come
//! back as problem documents for the challenge's `error`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{problem, Acme, Identifier};

/// Responses larger than this are not key authorizations.
const MAX_RESPONSE: usize = 16 * 1024;
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn http01(
    acme: &Acme,
    identifier: &Identifier,
    token: &str,
    expected: &str,
) -> Result<(), Value> {
    let ips: Vec<IpAddr> = match identifier.kind.as_str() {
        "ip" => vec![identifier.value.parse().map_err(|_| problem("malformed", "bad IP"))?],
        _ => acme
            .resolver
            .addresses(&identifier.value)
            .await
            .map_err(|e| problem("dns", &e.to_string()))?,
    };
    let host = match ips.first() {
        Some(IpAddr::V6(_)) if identifier.kind == "ip" => format!("[{}]", identifier.value),
        _ => identifier.value.clone(),
    };
    let request = format!(
        "GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {host}\r\n\
         User-Agent: Strongroom-ACME\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let (addr, tcp) = connect(ips, acme.settings.http01_port).await?;
    match tokio::time::timeout(TIMEOUT, fetch(tcp, &request)).await {
        Ok(Ok((200, body))) => {
            let got = String::from_utf8_lossy(&body);
            // RFC 8555 §8.3: trailing whitespace is allowed.
            if got.trim_end() == expected {
                return Ok(());
            }
            Err(problem(
                "incorrectResponse",
                &format!("{addr} answered with another key authorization"),
            ))
        }
        Ok(Ok((status, _))) => {
            Err(problem("incorrectResponse", &format!("{addr} answered HTTP {status}")))
        }
        Ok(Err(e)) => Err(problem("connection", &format!("{addr}: {e}"))),
        Err(_) => Err(problem("connection", &format!("{addr}: timed out"))),
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

/// One HTTP/1.1 GET: the status and the body (Content-Length or until close).
async fn fetch(mut tcp: TcpStream, request: &str) -> std::io::Result<(u16, Vec<u8>)> {
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(std::io::Error::other("response too large"));
        }
    }
    let bad = || std::io::Error::other("malformed HTTP response");
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = buf[end + 4..].to_vec();
    Ok((status, if chunked { dechunk(&body).ok_or_else(bad)? } else { body }))
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
    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(super::dechunk(b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n").unwrap(), b"hello!");
        assert!(super::dechunk(b"5\r\nhel").is_none());
    }
}
