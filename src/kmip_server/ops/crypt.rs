//! Encrypt and Decrypt with AES keys (ECB, CBC, GCM), performed in the HSM: the key is
//! opened from its sealed form and used as a session object for the one operation.

use kmip::attributes::{find, names};
use kmip::enums::{usage_mask, BlockCipherMode, CryptographicAlgorithm, ObjectType, PaddingMethod};
use kmip::ops::encrypt::{self, CryptographicParameters};
use kmip::Value;

use super::{check_use, key_parameters, OpCtx, Outcome};
use crate::hsm::AesMode;
use crate::kmip_server::error::OpError;

const BLOCK: usize = 16;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: encrypt::Request,
    encrypting: bool,
) -> Result<Outcome, OpError> {
    let op = if encrypting { "Encrypt" } else { "Decrypt" };
    if req.streaming {
        return Err(OpError::Unsupported("multi-part (streaming) Encrypt and Decrypt"));
    }
    let id = cx.target(req.unique_identifier.clone())?;
    let row = cx.load(&id).await?;
    let asymmetric = if encrypting { ObjectType::PUBLIC_KEY } else { ObjectType::PRIVATE_KEY };
    if row.object_type == i64::from(asymmetric.0) {
        return rsa(cx, row, req, encrypting).await;
    }
    if row.object_type != i64::from(ObjectType::SYMMETRIC_KEY.0) {
        return Err(OpError::Invalid(
            "Encrypt takes a symmetric or public key, Decrypt a symmetric or private key",
        ));
    }
    let stored = cx.state.store.attributes(&id).await?;
    let bit = if encrypting { usage_mask::ENCRYPT } else { usage_mask::DECRYPT };
    check_use(&row, &stored, cx.now, op, encrypting, bit)?;
    if find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value)
        != Some(&Value::Enumeration(CryptographicAlgorithm::AES.0))
    {
        return Err(OpError::Unsupported("Encrypt and Decrypt support AES keys"));
    }
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);

    let (mode, generated_iv, mut data) =
        plan(&params, encrypting, req.iv, req.aad, req.tag, req.data)?;
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
    let aad = id.clone();
    let ecb_pkcs5 =
        matches!(mode, AesMode::Ecb) && params.padding_method == Some(PaddingMethod::PKCS5);
    if ecb_pkcs5 && encrypting {
        let pad = BLOCK - data.len() % BLOCK;
        data.extend(std::iter::repeat_n(pad as u8, pad));
    }
    let hsm_mode = mode.clone();
    let mut out = cx
        .state
        .hsm
        .run(move |hsm, s| {
            let key = hsm.open_sealed(s, &sealed, aad.as_bytes())?;
            hsm.aes_cipher(s, &key, &hsm_mode, encrypting, &data)
        })
        .await?;
    if ecb_pkcs5 && !encrypting {
        let pad = out.last().copied().unwrap_or(0) as usize;
        if pad == 0
            || pad > BLOCK
            || pad > out.len()
            || out[out.len() - pad..].iter().any(|b| *b as usize != pad)
        {
            return Err(OpError::Invalid(
                "the decrypted data does not end in valid PKCS#5 padding",
            ));
        }
        out.truncate(out.len() - pad);
    }
    let tag = match (&mode, encrypting) {
        (AesMode::Gcm { tag_bits, .. }, true) => {
            let split = out.len().saturating_sub((*tag_bits / 8) as usize);
            Some(out.split_off(split))
        }
        _ => None,
    };
    Ok(Outcome::new(encrypt::response(&id, out, generated_iv, tag), Some(id)))
}

type Plan = (AesMode, Option<Vec<u8>>, Vec<u8>);

