//! PKCS#11 (KMIP 2.1 §6.1.37): a PKCS#11 function called through KMIP. The Input and
//! Output Parameters are byte strings in the encoding of the KMIP 2.1 Profiles' PKCS#11
//! profile: CK_BYTEs as single bytes, CK_ULONGs as 8 bytes big-endian, structures inline,
//! fixed-length strings space-padded; [`CkInfo`] is the one structure read and written here.

use crate::enums::{Pkcs11Function, Pkcs11ReturnCode};
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// Most bytes of Input Parameters accepted (no function takes more than a few kilobytes
/// outside bulk data, which this server does not pass through).
pub const MAX_INPUT: usize = 64 * 1024;

/// PKCS#11 request payload (KMIP 2.1 §6.1.37, Table 273).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// PKCS#11 Interface: absent for the default (PKCS#11 3.0) interface.
    pub interface: Option<String>,
    /// PKCS#11 Function: an Enumeration, or an Integer for a vendor-defined function.
    pub function: Function,
    /// Correlation Value from the previous response, if there was one.
    pub correlation_value: Option<Vec<u8>>,
    /// PKCS#11 Input Parameters.
    pub input: Option<Vec<u8>>,
}

/// The function a PKCS#11 request names (KMIP 2.1 §7.26).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// One of PKCS#11's own functions (KMIP 2.1 §11.38).
    Standard(Pkcs11Function),
    /// A vendor-defined function, by number.
    Vendor(i32),
}

impl Function {
    fn to_ttlv(self) -> Ttlv {
        match self {
            Function::Standard(f) => Ttlv::new(Tag::PKCS_11_FUNCTION, Value::Enumeration(f.0)),
            Function::Vendor(n) => Ttlv::new(Tag::PKCS_11_FUNCTION, Value::Integer(n)),
        }
    }
}

impl Request {
    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let interface =
            payload.find(Tag::PKCS_11_INTERFACE).map(|t| t.as_text().map(str::to_owned));
        let function = payload.require(Tag::PKCS_11_FUNCTION)?;
        let function = match &function.value {
            Value::Enumeration(f) => Function::Standard(Pkcs11Function(*f)),
            Value::Integer(n) => Function::Vendor(*n),
            _ => {
                return Err(FieldError::Invalid {
                    tag: Tag::PKCS_11_FUNCTION,
                    reason: "an Enumeration, or an Integer for a vendor function",
                });
            }
        };
        let bytes = |tag| payload.find(tag).map(|t| t.as_bytes().map(<[u8]>::to_vec));
        let input = bytes(Tag::PKCS_11_INPUT_PARAMETERS).transpose()?;
        if input.as_ref().is_some_and(|i| i.len() > MAX_INPUT) {
            return Err(FieldError::Invalid {
                tag: Tag::PKCS_11_INPUT_PARAMETERS,
                reason: "longer than 64 KiB",
            });
        }
        Ok(Request {
            interface: interface.transpose()?,
            function,
            correlation_value: bytes(Tag::CORRELATION_VALUE).transpose()?,
            input,
        })
    }

    /// Encodes the payload's items.
    pub fn to_ttlv(&self) -> Vec<Ttlv> {
        let input = self.input.as_ref().map(|p| (Tag::PKCS_11_INPUT_PARAMETERS, p));
        common_items(&self.interface, self.function, &self.correlation_value, input)
    }
}

/// The items requests and responses share, in their tables' order: Interface, Function,
/// Correlation Value, then the Input or Output Parameters.
fn common_items(
    interface: &Option<String>,
    function: Function,
    correlation: &Option<Vec<u8>>,
    parameters: Option<(Tag, &Vec<u8>)>,
) -> Vec<Ttlv> {
    let mut items = Vec::new();
    if let Some(i) = interface {
        items.push(Ttlv::new(Tag::PKCS_11_INTERFACE, Value::TextString(i.clone())));
    }
    items.push(function.to_ttlv());
    if let Some(c) = correlation {
        items.push(Ttlv::new(Tag::CORRELATION_VALUE, Value::ByteString(c.clone())));
    }
    if let Some((tag, p)) = parameters {
        items.push(Ttlv::new(tag, Value::ByteString(p.clone())));
    }
    items
}

/// PKCS#11 response payload (KMIP 2.1 §6.1.37, Table 274).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// PKCS#11 Interface, echoed when the request named one.
    pub interface: Option<String>,
    /// The function performed.
    pub function: Function,
    /// Correlation Value the client sends with its next request.
    pub correlation_value: Option<Vec<u8>>,
    /// PKCS#11 Output Parameters.
    pub output: Option<Vec<u8>>,
    /// PKCS#11 Return Code (a CK_RV).
    pub return_code: Pkcs11ReturnCode,
}

