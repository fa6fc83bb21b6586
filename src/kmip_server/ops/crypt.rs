//! Encrypt and Decrypt with AES keys (ECB, CBC, GCM), performed in the HSM: the key is
//! opened from its sealed form into a session object, kept open for later operations.
//! Also multi-part (Init Indicator, Correlation Value, Final Indicator), each operation in
//! an HSM session of its own.

use kmip::attributes::{find, names};
use kmip::enums::{usage_mask, BlockCipherMode, CryptographicAlgorithm, ObjectType, PaddingMethod};
use kmip::ops::encrypt::{self, CryptographicParameters};
use kmip::Value;

use super::{check_use, key_parameters, OpCtx, Outcome, PartOf};
use crate::hsm::{AesMode, RawKey};
use crate::kmip_server::error::OpError;
use crate::oaep::{Hash, OaepError};

const BLOCK: usize = 16;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: encrypt::Request,
    encrypting: bool,
) -> Result<Outcome, OpError> {
    let op = if encrypting { "Encrypt" } else { "Decrypt" };
    let id = cx.target(req.unique_identifier.clone())?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    let part = PartOf::of(req.stream.as_ref())?;
    let asymmetric = if encrypting { ObjectType::PUBLIC_KEY } else { ObjectType::PRIVATE_KEY };
    if row.object_type == i64::from(asymmetric.0) {
        if !matches!(part, PartOf::Whole) {
            return Err(OpError::Unsupported("multi-part RSA encryption"));
        }
        return rsa(cx, row, stored, req, encrypting).await;
    }
    if row.object_type != i64::from(ObjectType::SYMMETRIC_KEY.0) {
        return Err(OpError::Invalid(
            "Encrypt takes a symmetric or public key, Decrypt a symmetric or private key",
        ));
    }
    let bit = if encrypting { usage_mask::ENCRYPT } else { usage_mask::DECRYPT };
    check_use(&row, &stored, cx.now, op, encrypting, bit)?;
    let sealed = row.sealed_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
    match find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value) {
        Some(Value::Enumeration(a)) if *a == CryptographicAlgorithm::AES.0 => {}
        Some(Value::Enumeration(a))
            if [CryptographicAlgorithm::CHACHA20.0, CryptographicAlgorithm::CHACHA20POLY1305.0]
                .contains(a) =>
        {
            if !matches!(part, PartOf::Whole) {
                return Err(OpError::Unsupported("multi-part ChaCha20"));
            }
            let aead = *a == CryptographicAlgorithm::CHACHA20POLY1305.0;
            return chacha(cx, id, sealed, &stored, req, encrypting, aead).await;
        }
        _ => {
            return Err(OpError::Unsupported(
                "Encrypt and Decrypt support AES, ChaCha20 and ChaCha20-Poly1305 keys",
            ))
        }
    }
    // The caller, key and operation that started a multi-part operation are the only ones
    // that may continue it (an Encrypt is not finished by Decrypts, which skip its checks).
    let owner = format!("{}\n{id}\n{op}", cx.principal.as_str());
    if let PartOf::Next { correlation, last } = part {
        let next = Next { correlation, last, owner };
        return next_part(cx, &id, &stored, req, next, encrypting).await;
    }
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);

    let whole = matches!(part, PartOf::Whole);
    let (mode, generated_iv, mut data) =
        plan(&params, encrypting, req.iv, req.aad, req.tag, req.data, whole)?;
    let aad = id.clone();
    let ecb_pkcs5 =
        matches!(mode, AesMode::Ecb) && params.padding_method == Some(PaddingMethod::PKCS5);
    if !whole {
        if ecb_pkcs5 {
            return Err(OpError::Unsupported("multi-part ECB with PKCS#5 padding"));
        }
        let input_len = data.len();
        let part = cx
            .state
            .hsm
            .run_short(input_len, move |hsm, s| {
                hsm.aes_stream_start(s, &sealed, aad.as_bytes(), &mode, encrypting, &data, owner)
            })
            .await?;
        if encrypting {
            super::charge_usage(cx, &id, &stored, input_len).await?;
        }
        let payload = encrypt::part_response(&id, part.data, generated_iv, None, part.correlation);
        return Ok(Outcome::new(payload, Some(id)));
    }
    if ecb_pkcs5 && encrypting {
        let pad = BLOCK - data.len() % BLOCK;
        data.extend(std::iter::repeat_n(pad as u8, pad));
    }
    let hsm_mode = mode.clone();
    let input_len = data.len();
    let mut out = cx
        .state
        .hsm
        .run_short(input_len, move |hsm, s| {
            hsm.aes_cipher_sealed(s, &sealed, aad.as_bytes(), &hsm_mode, encrypting, &data)
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
    if encrypting {
        super::charge_usage(cx, &id, &stored, input_len).await?;
    }
    Ok(Outcome::new(encrypt::response(&id, out, generated_iv, tag), Some(id)))
}

/// ChaCha20 or ChaCha20-Poly1305 (`aead`), computed here: the HSM opens the sealed key
/// and [`crate::chacha`] uses it for this one operation. The nonce is the IV/Counter/Nonce
/// (12 bytes, or 8 for ChaCha20's original form; the server picks 12 random bytes when an
/// Encrypt has none); ChaCha20 starts at the Initial Counter Value's block (0 by default).
async fn chacha(
    cx: &OpCtx<'_>,
    id: String,
    sealed: Vec<u8>,
    stored: &[kmip::attributes::Attribute],
    req: encrypt::Request,
    encrypting: bool,
    aead: bool,
) -> Result<Outcome, OpError> {
    use crate::chacha::{self, ChaChaError};
    let params = req.parameters.unwrap_or_default().or(&key_parameters(stored)?);
    if !matches!(params.padding_method, None | Some(PaddingMethod::NONE)) {
        return Err(OpError::Invalid("ChaCha20 takes no padding"));
    }
    let counter = u64::try_from(params.initial_counter_value.unwrap_or(0))
        .map_err(|_| OpError::Invalid("the Initial Counter Value is negative"))?;
    if aead {
        if !matches!(params.block_cipher_mode, None | Some(BlockCipherMode::AEAD)) {
            return Err(OpError::Invalid("ChaCha20-Poly1305 takes the AEAD block cipher mode"));
        }
        if params.initial_counter_value.is_some() {
            return Err(OpError::Invalid("ChaCha20-Poly1305 sets its own block counter"));
        }
    } else if params.block_cipher_mode.is_some() {
        return Err(OpError::Invalid("ChaCha20 is a stream cipher: it takes no block cipher mode"));
    }
    let (iv, generated) = match req.iv {
        Some(iv) => (iv, None),
        None if encrypting => {
            let iv = crate::util::random_bytes(chacha::NONCE_LEN);
            (iv.clone(), Some(iv))
        }
        None => return Err(OpError::InvalidMessage("decryption needs the IV/Counter/Nonce")),
    };
    let tag_len = params.tag_length.map_or(chacha::TAG_LEN, |l| usize::try_from(l).unwrap_or(0));
    let tag = match (aead, encrypting, req.tag) {
        (true, false, None) => {
            return Err(OpError::Invalid(
                "ChaCha20-Poly1305 decryption needs the Authenticated Encryption Tag",
            ))
        }
        (true, false, Some(tag)) if tag.len() != tag_len => {
            return Err(OpError::Invalid("the tag's length differs from Tag Length"));
        }
        (_, _, tag) => tag.unwrap_or_default(),
    };
    let aad = id.clone();
    let key = cx.state.hsm.open_sealed_async(sealed, aad).await?;
    let key = zeroize::Zeroizing::new(key);
    let (data, additional) = (req.data, req.aad.unwrap_or_default());
    let input_len = data.len();
    let answer = match (aead, encrypting) {
        (true, true) => {
            chacha::seal(&key, &iv, &additional, data, tag_len).map(|(c, t)| (c, Some(t)))
        }
        (true, false) => chacha::open(&key, &iv, &additional, data, &tag).map(|p| (p, None)),
        (false, _) => {
            let mut data = data;
            chacha::apply(&key, &iv, counter, &mut data).map(|()| (data, None))
        }
    };
    // Tag lengths outside 12 to 16 bytes are General Failure, as for GCM (and as the
    // OASIS case CS-BC-M-CHACHA20POLY1305-1 answers).
    let (out, tag) = answer.map_err(|e| match e {
        ChaChaError::Authentication => OpError::CryptoFailure(e.message()),
        ChaChaError::TagLength => OpError::BadCryptoParameter(e.message()),
        _ => OpError::Invalid(e.message()),
    })?;
    if encrypting {
        super::charge_usage(cx, &id, stored, input_len).await?;
    }
    Ok(Outcome::new(encrypt::response(&id, out, generated, tag), Some(id)))
}

/// Which operation a later part continues, whether it ends it, and for whom.
struct Next {
    correlation: Vec<u8>,
    last: bool,
    owner: String,
}

/// A later part of a multi-part operation (KMIP 1.4 §4.29: the Correlation Value names
/// it, the Final Indicator ends it). The key must still be usable, checked as for every
/// part. GCM decryption takes the tag with the last part.
async fn next_part(
    cx: &OpCtx<'_>,
    id: &str,
    stored: &[kmip::attributes::Attribute],
    req: encrypt::Request,
    next: Next,
    encrypting: bool,
) -> Result<Outcome, OpError> {
    let Next { correlation, last, owner } = next;
    let mut data = req.data;
    let input_len = data.len();
    if let (false, true, Some(tag)) = (encrypting, last, req.tag) {
        data.extend_from_slice(&tag);
    }
    let part = cx
        .state
        .hsm
        .run_short(input_len, move |hsm, s| {
            hsm.stream_next(s, &correlation, &owner, &data, last, None)
        })
        .await?;
    if encrypting {
        super::charge_usage(cx, id, stored, input_len).await?;
    }
    Ok(Outcome::new(encrypt::response(id, part.data, None, part.tag), Some(id.to_owned())))
}

type Plan = (AesMode, Option<Vec<u8>>, Vec<u8>);

/// The HSM mode for the parameters, the IV the server generated (returned to the client),
/// and the input (for GCM decryption: ciphertext followed by the tag). The first part of a
/// multi-part operation (`whole` false) carries no tag and may end mid-block.
fn plan(
    p: &CryptographicParameters,
    encrypting: bool,
    iv: Option<Vec<u8>>,
    aad: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
    data: Vec<u8>,
    whole: bool,
) -> Result<Plan, OpError> {
    let mode = p.block_cipher_mode.ok_or(OpError::Invalid(
        "Cryptographic Parameters with a Block Cipher Mode are required (in the request or on the key)",
    ))?;
    let padding = p.padding_method.unwrap_or(PaddingMethod::NONE);
    if !matches!(padding, PaddingMethod::NONE | PaddingMethod::PKCS5) {
        return Err(OpError::Unsupported("padding methods other than None and PKCS5"));
    }
    let whole_blocks = |d: &[u8]| !whole || d.len().is_multiple_of(BLOCK);
    // A server-chosen IV is generated when the client sends none (KMIP 1.4 §3.6 Random IV).
    let fresh_iv = |len: usize| -> Result<(Vec<u8>, Option<Vec<u8>>), OpError> {
        match iv.clone() {
            Some(iv) => Ok((iv, None)),
            None if encrypting => {
                let iv = crate::util::random_bytes(len);
                Ok((iv.clone(), Some(iv)))
            }
            None => Err(OpError::InvalidMessage("decryption needs the IV/Counter/Nonce")),
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
                return Err(OpError::BadCryptoParameter("GCM tags are 12 to 16 bytes"));
            }
            let mut input = data;
            if !encrypting && !whole {
                if tag.is_some() {
                    return Err(OpError::Invalid("the tag comes with the last part"));
                }
            } else if !encrypting {
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

/// The OAEP hash and MGF1 hash of `params` (SHA-1 each when absent, KMIP 1.4 §3.6); other
/// padding than OAEP is refused.
fn oaep_hashes(params: &CryptographicParameters) -> Result<(Hash, Hash), OpError> {
    if !matches!(params.padding_method, None | Some(PaddingMethod::OAEP)) {
        return Err(OpError::Unsupported("RSA encryption uses OAEP padding"));
    }
    let hash = |h| super::signature::hash(h, Hash::Sha1);
    Ok((hash(params.hashing_algorithm)?, hash(params.mask_generator_hashing_algorithm)?))
}

fn oaep_error(e: OaepError) -> OpError {
    match e {
        OaepError::TooLong { .. } => OpError::Invalid("the data is too long for this key"),
        OaepError::KeyTooSmall => OpError::Invalid("the key is too small for this hash"),
        // The same words as a failed HSM decryption: nothing about where it failed.
        OaepError::Decoding => OpError::CryptoFailure(
            "the data does not decrypt or verify with this key and these parameters",
        ),
    }
}

/// RSA-OAEP encryption of `data` under the public key `spki` (SubjectPublicKeyInfo) with
/// `params`' hashes and `label`: padded here, the RSA operation in the HSM.
pub(crate) async fn oaep_encrypt(
    cx: &OpCtx<'_>,
    spki: Vec<u8>,
    params: &CryptographicParameters,
    label: Vec<u8>,
    data: &[u8],
) -> Result<Vec<u8>, OpError> {
    let (hash, mgf) = oaep_hashes(params)?;
    let Ok(crate::der::KeyKind::Rsa(bits)) = crate::der::key_kind(&spki) else {
        return Err(OpError::Invalid("the public key is not an RSA key"));
    };
    let em = crate::oaep::encode(bits.div_ceil(8), hash, mgf, &label, data).map_err(oaep_error)?;
    Ok(cx.state.hsm.run(move |hsm, s| hsm.rsa_raw(s, RawKey::Public(&spki), &em)).await?)
}

/// RSA-OAEP decryption of `data` by the private key `key_id` held in the HSM. SHA-1 with
/// SHA-1 uses the HSM's own OAEP mechanism; other hashes, which SoftHSM lacks, the HSM's
/// raw RSA with the padding checked here (`crate::oaep`).
pub(crate) async fn oaep_decrypt(
    cx: &OpCtx<'_>,
    key_id: &str,
    params: &CryptographicParameters,
    label: Vec<u8>,
    data: Vec<u8>,
) -> Result<Vec<u8>, OpError> {
    let (hash, mgf) = oaep_hashes(params)?;
    let key_id = key_id.to_owned();
    if (hash, mgf) == (Hash::Sha1, Hash::Sha1) {
        return Ok(cx
            .state
            .hsm
            .run(move |hsm, s| hsm.rsa_oaep(s, key_id.as_bytes(), &label, &data))
            .await?);
    }
    let em = cx
        .state
        .hsm
        .run(move |hsm, s| hsm.rsa_raw(s, RawKey::Private(key_id.as_bytes()), &data))
        .await?;
    crate::oaep::decode(&em, hash, mgf, &label).map_err(oaep_error)
}

/// RSA-OAEP: Encrypt with a public key, Decrypt with a private key held in the HSM, with
/// the request's or the key's parameters ([`oaep_encrypt`], [`oaep_decrypt`]).
async fn rsa(
    cx: &OpCtx<'_>,
    row: crate::store::ObjectRow,
    stored: Vec<kmip::attributes::Attribute>,
    req: encrypt::Request,
    encrypting: bool,
) -> Result<Outcome, OpError> {
    let op = if encrypting { "Encrypt" } else { "Decrypt" };
    let id = row.id.clone();
    let bit = if encrypting { usage_mask::ENCRYPT } else { usage_mask::DECRYPT };
    check_use(&row, &stored, cx.now, op, encrypting, bit)?;
    if find(&stored, names::CRYPTOGRAPHIC_ALGORITHM).map(|a| &a.value)
        != Some(&Value::Enumeration(CryptographicAlgorithm::RSA.0))
    {
        return Err(OpError::Unsupported("asymmetric encryption uses RSA keys"));
    }
    let params = req.parameters.unwrap_or_default().or(&key_parameters(&stored)?);
    // The label: P Source (KMIP 1.4 §3.6), or the Authenticated Encryption Additional Data
    // earlier clients of this server sent.
    let label = params.p_source.clone().or(req.aad).unwrap_or_default();
    let data = req.data;
    let input_len = data.len();
    let out = if encrypting {
        let spki = row.public_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
        oaep_encrypt(cx, spki, &params, label, &data).await?
    } else {
        oaep_decrypt(cx, &id, &params, label, data).await?
    };
    if encrypting {
        super::charge_usage(cx, &id, &stored, input_len).await?;
    }
    Ok(Outcome::new(encrypt::response(&id, out, None, None), Some(id)))
}