/// The HSM mode for the parameters, the IV the server generated (returned to the client),
/// and the input (for GCM decryption: ciphertext followed by the tag).
fn plan(
    p: &CryptographicParameters,
    encrypting: bool,
    iv: Option<Vec<u8>>,
    aad: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
    data: Vec<u8>,
) -> Result<Plan, OpError> {
    let mode = p.block_cipher_mode.ok_or(OpError::Invalid(
        "Cryptographic Parameters with a Block Cipher Mode are required (in the request or on the key)",
    ))?;
    let padding = p.padding_method.unwrap_or(PaddingMethod::NONE);
    if !matches!(padding, PaddingMethod::NONE | PaddingMethod::PKCS5) {
        return Err(OpError::Unsupported("padding methods other than None and PKCS5"));
    }
    let whole_blocks = |d: &[u8]| d.len() % BLOCK == 0;
    // A server-chosen IV is generated when the client sends none (KMIP 1.4 §3.6 Random IV).
    let fresh_iv = |len: usize| -> Result<(Vec<u8>, Option<Vec<u8>>), OpError> {
        match iv.clone() {
            Some(iv) => Ok((iv, None)),
            None if encrypting => {
                let iv = crate::util::random_bytes(len);
                Ok((iv.clone(), Some(iv)))
            }
            None => Err(OpError::Invalid("decryption needs the IV/Counter/Nonce")),
        }
    };
    match mode {
        BlockCipherMode::ECB => {
            if (padding == PaddingMethod::NONE || !encrypting) && !whole_blocks(&data) {
                return Err(OpError::Invalid("ECB data must be a whole number of 16-byte blocks"));
            }
            Ok((AesMode::Ecb, None, data))
        }
        BlockCipherMode::CBC => {
            let (iv, generated) = fresh_iv(BLOCK)?;
            let iv: [u8; 16] =
                iv.try_into().map_err(|_| OpError::Invalid("CBC takes a 16-byte IV"))?;
            let pad = padding == PaddingMethod::PKCS5;
            if (!pad || !encrypting) && !whole_blocks(&data) {
                return Err(OpError::Invalid("CBC data must be a whole number of 16-byte blocks"));
            }
            Ok((AesMode::Cbc { iv, pad }, generated, data))
        }
        BlockCipherMode::GCM => {
            let (iv, generated) = fresh_iv(12)?;
            if iv.is_empty() || iv.len() > 128 {
                return Err(OpError::Invalid("GCM takes an IV of 1 to 128 bytes"));
            }
            let tag_len = p.tag_length.unwrap_or(16);
            if !(12..=16).contains(&tag_len) {
                return Err(OpError::Invalid("GCM tags are 12 to 16 bytes"));
            }
            let mut input = data;
            if !encrypting {
                let tag = tag.ok_or(OpError::Invalid(
                    "GCM decryption needs the Authenticated Encryption Tag",
                ))?;
                if tag.len() != tag_len as usize {
                    return Err(OpError::Invalid("the tag's length differs from Tag Length"));
                }
                input.extend_from_slice(&tag);
            }
            let mode =
                AesMode::Gcm { iv, aad: aad.unwrap_or_default(), tag_bits: tag_len as u64 * 8 };
            Ok((mode, generated, input))
        }
        _ => Err(OpError::Unsupported("block cipher modes other than ECB, CBC and GCM")),
    }
}

/// RSA-OAEP with a key pair in the HSM: Encrypt with the public key, Decrypt with the
/// private one. SoftHSM offers OAEP with SHA-1 (and MGF1-SHA-1) only.
async fn rsa(
    cx: &OpCtx<'_>,
    row: crate::store::ObjectRow,
    req: encrypt::Request,
    encrypting: bool,
) -> Result<Outcome, OpError> {
    let op = if encrypting { "Encrypt" } else { "Decrypt" };
    let id = row.id.clone();
    let stored = cx.state.store.attributes(&id).await?;
    let bit = if encrypting { usage_mask::ENCRYPT } else { usage_mask::DECRYPT };
    check_use(&row, &stored, cx.now, op, encrypting, bit)?;
    if find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value)
        != Some(&Value::Enumeration(CryptographicAlgorithm::RSA.0))
    {
        return Err(OpError::Unsupported("asymmetric encryption uses RSA keys"));
    }
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);
    if !matches!(params.padding_method, None | Some(PaddingMethod::OAEP)) {
        return Err(OpError::Unsupported("RSA encryption uses OAEP padding"));
    }
    if !matches!(params.hashing_algorithm, None | Some(kmip::enums::HashingAlgorithm::SHA_1)) {
        return Err(OpError::Unsupported("RSA-OAEP here uses SHA-1 (the HSM's only OAEP hash)"));
    }
    let (label, data, key_id) = (req.aad.unwrap_or_default(), req.data, id.clone());
    let out = cx
        .state
        .hsm
        .run(move |hsm, s| hsm.rsa_oaep(s, key_id.as_bytes(), encrypting, &label, &data))
        .await?;
    Ok(Outcome::new(encrypt::response(&id, out, None, None), Some(id)))
}
