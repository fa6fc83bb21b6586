//! MAC and MAC Verify with HMAC (SHA-256/384/512) or AES-CMAC in the HSM. The algorithm
//! comes from the request's Cryptographic Parameters, the key's, or the key's own algorithm
//! (an AES key MACs with CMAC).

use kmip::attributes::{find, names};
use kmip::enums::{usage_mask, BlockCipherMode, CryptographicAlgorithm, ObjectType};
use kmip::ops::mac;
use kmip::Value;

use super::{check_use, key_parameters, OpCtx, Outcome};
use crate::hsm::{Hash, MacKind, MacOutcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: mac::Request,
    generating: bool,
) -> Result<Outcome, OpError> {
    let op = if generating { "MAC" } else { "MAC Verify" };
    if req.streaming {
        return Err(OpError::Unsupported("multi-part (streaming) MAC"));
    }
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
    let expected = if generating {
        None
    } else {
        Some(req.mac.ok_or(OpError::Invalid("MAC Verify needs the MAC Data"))?)
    };
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
    let (aad, data) = (id.clone(), req.data);
    let input_len = data.len();
    let outcome = cx
        .state
        .hsm
        .run(move |hsm, s| {
            let key = hsm.open_sealed(s, &sealed, aad.as_bytes())?;
            hsm.mac(s, &key, kind, &data, expected.as_deref())
        })
        .await?;
    if generating {
        super::charge_usage(cx, &id, &stored, input_len).await?;
    }
    let payload = match outcome {
        MacOutcome::Mac(m) => mac::mac_response(&id, m),
        MacOutcome::Verified(v) => mac::verify_response(&id, v),
    };
    Ok(Outcome::new(payload, Some(id)))
}
