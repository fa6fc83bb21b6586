//! ACME Renewal Information (RFC 9773): certificates are named by their ARI CertID,
//! base64url(Authority Key Identifier) "." base64url(serial number), and the server
//! suggests when to renew: in the last third of the lifetime, or at once after revocation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use super::AcmeError;

/// A certificate named by an ARI CertID.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CertId {
    pub(crate) key_id: Vec<u8>,
    /// The serial number as the store keys it: lower-case hex, no leading zero bytes.
    pub(crate) serial: String,
}

/// Parses `AKI.SERIAL` (RFC 9773 §4.1).
pub(crate) fn parse(text: &str) -> Result<CertId, AcmeError> {
    let bad = || AcmeError::Malformed(format!("{text:?} is not an ARI CertID"));
    let (aki, serial) = text.split_once('.').ok_or_else(bad)?;
    let key_id = B64.decode(aki).map_err(|_| bad())?;
    let serial = B64.decode(serial).map_err(|_| bad())?;
    if key_id.is_empty() || serial.is_empty() || serial.len() > 21 {
        return Err(bad());
    }
    let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    Ok(CertId { key_id, serial: hex::encode(&serial[first..]) })
}

impl CertId {
    /// One spelling per certificate, whichever the client used (its serial with or
    /// without a leading zero byte): the DER integer's content octets.
    pub(crate) fn canonical(&self) -> String {
        let mut serial = hex::decode(&self.serial).unwrap_or_default();
        if serial.first().is_none_or(|b| *b >= 0x80) {
            serial.insert(0, 0);
        }
        format!("{}.{}", B64.encode(&self.key_id), B64.encode(serial))
    }
}

/// The suggested renewal window `(start, end)` in Unix seconds for a certificate valid
/// from `not_before` to `not_after`, revoked at `revoked_at` if so.
pub(crate) fn window(
    not_before: i64,
    not_after: i64,
    revoked_at: Option<i64>,
    now: i64,
) -> (i64, i64) {
    if revoked_at.is_some() {
        return (now - 3600, now);
    }
    let life = (not_after - not_before).max(0);
    (not_before + life * 2 / 3, not_before + life * 5 / 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_ids_have_one_spelling() {
        let plain = parse("AQI.cwE").unwrap();
        let padded = parse("AQI.AHMB").unwrap();
        assert_eq!(plain.canonical(), "AQI.cwE");
        assert_eq!(padded.canonical(), "AQI.cwE");
        // A serial whose first byte has its high bit set keeps its zero byte.
        assert_eq!(parse("AQI.gAE").unwrap().canonical(), "AQI.AIAB");
        assert_eq!(parse("AQI.AIAB").unwrap().canonical(), "AQI.AIAB");
    }

    #[test]
    fn cert_ids_parse() {
        // RFC 9773 §4.1's example.
        let id = parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.serial, "87654321");
        assert_eq!(id.key_id.len(), 20);
        for bad in ["", "abc", ".AIdl", "aYhb.", "a!b.c"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_fall_in_the_last_third() {
        assert_eq!(window(0, 90, None, 10), (60, 75));
        assert_eq!(window(0, 90, Some(5), 10), (10 - 3600, 10));
    }
}
