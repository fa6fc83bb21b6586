//! CRLs (RFC 5280 §5), written here and signed in the HSM: complete CRLs, which name their
//! delta CRL in a Freshest CRL extension when `[ca] url` is set, and delta CRLs (§5.2.4):
//! what an authority revoked since a base CRL number, so that relying parties holding a
//! complete CRL numbered at or after the base need only the (small) delta to be current.
//! CRLs are numbered by the millisecond they are built (or one more than the issuer's last
//! number, which the store keeps), so the base is a point in time: a delta whose base is B
//! lists every revocation since B, and completes any complete CRL built at or after B.
//! (rcgen writes neither a Delta CRL Indicator nor a Freshest CRL.)

use time::{Duration, OffsetDateTime};

use super::{Authority, CaError, RevokedEntry};
use crate::der::{bit_string, integer, sequence, tlv};

/// id-ce-authorityKeyIdentifier, id-ce-cRLNumber, id-ce-deltaCRLIndicator, id-ce-cRLReasons.
const AUTHORITY_KEY_ID: &[u8] = &[0x06, 0x03, 0x55, 0x1D, 0x23];
const CRL_NUMBER: &[u8] = &[0x06, 0x03, 0x55, 0x1D, 0x14];
const DELTA_CRL_INDICATOR: &[u8] = &[0x06, 0x03, 0x55, 0x1D, 0x1B];
const REASON_CODE: &[u8] = &[0x06, 0x03, 0x55, 0x1D, 0x15];
/// id-ce-freshestCRL.
const FRESHEST_CRL: &[u8] = &[0x06, 0x03, 0x55, 0x1D, 0x2E];

impl Authority {
    /// A complete CRL numbered `number` listing `revoked`, valid for `valid_for`, signed in
    /// the HSM; DER and PEM.
    pub(crate) fn crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        valid_for: Duration,
    ) -> Result<(Vec<u8>, String), CaError> {
        self.build_crl(revoked, number, None, valid_for)
    }

    /// A delta CRL numbered `number` listing `revoked` (the revocations since the base CRL
    /// number `base`), valid for `valid_for`, signed in the HSM; DER and PEM.
    pub(crate) fn delta_crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        base: u64,
        valid_for: Duration,
    ) -> Result<(Vec<u8>, String), CaError> {
        self.build_crl(revoked, number, Some(base), valid_for)
    }

    fn build_crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        delta_base: Option<u64>,
        valid_for: Duration,
    ) -> Result<(Vec<u8>, String), CaError> {
        let now = OffsetDateTime::now_utc();
        let algorithm = self.signer.key_type().signature_algorithm();
        let entries: Vec<Vec<u8>> = revoked.iter().map(entry).collect();
        let mut extensions = Vec::new();
        if let Some(key_id) = &self.key_id {
            // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
            let aki = sequence(&[&tlv(0x80, key_id)]);
            extensions.push(sequence(&[AUTHORITY_KEY_ID, &tlv(0x04, &aki)]));
        }
        extensions.push(sequence(&[CRL_NUMBER, &tlv(0x04, &integer(&number.to_be_bytes()))]));
        match (delta_base, &self.base_url) {
            (Some(base), _) => {
                let critical: &[u8] = &[0x01, 0x01, 0xFF];
                let indicator = tlv(0x04, &integer(&base.to_be_bytes()));
                extensions.push(sequence(&[DELTA_CRL_INDICATOR, critical, &indicator]));
            }
            (None, Some(url)) => {
                // CRLDistributionPoints syntax: one point whose fullName is the URI.
                let uri = format!("{url}/v1/pki/issuer/{}/crl/delta", self.id);
                let point = sequence(&[&tlv(0xA0, &tlv(0xA0, &tlv(0x86, uri.as_bytes())))]);
                extensions.push(sequence(&[FRESHEST_CRL, &tlv(0x04, &sequence(&[&point]))]));
            }
            (None, None) => {}
        }
        let extensions =
            tlv(0xA0, &sequence(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>()));
        let mut tbs: Vec<&[u8]> = Vec::new();
        let version = integer(&[1]);
        let (this_update, next_update) = (time(now), time(now + valid_for));
        tbs.extend([&version[..], algorithm, &self.subject_der, &this_update, &next_update]);
        let list = sequence(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        if !entries.is_empty() {
            tbs.push(&list);
        }
        tbs.push(&extensions);
        let tbs = sequence(&tbs);
        let signature = self.signer.sign(&tbs)?;
        let der = sequence(&[&tbs, algorithm, &bit_string(&signature)]);
        let pem = pem_block("X509 CRL", &der);
        Ok((der, pem))
    }
}

/// One revokedCertificates entry: serial, date, and the reason when it is not unspecified.
fn entry(r: &RevokedEntry) -> Vec<u8> {
    let serial = integer(&r.serial);
    let date = time(r.revoked_at);
    // Unspecified (0) is left out; removeFromCRL (8) belongs to unholding, not done here.
    if !matches!(r.reason, 1..=6 | 9 | 10) {
        return sequence(&[&serial, &date]);
    }
    let reason = sequence(&[REASON_CODE, &tlv(0x04, &tlv(0x0A, &[r.reason]))]);
    sequence(&[&serial, &date, &sequence(&[&reason])])
}

/// UTCTime through 2049, GeneralizedTime after (RFC 5280 §5.1.2.4).
fn time(t: OffsetDateTime) -> Vec<u8> {
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(0x17, text.as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes())
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(time(t(1_764_547_200)), tlv(0x17, b"251201000000Z"));
        assert_eq!(time(t(2_524_608_000)), tlv(0x18, b"20500101000000Z"));
    }
}
