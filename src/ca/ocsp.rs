//! OCSP (RFC 6960): requests are read with a small DER reader, responses built and signed
//! by the CA key in the HSM (the CA is its own responder, §2.6). Certificates the store
//! knows are good or revoked; others, and requests naming another issuer, are unknown.

use aws_lc_rs::digest;

use super::{Authority, CaError};
use crate::der::{bit_string, peek_tag, read_tlv, sequence, tlv};

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const OCSP_BASIC: &[u8] = &[0x06, 0x09, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2), contents only.
const OCSP_NONCE: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// SHA-1 (1.3.14.3.2.26) and SHA-256 (2.16.840.1.101.3.4.2.1) OIDs, contents only.
const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// Requests naming more certificates than this are refused.
const MAX_CERTS: usize = 64;
/// How long a response may be cached.
const VALIDITY_SECS: i64 = 3600;

/// Response statuses (§4.2.1).
pub(crate) const MALFORMED_REQUEST: u8 = 1;
pub(crate) const INTERNAL_ERROR: u8 = 2;
/// OCSPResponseStatus unauthorized: not a responder for the certificates asked about.
pub(crate) const UNAUTHORIZED: u8 = 6;

/// One certificate asked about: the CertID as sent (echoed back), and what it names.
pub(crate) struct Query {
    raw_cert_id: Vec<u8>,
    hash_oid: Vec<u8>,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    /// Serial number as lower-case hex without leading zero bytes.
    pub(crate) serial: String,
}

/// A parsed request: the certificates and the nonce extension, if any (echoed back).
pub(crate) struct Request {
    pub(crate) queries: Vec<Query>,
    nonce: Option<Vec<u8>>,
}

/// A certificate's status as the store knows it.
pub(crate) enum Status {
    Good,
    /// Revoked at (Unix seconds), with an RFC 5280 reason code.
    Revoked(i64, u8),
    Unknown,
}

/// Parses an OCSPRequest (§4.1.1); `None` if it is malformed. Signed requests are accepted
/// and their signature ignored (the responder serves anyone).
pub(crate) fn parse(der: &[u8]) -> Option<Request> {
    let (request, rest) = read_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (mut tbs, _signature) = read_tlv(request, 0x30)?;
    // [0] version, [1] requestorName: skipped.
    for tag in [0xA0, 0xA1] {
        if peek_tag(tbs) == Some(tag) {
            tbs = read_tlv(tbs, tag)?.1;
        }
    }
    let (mut list, rest) = read_tlv(tbs, 0x30)?;
    let mut queries = Vec::new();
    while !list.is_empty() {
        let (single, next) = read_tlv(list, 0x30)?;
        list = next;
        let (cert_id, after) = read_tlv(single, 0x30)?;
        let raw_len = single.len() - after.len();
        let (alg, r) = read_tlv(cert_id, 0x30)?;
        let (hash_oid, _) = read_tlv(alg, 0x06)?;
        let (name_hash, r) = read_tlv(r, 0x04)?;
        let (key_hash, r) = read_tlv(r, 0x04)?;
        let (serial, _) = read_tlv(r, 0x02)?;
        let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
        queries.push(Query {
            raw_cert_id: single[..raw_len].to_vec(),
            hash_oid: hash_oid.to_vec(),
            name_hash: name_hash.to_vec(),
            key_hash: key_hash.to_vec(),
            serial: hex::encode(&serial[first..]),
        });
        if queries.len() > MAX_CERTS {
            return None;
        }
    }
    if queries.is_empty() {
        return None;
    }
    // [2] requestExtensions: keep the nonce extension to echo it.
    let mut nonce = None;
    if peek_tag(rest) == Some(0xA2) {
        let (exts, _) = read_tlv(rest, 0xA2)?;
        let (mut exts, _) = read_tlv(exts, 0x30)?;
        while !exts.is_empty() {
            let (ext, next) = read_tlv(exts, 0x30)?;
            let (oid, mut rest) = read_tlv(ext, 0x06)?;
            if oid == OCSP_NONCE {
                if peek_tag(rest) == Some(0x01) {
                    rest = read_tlv(rest, 0x01)?.1; // critical
                }
                let (value, end) = read_tlv(rest, 0x04)?;
                if !end.is_empty() {
                    return None;
                }
                // RFC 9654 §2.1: an OCTET STRING of 1 to 128 octets, which a responder
                // rejects otherwise; echoed as this server encodes it. A value not so
                // wrapped (older clients) is left unanswered rather than refused.
                if let Some((octets, [])) = read_tlv(value, 0x04) {
                    if !(1..=128).contains(&octets.len()) {
                        return None;
                    }
                    let value = tlv(0x04, &tlv(0x04, octets));
                    nonce = Some(sequence(&[&tlv(0x06, OCSP_NONCE), &value]));
                }
            }
            exts = next;
        }
    }
    Some(Request { queries, nonce })
}

/// An unsuccessful OCSPResponse: just the status.
pub(crate) fn error_response(status: u8) -> Vec<u8> {
    sequence(&[&tlv(0x0A, &[status])])
}

fn generalized_time(unix: i64) -> Vec<u8> {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, text.as_bytes())
}

