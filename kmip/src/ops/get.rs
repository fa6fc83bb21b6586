//! Get (KMIP 1.4 §4.11, KMIP 2.1 §6.1.21).

use crate::enums::{EncodingOption, KeyFormatType, ObjectType, WrappingMethod};
use crate::objects::ManagedObject;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Get request payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique Identifier; `None` means the ID Placeholder.
    pub unique_identifier: Option<String>,
    /// Key Format Type asked for.
    pub key_format_type: Option<KeyFormatType>,
    /// Key Wrapping Specification, when the client wants the key wrapped.
    pub wrapping: Option<WrappingSpecification>,
}

/// Key Wrapping Specification (KMIP 1.4 §2.1.6), the parts the server reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappingSpecification {
    /// Wrapping Method.
    pub method: WrappingMethod,
    /// Unique Identifier of the wrapping key (Encryption Key Information).
    pub wrapping_key: Option<String>,
    /// Cryptographic Parameters of the Encryption Key Information.
    pub parameters: Option<super::encrypt::CryptographicParameters>,
    /// Whether a MAC/Signature Key Information asks for a MAC or signature as well.
    pub mac_or_signature: bool,
    /// Encoding Option; absent means the Key Value is wrapped TTLV-encoded.
    pub encoding: EncodingOption,
}

impl WrappingSpecification {
    /// Reads a Key Wrapping Specification, or the Key Wrapping Data of a wrapped Key Block
    /// (the same fields, KMIP 1.4 §2.1.5).
    pub(crate) fn from_ttlv(w: &Ttlv) -> Result<Self, FieldError> {
        let eki = w.find(Tag::ENCRYPTION_KEY_INFORMATION);
        Ok(WrappingSpecification {
            method: WrappingMethod(w.require(Tag::WRAPPING_METHOD)?.as_enum()?),
            wrapping_key: eki.map(super::unique_identifier).transpose()?.flatten(),
            parameters: eki.map(super::opt_parameters).transpose()?.flatten(),
            mac_or_signature: w.find(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some(),
            encoding: w
                .find(Tag::ENCODING_OPTION)
                .map(|t| t.as_enum().map(EncodingOption))
                .transpose()?
                .unwrap_or(EncodingOption::TTLV_ENCODING),
        })
    }

    /// The Key Wrapping Data (KMIP 1.4 §2.1.5) describing how a returned key was wrapped.
    pub fn wrapping_data(&self, wrapping_key: &str) -> Ttlv {
        let mut eki = vec![super::uid_item(wrapping_key)];
        if let Some(p) = self.parameters.as_ref().filter(|p| **p != Default::default()) {
            eki.push(p.to_ttlv(Tag::CRYPTOGRAPHIC_PARAMETERS));
        }
        let mut c = vec![
            Ttlv::new(Tag::WRAPPING_METHOD, Value::Enumeration(self.method.0)),
            Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, eki),
        ];
        if self.encoding == EncodingOption::NO_ENCODING {
            c.push(Ttlv::new(Tag::ENCODING_OPTION, Value::Enumeration(self.encoding.0)));
        }
        Ttlv::structure(Tag::KEY_WRAPPING_DATA, c)
    }
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        Ok(Request {
            unique_identifier: super::unique_identifier(payload)?,
            key_format_type: payload
                .find(Tag::KEY_FORMAT_TYPE)
                .map(|t| t.as_enum().map(KeyFormatType))
                .transpose()?,
            wrapping: payload
                .find(Tag::KEY_WRAPPING_SPECIFICATION)
                .map(WrappingSpecification::from_ttlv)
                .transpose()?,
        })
    }
}

/// Encodes the response payload of a Get whose key was wrapped (KMIP 1.4 §2.1.5): the
/// object with its Key Block's Key Value replaced by the `wrapped` bytes (a Byte String,
/// or with No Encoding the Key Material of a Key Value structure) and `wrapping_data`
/// added. An object without a Key Block is encoded as it is.
pub fn wrapped_response(
    uid: &str,
    object: &ManagedObject,
    wrapped: Vec<u8>,
    no_encoding: bool,
    wrapping_data: Ttlv,
) -> Vec<Ttlv> {
    let mut payload = response(uid, object);
    let Some(block) = object.key_block() else { return payload };
    let value = if no_encoding {
        Ttlv::structure(
            Tag::KEY_VALUE,
            vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(wrapped))],
        )
    } else {
        Ttlv::new(Tag::KEY_VALUE, Value::ByteString(wrapped))
    };
    let mut kb = vec![Ttlv::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(block.format.0)), value];
    if let Some(a) = block.algorithm {
        kb.push(Ttlv::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a.0)));
    }
    if let Some(l) = block.length {
        kb.push(Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(l)));
    }
    kb.push(wrapping_data);
    if let Some(Value::Structure(items)) = payload.last_mut().map(|o| &mut o.value) {
        for item in items.iter_mut().filter(|i| i.tag == Tag::KEY_BLOCK) {
            *item = Ttlv::structure(Tag::KEY_BLOCK, kb.clone());
        }
    }
    payload
}

/// Encodes the response payload: Object Type, Unique Identifier and the object.
pub fn response(uid: &str, object: &ManagedObject) -> Vec<Ttlv> {
    let object_type: ObjectType = object.object_type();
    vec![
        Ttlv::new(Tag::OBJECT_TYPE, Value::Enumeration(object_type.0)),
        super::uid_item(uid),
        object.to_ttlv(),
    ]
}
