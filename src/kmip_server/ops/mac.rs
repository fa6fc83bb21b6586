//! MAC and MAC Verify with HMAC (SHA-256/384/512) or AES-CMAC in the HSM. The algorithm
//! comes from the request's Cryptographic Parameters, the key's, or the key's own algorithm
//! (an AES key MACs with CMAC).

use kmip::attributes::{find, names};
use kmip::enums::{usage_mask, BlockCipherMode, CryptographicAlgorithm, ObjectType};
use kmip::ops::mac;
use kmip::Value;

use super::{check_use, key_parameters, OpCtx, Outcome, PartOf};
use crate::hsm::{Hash, MacKind, MacOutcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: mac::Request,
    generating: bool,
) -> Result<Outcome, OpError> {
    let op = if generating { "MAC" } else { "MAC Verify" };
    let part = PartOf::of(req.stream.as_ref())?;
    let id = cx.target(req.unique_identifier)?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    if row.object_type != i64::from(ObjectType::SYMMETRIC_KEY.0) {
        return Err(OpError::Invalid("MAC takes a symmetric key"));
    }
    let bit = if generating { usage_mask::MAC_GENERATE } else { usage_mask::MAC_VERIFY };
    check_use(&row, &stored, cx.now, op, generating, bit)?;
    let own = match find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) => Some(CryptographicAlgorithm(*a)),
        _ => None,
    };
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);
    // An AES key MACs with CMAC (its mode, when named, must say so).
    let kind = match params.algorithm.or(own) {
        Some(CryptographicAlgorithm::HMAC_SHA256) => MacKind::Hmac(Hash::Sha256),
        Some(CryptographicAlgorithm::HMAC_SHA384) => MacKind::Hmac(Hash::Sha384),
        Some(CryptographicAlgorithm::HMAC_SHA512) => MacKind::Hmac(Hash::Sha512),
        Some(CryptographicAlgorithm::AES)
            if own == Some(CryptographicAlgorithm::AES)
                && matches!(params.block_cipher_mode, None | Some(BlockCipherMode::CMAC)) =>
        {
            MacKind::Cmac
        }
        _ => {
            return Err(OpError::Unsupported(
                "MACs are HMAC-SHA256, HMAC-SHA384, HMAC-SHA512, or AES-CMAC with AES keys",
            ))
        }
    };
    // MAC Verify's MAC comes with the single or the last part.
    let ends = matches!(part, PartOf::Whole | PartOf::Next { last: true, .. });
    let expected = match (generating, ends) {
        (false, true) => Some(req.mac.ok_or(OpError::Invalid("MAC Verify needs the MAC Data"))?),
        _ => None,
    };
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
    let (aad, data) = (id.clone(), req.data);
    let input_len = data.len();
    // A multi-part operation belongs to the caller, key and operation that started it.
    let owner = format!("{}\n{id}\n{op}", cx.principal.as_str());
    let outcome = cx
        .state
        .hsm
        .run_short(input_len, move |hsm, s| match part {
            PartOf::Whole => {
                let key = hsm.open_sealed(s, &sealed, aad.as_bytes())?;
                hsm.mac(s, &key, kind, &data, expected.as_deref()).map(Answer::Done)
            }
            PartOf::First => {
                let key = hsm.open_sealed(s, &sealed, aad.as_bytes())?;
                hsm.mac_stream_start(s, &key, kind, !generating, &data, owner).map(Answer::Part)
            }
            PartOf::Next { correlation, last } => hsm
                .stream_next(s, &correlation, &owner, &data, last, expected.as_deref())
                .map(|p| match (last, p.verified) {
                    (false, _) => Answer::Part(p),
                    (true, Some(v)) => Answer::Done(MacOutcome::Verified(v)),
                    (true, None) => Answer::Done(MacOutcome::Mac(p.data)),
                }),
        })
        .await?;
    if generating {
        super::charge_usage(cx, &id, &stored, input_len).await?;
    }
    let payload = match outcome {
        Answer::Done(MacOutcome::Mac(m)) => mac::mac_response(&id, m),
        Answer::Done(MacOutcome::Verified(v)) => mac::verify_response(&id, v),
        Answer::Part(part) => mac::part_response(&id, part.correlation),
    };
    Ok(Outcome::new(payload, Some(id)))
}

/// What a MAC request got: the MAC or verdict, or (a part before the last) nothing yet.
enum Answer {
    Done(MacOutcome),
    Part(crate::hsm::Part),
}

/// Hash (KMIP 2.1 §6.1.24) in the HSM, single-part or multi-part (a multi-part digest
/// belongs to the caller that started it).
pub(crate) async fn hash(
    cx: &OpCtx<'_>,
    req: kmip::ops::hash::Request,
) -> Result<Outcome, OpError> {
    let part = PartOf::of(req.stream.as_ref())?;
    let hash = super::signature::hash_of(req.parameters.hashing_algorithm)?;
    let (data, owner) = (req.data, format!("{}\nhash", cx.principal.as_str()));
    let payload = cx
        .state
        .hsm
        .run_short(data.len(), move |hsm, s| match part {
            PartOf::Whole => Ok(kmip::ops::hash::response(hsm.digest(s, hash, &data)?)),
            PartOf::First => {
                let first = hsm.digest_stream_start(s, hash, None, &data, owner)?;
                Ok(kmip::ops::hash::part_response(first.correlation))
            }
            PartOf::Next { correlation, last } => {
                let p = hsm.stream_next(s, &correlation, &owner, &data, last, None)?;
                Ok(match last {
                    true => kmip::ops::hash::response(p.data),
                    false => kmip::ops::hash::part_response(None),
                })
            }
        })
        .await?;
    Ok(Outcome::new(payload, None))
}