impl Response {
    /// Encodes the payload's items, in Table 274's order.
    pub fn to_ttlv(&self) -> Vec<Ttlv> {
        let output = self.output.as_ref().map(|o| (Tag::PKCS_11_OUTPUT_PARAMETERS, o));
        let mut items =
            common_items(&self.interface, self.function, &self.correlation_value, output);
        items.push(Ttlv::new(Tag::PKCS_11_RETURN_CODE, Value::Enumeration(self.return_code.0)));
        items
    }

    /// Reads the payload.
    pub fn from_ttlv(payload: &Ttlv) -> Result<Self, FieldError> {
        let request = Request::from_ttlv(payload)?;
        let output = payload.find(Tag::PKCS_11_OUTPUT_PARAMETERS).map(Ttlv::as_bytes);
        Ok(Response {
            interface: request.interface,
            function: request.function,
            correlation_value: request.correlation_value,
            output: output.transpose()?.map(<[u8]>::to_vec),
            return_code: Pkcs11ReturnCode(payload.require(Tag::PKCS_11_RETURN_CODE)?.as_enum()?),
        })
    }
}

/// CK_INFO (PKCS#11 2.40 §3.1), what C_GetInfo outputs: the module's Cryptoki version,
/// manufacturer, flags (zero), description and library version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CkInfo {
    /// Cryptoki interface version (major, minor).
    pub cryptoki_version: (u8, u8),
    /// Manufacturer ID, at most 32 characters.
    pub manufacturer_id: String,
    /// Library Description, at most 32 characters.
    pub library_description: String,
    /// Library version (major, minor).
    pub library_version: (u8, u8),
}

/// Bytes of an encoded [`CkInfo`]: two versions, two 32-byte strings and an 8-byte flags.
pub const CK_INFO_LEN: usize = 2 + 32 + 8 + 32 + 2;

impl CkInfo {
    /// The profile's encoding: version, manufacturerID, flags, libraryDescription,
    /// libraryVersion, with the strings space-padded (or cut) to 32 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let padded = |s: &str| {
            let mut b: Vec<u8> = s.bytes().take(32).collect();
            b.resize(32, b' ');
            b
        };
        let mut out = Vec::with_capacity(CK_INFO_LEN);
        out.extend_from_slice(&[self.cryptoki_version.0, self.cryptoki_version.1]);
        out.extend_from_slice(&padded(&self.manufacturer_id));
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&padded(&self.library_description));
        out.extend_from_slice(&[self.library_version.0, self.library_version.1]);
        out
    }

    /// Reads what [`CkInfo::encode`] writes (trailing spaces dropped); `None` for another
    /// length or strings that are not UTF-8.
    pub fn decode(b: &[u8]) -> Option<CkInfo> {
        if b.len() != CK_INFO_LEN {
            return None;
        }
        let text = |s: &[u8]| std::str::from_utf8(s).ok().map(|s| s.trim_end().to_owned());
        Some(CkInfo {
            cryptoki_version: (b[0], b[1]),
            manufacturer_id: text(&b[2..34])?,
            library_description: text(&b[42..74])?,
            library_version: (b[74], b[75]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C_GetInfo output of OASIS test case PKCS11-M-1-21 (KMIP 2.1 profiles).
    #[test]
    fn ck_info_of_pkcs11_m_1_decodes_and_encodes_back() {
        let hex = "022854455354202020202020507479204c7464202020202020202020202020202020000000000000000054455354202020202020202020202020202020202020202020202020202020200100";
        let bytes = crate::ttlv::text::unhex(hex).unwrap();
        let info = CkInfo::decode(&bytes).expect("76 bytes");
        assert_eq!(info.cryptoki_version, (2, 40));
        assert_eq!(info.manufacturer_id, "TEST      Pty Ltd");
        assert_eq!(info.library_description, "TEST");
        assert_eq!(info.library_version, (1, 0));
        assert_eq!(info.encode(), bytes);
    }

    #[test]
    fn payloads_round_trip_and_requests_are_bounded() {
        let req = Request {
            interface: None,
            function: Function::Standard(Pkcs11Function::C_GETINFO),
            correlation_value: Some(vec![1, 2]),
            input: None,
        };
        let payload = Ttlv::structure(Tag::REQUEST_PAYLOAD, req.to_ttlv());
        assert_eq!(Request::from_ttlv(&payload).unwrap(), req);
        let resp = Response {
            interface: Some("PKCS 11".into()),
            function: Function::Vendor(0x8000_0001_u32 as i32),
            correlation_value: None,
            output: Some(vec![1; 76]),
            return_code: Pkcs11ReturnCode::OK,
        };
        let payload = Ttlv::structure(Tag::RESPONSE_PAYLOAD, resp.to_ttlv());
        assert_eq!(Response::from_ttlv(&payload).unwrap(), resp);
        let big = Request { input: Some(vec![0; MAX_INPUT + 1]), ..req };
        let payload = Ttlv::structure(Tag::REQUEST_PAYLOAD, big.to_ttlv());
        assert!(Request::from_ttlv(&payload).is_err());
    }
}
