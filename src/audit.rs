//! Tamper evidence for the audit trail: records form a hash chain (written by the store's
//! writer), and the chain head is sealed every minute with an ECDSA signature by an HSM key
//! (`strongroom-audit`). `strongroom audit verify` recomputes the chain, checks every seal
//! and names the first record that does not match; `strongroom audit export` writes JSON
//! lines for a SIEM.

use std::time::Duration;

use tokio::sync::watch;

use crate::hsm::{Hsm, HsmError, HsmSigner};
use crate::store::{audit_hash, SealRow, Store, StoreError, GENESIS};

/// HSM label of the key that seals the audit chain.
const AUDIT_KEY_LABEL: &str = "strongroom-audit";
/// How often the chain head is sealed.
const SEAL_EVERY: Duration = Duration::from_secs(60);
/// Records read at a time while verifying or exporting.
const PAGE: i64 = 5000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The message a seal signs: the sequence number (8 bytes, big-endian) and the hash.
fn seal_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    [&seq.to_be_bytes()[..], hash].concat()
}

async fn signer(hsm: &Hsm) -> Result<HsmSigner, AuditError> {
    let h = hsm.clone();
    Ok(tokio::task::spawn_blocking(move || -> Result<HsmSigner, HsmError> {
        let key = h.with_session(|s| {
            h.ensure_signing_key(
                s,
                AUDIT_KEY_LABEL,
                crate::hsm::SigningKeyType::Ec(crate::hsm::Curve::P256),
            )
        })?;
        Ok(HsmSigner::new(h, key))
    })
    .await??)
}

/// Seals the current chain head if it moved since the last seal; returns the sealed seq.
pub(crate) async fn seal(store: &Store, hsm: &Hsm) -> Result<Option<i64>, AuditError> {
    store.flush().await;
    let (seq, hash) = store.audit_head().await?;
    let Some(hash) = hash else { return Ok(None) };
    if store.audit_seals().await?.last().is_some_and(|s| s.seq >= seq) {
        return Ok(None);
    }
    let signer = signer(hsm).await?;
    let message = seal_message(seq, &hash);
    let signature = tokio::task::spawn_blocking(move || signer.sign(&message)).await??;
    let seal = SealRow { seq, hash, signature, sealed_at: crate::util::now() };
    store.insert_audit_seal(&seal).await?;
    Ok(Some(seq))
}

/// Seals the chain every minute, and once more when the service stops.
pub(crate) async fn run_sealer(store: Store, hsm: Hsm, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(SEAL_EVERY) => false,
            _ = stop.changed() => true,
        };
        // Every replica seals its last records when it stops; a seal of a head another
        // replica sealed already is stored once.
        if !stopping && !store.is_leader() {
            continue;
        }
        if let Err(e) = seal(&store, &hsm).await {
            tracing::error!(error = %e, "sealing the audit chain failed");
        }
        if stopping {
            return;
        }
    }
}

/// What verification found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) records: u64,
    pub(crate) before_chain: u64,
    pub(crate) seals: u64,
    /// Records after the last good seal: written since, or left bare by removed seals.
    pub(crate) unsealed: u64,
    /// Problems in order; the first names the first tampered record.
    pub(crate) problems: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records ({} before the chain began), {} seals checked",
            self.records, self.before_chain, self.seals
        )?;
        if self.unsealed > 0 {
            // The server seals every minute and when it stops: unsealed records older
            // than that point to seals that were removed.
            write!(f, "; {} records are covered by no seal", self.unsealed)?;
        }
        if self.problems.is_empty() {
            write!(f, "; the chain is intact")
        } else {
            for p in &self.problems {
                write!(f, "\nTAMPERED: {p}")?;
            }
            Ok(())
        }
    }
}

/// Recomputes the chain, compares it with the head, checks every seal's signature and
/// hash, and counts the records no seal covers.
pub(crate) async fn verify(store: &Store, hsm: &Hsm) -> Result<Report, AuditError> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    store.flush().await;
    let mut report = Report::default();
    // Seals whose signature holds, by the record they seal.
    let mut seals = std::collections::BTreeMap::new();
    let all_seals = store.audit_seals().await?;
    if !all_seals.is_empty() {
        let key = signer(hsm).await?;
        let public = rcgen::PublicKeyData::der_bytes(&key).to_vec();
        for seal in all_seals {
            report.seals += 1;
            let signed = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public)
                .verify(&seal_message(seal.seq, &seal.hash), &seal.signature)
                .is_ok();
            match signed {
                true => {
                    seals.insert(seal.seq, seal);
                }
                false => report
                    .problems
                    .push(format!("the seal at record {} has a bad signature", seal.seq)),
            }
        }
    }
    let mut prev: Option<Vec<u8>> = None;
    let mut last_seq = 0;
    let mut after = 0;
    loop {
        let page = store.audit_events(after, None, None, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            report.records += 1;
            report.unsealed += 1;
            match (&row.hash, &prev) {
                (None, None) => report.before_chain += 1,
                (None, Some(_)) => {
                    report.problems.push(format!("record {} has no chain hash", row.seq))
                }
                (Some(stored), _) => {
                    let start = prev.clone().unwrap_or_else(|| GENESIS.to_vec());
                    let expected = audit_hash(&start, row.seq, row.at, row.chain_fields());
                    if &expected != stored && report.problems.is_empty() {
                        report.problems.push(format!(
                            "record {} does not match the chain (it was changed, or a record \
                             before it was removed or inserted)",
                            row.seq
                        ));
                    }
                    prev = Some(stored.clone());
                    last_seq = row.seq;
                }
            }
            if let Some(seal) = seals.remove(&row.seq) {
                if row.hash.as_ref() == Some(&seal.hash) {
                    report.unsealed = 0;
                } else {
                    report.problems.push(format!(
                        "records up to {} no longer match the seal made at {}",
                        seal.seq,
                        crate::util::rfc3339(seal.sealed_at)
                    ));
                }
            }
        }
    }
    // A seal of a record that is gone.
    for seal in seals.values() {
        report.problems.push(format!(
            "records up to {} no longer match the seal made at {}",
            seal.seq,
            crate::util::rfc3339(seal.sealed_at)
        ));
    }
    let (head_seq, head_hash) = store.audit_head().await?;
    if head_hash.is_some() && (head_seq != last_seq || head_hash != prev) {
        report.problems.push(format!(
            "the chain head names record {head_seq}, the last chained record is {last_seq}: \
             records were removed from the end"
        ));
    }
    Ok(report)
}

/// Writes every record after `after` as one JSON object per line.
pub(crate) async fn export(
    store: &Store,
    after: i64,
    out: &mut impl std::io::Write,
) -> Result<u64, AuditError> {
    store.flush().await;
    let mut after = after;
    let mut n = 0;
    loop {
        let page = store.audit_events(after, None, None, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            serde_json::to_writer(&mut *out, row).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}