impl Authority {
    /// Whether `q` names this authority as the issuer (hashes of its name and key).
    pub(crate) fn issued(&self, q: &Query) -> bool {
        let algorithm = match q.hash_oid.as_slice() {
            SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            SHA256 => &digest::SHA256,
            _ => return false,
        };
        let name = digest::digest(algorithm, &self.subject_der);
        let key = digest::digest(algorithm, &self.public_key_bits);
        name.as_ref() == q.name_hash.as_slice() && key.as_ref() == q.key_hash.as_slice()
    }

    /// A signed successful OCSPResponse with one SingleResponse per query (§4.2.1).
    /// Blocking: it signs in the HSM.
    pub(crate) fn ocsp_response(
        &self,
        request: &Request,
        statuses: &[Status],
        now: i64,
    ) -> Result<Vec<u8>, CaError> {
        let key_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &self.public_key_bits);
        let responder_id = tlv(0xA2, &tlv(0x04, key_hash.as_ref()));
        let mut singles = Vec::new();
        for (q, status) in request.queries.iter().zip(statuses) {
            let cert_status = match status {
                Status::Good => vec![0x80, 0x00],
                Status::Revoked(at, reason) => {
                    let reason = tlv(0xA0, &tlv(0x0A, &[*reason]));
                    tlv(0xA1, &[generalized_time(*at), reason].concat())
                }
                Status::Unknown => vec![0x82, 0x00],
            };
            let next_update = tlv(0xA0, &generalized_time(now + VALIDITY_SECS));
            singles.push(sequence(&[
                &q.raw_cert_id,
                &cert_status,
                &generalized_time(now),
                &next_update,
            ]));
        }
        let singles: Vec<&[u8]> = singles.iter().map(Vec::as_slice).collect();
        let mut data = vec![responder_id, generalized_time(now), sequence(&singles)];
        if let Some(nonce) = &request.nonce {
            data.push(tlv(0xA1, &sequence(&[nonce])));
        }
        let data: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let tbs = sequence(&data);
        let signature = self.signer.sign(&tbs)?;
        let algorithm = self.signer.key_type().signature_algorithm();
        let basic = sequence(&[&tbs, algorithm, &bit_string(&signature)]);
        let bytes = sequence(&[OCSP_BASIC, &tlv(0x04, &basic)]);
        Ok(sequence(&[&tlv(0x0A, &[0]), &tlv(0xA0, &bytes)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as `openssl ocsp` sends it: one CertID (SHA-1) and a nonce.
    fn request(serial: &[u8]) -> Vec<u8> {
        let alg = sequence(&[&tlv(0x06, SHA1), &[0x05, 0x00]]);
        let cert_id = sequence(&[
            &alg,
            &tlv(0x04, &[1; 20]),
            &tlv(0x04, &[2; 20]),
            &crate::der::integer(serial),
        ]);
        let nonce = sequence(&[&tlv(0x06, OCSP_NONCE), &tlv(0x04, &tlv(0x04, &[9; 16]))]);
        let tbs =
            sequence(&[&sequence(&[&sequence(&[&cert_id])]), &tlv(0xA2, &sequence(&[&nonce]))]);
        sequence(&[&tbs])
    }

    #[test]
    fn requests_parse_and_bad_ones_do_not() {
        let der = request(&[0x01, 0xAB]);
        let r = parse(&der).unwrap();
        assert_eq!(r.queries.len(), 1);
        assert_eq!(r.queries[0].serial, "01ab");
        assert_eq!(r.queries[0].hash_oid, SHA1);
        assert!(r.nonce.is_some());
        assert!(parse(&der[..der.len() - 1]).is_none());
        assert!(parse(b"").is_none());
        assert!(parse(&[0x30, 0x00]).is_none());
        assert!(parse(&[&der[..], &[0]].concat()).is_none(), "trailing bytes");
        // RFC 9654: a nonce of 1 to 128 octets.
        let with_nonce = |n: &[u8]| {
            let alg = sequence(&[&tlv(0x06, SHA1), &[0x05, 0x00]]);
            let id = sequence(&[&alg, &tlv(0x04, &[1; 20]), &tlv(0x04, &[2; 20]), &[2, 1, 1]]);
            let ext = sequence(&[&tlv(0x06, OCSP_NONCE), &tlv(0x04, &tlv(0x04, n))]);
            let tbs = sequence(&[&sequence(&[&sequence(&[&id])]), &tlv(0xA2, &sequence(&[&ext]))]);
            parse(&sequence(&[&tbs]))
        };
        assert!(with_nonce(&[7; 128]).is_some());
        assert!(with_nonce(&[7; 129]).is_none());
        assert!(with_nonce(&[]).is_none());
        assert_eq!(error_response(MALFORMED_REQUEST), vec![0x30, 0x03, 0x0A, 0x01, 0x01]);
    }

    /// Requests come from anyone (GET and POST, over plain HTTP too).
    #[test]
    fn mutated_requests_never_panic() {
        let der = request(&[0x01, 0xAB]);
        let parsed = crate::util::mutations(&der, 6960, 50_000).filter_map(|m| parse(&m)).count();
        assert!(parsed > 0, "some mutations still parse (a changed serial, say)");
    }
}
