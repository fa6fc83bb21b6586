//! Attributes in both KMIP attribute models: the 1.x `Attribute` structure (Attribute Name,
//! Index, Value; KMIP 1.4 §2.1.1) inside Template-Attribute, and the 2.x `Attributes`
//! structure whose items are tagged by attribute (KMIP 2.1 §2.1.1, §4), with Vendor
//! Attribute for custom ones. Both read into one [`Attribute`] form named by spec text.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};
use crate::version::ProtocolVersion;

/// Standard attribute names (KMIP 1.4 §3, KMIP 2.1 §4), as the 1.x encoding spells them.
pub mod names {
    /// Unique Identifier (§4.1 in 1.4: §3.1).
    pub const UNIQUE_IDENTIFIER: &str = "Unique Identifier";
    /// Name.
    pub const NAME: &str = "Name";
    /// Object Type.
    pub const OBJECT_TYPE: &str = "Object Type";
    /// Cryptographic Algorithm.
    pub const CRYPTOGRAPHIC_ALGORITHM: &str = "Cryptographic Algorithm";
    /// Cryptographic Length.
    pub const CRYPTOGRAPHIC_LENGTH: &str = "Cryptographic Length";
    /// Cryptographic Usage Mask.
    pub const CRYPTOGRAPHIC_USAGE_MASK: &str = "Cryptographic Usage Mask";
    /// State.
    pub const STATE: &str = "State";
    /// Initial Date.
    pub const INITIAL_DATE: &str = "Initial Date";
    /// Activation Date.
    pub const ACTIVATION_DATE: &str = "Activation Date";
    /// Deactivation Date.
    pub const DEACTIVATION_DATE: &str = "Deactivation Date";
    /// Process Start Date (KMIP 1.4 §3.25).
    pub const PROCESS_START_DATE: &str = "Process Start Date";
    /// Protect Stop Date (KMIP 1.4 §3.26).
    pub const PROTECT_STOP_DATE: &str = "Protect Stop Date";
    /// Destroy Date.
    pub const DESTROY_DATE: &str = "Destroy Date";
    /// Compromise Occurrence Date.
    pub const COMPROMISE_OCCURRENCE_DATE: &str = "Compromise Occurrence Date";
    /// Compromise Date.
    pub const COMPROMISE_DATE: &str = "Compromise Date";
    /// Revocation Reason.
    pub const REVOCATION_REASON: &str = "Revocation Reason";
    /// Last Change Date.
    pub const LAST_CHANGE_DATE: &str = "Last Change Date";
    /// Original Creation Date (1.3+).
    pub const ORIGINAL_CREATION_DATE: &str = "Original Creation Date";
    /// Object Group.
    pub const OBJECT_GROUP: &str = "Object Group";
    /// Digest.
    pub const DIGEST: &str = "Digest";
    /// Lease Time (KMIP 1.4 §3.15).
    pub const LEASE_TIME: &str = "Lease Time";
    /// Random Number Generator (KMIP 1.4 §3.44).
    pub const RANDOM_NUMBER_GENERATOR: &str = "Random Number Generator";
    /// Certificate Type (KMIP 1.4 §3.8).
    pub const CERTIFICATE_TYPE: &str = "Certificate Type";
    /// Certificate Length (KMIP 1.4 §3.9).
    pub const CERTIFICATE_LENGTH: &str = "Certificate Length";
    /// Operation Policy Name (1.x only).
    pub const OPERATION_POLICY_NAME: &str = "Operation Policy Name";
    /// Key Value Present (1.2+).
    pub const KEY_VALUE_PRESENT: &str = "Key Value Present";
    /// Sensitive (1.4+).
    pub const SENSITIVE: &str = "Sensitive";
    /// Extractable (1.4+).
    pub const EXTRACTABLE: &str = "Extractable";
    /// Fresh (1.1+).
    pub const FRESH: &str = "Fresh";
    /// Always Sensitive (1.4+).
    pub const ALWAYS_SENSITIVE: &str = "Always Sensitive";
    /// Never Extractable (1.4+).
    pub const NEVER_EXTRACTABLE: &str = "Never Extractable";
    /// Key Format Type, an attribute from 2.0 (KMIP 2.1 §4.26).
    pub const KEY_FORMAT_TYPE: &str = "Key Format Type";
    /// KMIP 2.1 §4.56: SHA-256 of the Unique Identifier.
    pub const SHORT_UNIQUE_IDENTIFIER: &str = "Short Unique Identifier";
    /// KMIP 2.1 §4.44: where the object's protection is stored (software, hardware, ...).
    pub const PROTECTION_STORAGE_MASK: &str = "Protection Storage Mask";
    /// Usage Limits (KMIP 1.4 §3.21).
    pub const USAGE_LIMITS: &str = "Usage Limits";
    /// KMIP 2.1 §4.48: the server re-keys the object when its Rotate Interval has passed.
    pub const ROTATE_AUTOMATIC: &str = "Rotate Automatic";
    /// KMIP 2.1 §4.49: when the object was made by rotating another (server-set).
    pub const ROTATE_DATE: &str = "Rotate Date";
    /// KMIP 2.1 §4.50: how many rotations made the object, from zero (server-set).
    pub const ROTATE_GENERATION: &str = "Rotate Generation";
    /// KMIP 2.1 §4.51: the age (since Initial Date) at which automatic rotation happens.
    pub const ROTATE_INTERVAL: &str = "Rotate Interval";
    /// KMIP 2.1 §4.52: whether the object is the newest of its rotations (server-set).
    pub const ROTATE_LATEST: &str = "Rotate Latest";
    /// KMIP 2.1 §4.53: names the set of objects rotated from one another.
    pub const ROTATE_NAME: &str = "Rotate Name";
    /// KMIP 2.1 §4.54: the Offset of an automatic rotation's Re-key.
    pub const ROTATE_OFFSET: &str = "Rotate Offset";
}

/// One attribute in version-neutral form: its spec name (or `x-Name`/`y-Name` for custom
/// ones), index, and value. Structured values keep their children's tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Spec name, such as `"Cryptographic Algorithm"`, or a custom `x-…` / `y-…` name.
    pub name: String,
    /// Attribute Index (1.x); `None` means 0.
    pub index: Option<i32>,
    /// The value.
    pub value: Value,
}

impl Attribute {
    /// A new attribute with index 0.
    pub fn new(name: &str, value: Value) -> Self {
        Attribute { name: name.to_owned(), index: None, value }
    }

    /// Reads a 1.x `Attribute` structure (KMIP 1.4 §2.1.1).
    pub fn from_v1(item: &Ttlv) -> Result<Self, FieldError> {
        Ok(Attribute {
            name: item.require(Tag::ATTRIBUTE_NAME)?.as_text()?.to_owned(),
            index: item.find(Tag::ATTRIBUTE_INDEX).map(Ttlv::as_i32).transpose()?,
            value: item.require(Tag::ATTRIBUTE_VALUE)?.value.clone(),
        })
    }

    /// Reads one item of a 2.x `Attributes` structure; custom ones are an `Attribute` holding
    /// Vendor Identification, Attribute Name and Attribute Value (KMIP 2.1 §2.1.1, §4.60).
    pub fn from_v2(item: &Ttlv) -> Result<Self, FieldError> {
        if item.tag == Tag::ATTRIBUTE && item.find(Tag::VENDOR_IDENTIFICATION).is_some() {
            let vendor = item.require(Tag::VENDOR_IDENTIFICATION)?.as_text()?;
            let name = item.require(Tag::ATTRIBUTE_NAME)?.as_text()?;
            return Ok(Attribute {
                name: format!("{vendor}-{name}"),
                index: None,
                value: item.require(Tag::ATTRIBUTE_VALUE)?.value.clone(),
            });
        }
        let name = item.tag.name().ok_or(FieldError::Invalid {
            tag: item.tag,
            reason: "not an attribute this server knows",
        })?;
        Ok(Attribute { name: name.to_owned(), index: None, value: item.value.clone() })
    }

    /// Encodes as a 1.x `Attribute` structure.
    pub fn to_v1(&self) -> Ttlv {
        let mut c = vec![Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(self.name.clone()))];
        if let Some(i) = self.index.filter(|i| *i != 0) {
            c.push(Ttlv::new(Tag::ATTRIBUTE_INDEX, Value::Integer(i)));
        }
        c.push(Ttlv::new(Tag::ATTRIBUTE_VALUE, self.value.clone()));
        Ttlv::structure(Tag::ATTRIBUTE, c)
    }

    /// Encodes as an item of a 2.x `Attributes` structure (custom ones as Vendor Attribute).
    pub fn to_v2(&self) -> Ttlv {
        match Tag::from_name(&self.name) {
            Some(tag) if !is_custom(&self.name) => Ttlv::new(tag, self.value.clone()),
            _ => {
                let (vendor, name) = self.name.split_once('-').unwrap_or(("x", &self.name));
                Ttlv::structure(
                    Tag::ATTRIBUTE,
                    vec![
                        Ttlv::new(Tag::VENDOR_IDENTIFICATION, Value::TextString(vendor.to_owned())),
                        Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.to_owned())),
                        Ttlv::new(Tag::ATTRIBUTE_VALUE, self.value.clone()),
                    ],
                )
            }
        }
    }

    /// Encodes in the model of `version`.
    pub fn to_ttlv(&self, version: ProtocolVersion) -> Ttlv {
        if version.is_v2() { self.to_v2() } else { self.to_v1() }
    }
}

/// Whether `name` is a client-defined custom attribute (`x-…`, `y-…`; KMIP 1.4 §3.39).
pub fn is_custom(name: &str) -> bool {
    name.starts_with("x-") || name.starts_with("y-")
}

/// Reads the attributes a request carries, in either model: a 1.x Template-Attribute (or
/// Common/Private/Public Template-Attribute named by `template`), loose 1.x `Attribute`
/// items, or a 2.x `Attributes` structure.
pub fn read_attributes(payload: &Ttlv, template: Tag) -> Result<Vec<Attribute>, FieldError> {
    let mut out = Vec::new();
    if let Some(t) = payload.find(template) {
        if t.find(Tag::NAME).is_some() {
            return Err(FieldError::Invalid {
                tag: Tag::NAME,
                reason: "templates (Template-Attribute Name references) are not supported",
            });
        }
        for a in t.find_all(Tag::ATTRIBUTE) {
            out.push(Attribute::from_v1(a)?);
        }
    }
    for a in payload.find_all(Tag::ATTRIBUTE) {
        out.push(Attribute::from_v1(a)?);
    }
    if let Some(attrs) = payload.find(Tag::ATTRIBUTES) {
        for a in attrs.as_structure()? {
            out.push(Attribute::from_v2(a)?);
        }
    }
    Ok(out)
}

/// Encodes a list of attributes for a response: 1.x as `Attribute` items, 2.x as one
/// `Attributes` structure.
pub fn write_attributes(attrs: &[Attribute], version: ProtocolVersion) -> Vec<Ttlv> {
    if version.is_v2() {
        vec![Ttlv::structure(Tag::ATTRIBUTES, attrs.iter().map(Attribute::to_v2).collect())]
    } else {
        attrs.iter().map(Attribute::to_v1).collect()
    }
}

/// Reads attribute references: 1.x `Attribute Name` text strings, 2.x `Attribute Reference`
/// (an Enumeration holding a tag, or Vendor Identification + Attribute Name; KMIP 2.1 §5.5).
pub fn read_attribute_references(payload: &Ttlv) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for n in payload.find_all(Tag::ATTRIBUTE_NAME) {
        out.push(n.as_text()?.to_owned());
    }
    for r in payload.find_all(Tag::ATTRIBUTE_REFERENCE) {
        out.push(reference_name(r)?);
    }
    Ok(out)
}

fn reference_name(r: &Ttlv) -> Result<String, FieldError> {
    match &r.value {
        Value::Enumeration(t) => Tag(*t).name().map(str::to_owned).ok_or(FieldError::Invalid {
            tag: r.tag,
            reason: "refers to a tag that is not an attribute",
        }),
        Value::Structure(_) => Ok(format!(
            "{}-{}",
            r.require(Tag::VENDOR_IDENTIFICATION)?.as_text()?,
            r.require(Tag::ATTRIBUTE_NAME)?.as_text()?
        )),
        _ => Err(FieldError::Invalid { tag: r.tag, reason: "must be an Enumeration or Structure" }),
    }
}

/// Encodes attribute names for Get Attribute List: 1.x `Attribute Name`, 2.x `Attribute
/// Reference`.
pub fn write_attribute_references(names: &[String], version: ProtocolVersion) -> Vec<Ttlv> {
    names
        .iter()
        .map(|n| match (version.is_v2(), Tag::from_name(n)) {
            (false, _) => Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(n.clone())),
            (true, Some(tag)) if !is_custom(n) => {
                Ttlv::new(Tag::ATTRIBUTE_REFERENCE, Value::Enumeration(tag.0))
            }
            (true, _) => {
                let (vendor, name) = n.split_once('-').unwrap_or(("x", n));
                Ttlv::structure(
                    Tag::ATTRIBUTE_REFERENCE,
                    vec![
                        Ttlv::new(Tag::VENDOR_IDENTIFICATION, Value::TextString(vendor.to_owned())),
                        Ttlv::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.to_owned())),
                    ],
                )
            }
        })
        .collect()
}

/// The first attribute called `name`.
pub fn find<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}

/// The KMIP version that introduced a standard attribute (KMIP 1.1–1.4 "changes" annexes),
/// so responses never carry attributes the client's version does not define.
pub fn introduced_in(name: &str) -> ProtocolVersion {
    match name {
        names::FRESH
        | names::CERTIFICATE_LENGTH
        | "X.509 Certificate Identifier"
        | "X.509 Certificate Subject"
        | "X.509 Certificate Issuer"
        | "Digital Signature Algorithm" => ProtocolVersion::V1_1,
        // Their tags (0x4200B8-0x4200C1) come with 1.2's PGP Key, after 1.1's last.
        "Alternative Name"
        | names::KEY_VALUE_PRESENT
        | "Key Value Location"
        | names::ORIGINAL_CREATION_DATE => ProtocolVersion::V1_2,
        "Random Number Generator" => ProtocolVersion::V1_3,
        "PKCS#12 Friendly Name"
        | "Description"
        | "Comment"
        | names::SENSITIVE
        | names::ALWAYS_SENSITIVE
        | names::EXTRACTABLE
        | names::NEVER_EXTRACTABLE => ProtocolVersion::V1_4,
        names::ROTATE_AUTOMATIC
        | names::ROTATE_DATE
        | names::ROTATE_GENERATION
        | names::ROTATE_INTERVAL
        | names::ROTATE_LATEST
        | names::ROTATE_NAME
        | names::ROTATE_OFFSET => ProtocolVersion::V2_1,
        "NIST Key Type" => ProtocolVersion::V2_0,
        names::KEY_FORMAT_TYPE
        | names::SHORT_UNIQUE_IDENTIFIER
        | names::PROTECTION_STORAGE_MASK
        | "Protection Level"
        | "Protection Period"
        | "Quantum Safe" => ProtocolVersion::V2_0,
        // The certificate name attributes of KMIP 2.0 (§4.16–17 of 2.1) replaced 1.x's
        // X.509 Certificate Subject and Issuer structures.
        n if n.starts_with("Certificate Subject ") || n.starts_with("Certificate Issuer ") => {
            ProtocolVersion::V2_0
        }
        _ => ProtocolVersion::V1_0,
    }
}

/// Whether `name` may be returned to a client speaking `version`: 2.x dropped Operation
/// Policy Name, and clients see only what their version defines.
pub fn visible_in(name: &str, version: ProtocolVersion) -> bool {
    if version.is_v2() && name == names::OPERATION_POLICY_NAME {
        return false;
    }
    is_custom(name) || introduced_in(name) <= version
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_models_read_alike() {
        let name = Value::Structure(vec![
            Ttlv::new(Tag::NAME_VALUE, Value::TextString("k".into())),
            Ttlv::new(Tag::NAME_TYPE, Value::Enumeration(1)),
        ]);
        let a = Attribute::new(names::NAME, name);
        assert_eq!(Attribute::from_v1(&a.to_v1()).unwrap(), a);
        assert_eq!(Attribute::from_v2(&a.to_v2()).unwrap(), a);
        let custom = Attribute::new("x-Product", Value::TextString("vSphere".into()));
        assert_eq!(custom.to_v2().tag, Tag::ATTRIBUTE);
        assert_eq!(Attribute::from_v2(&custom.to_v2()).unwrap(), custom);
    }

    #[test]
    fn version_gating() {
        assert!(!visible_in(names::SENSITIVE, ProtocolVersion::V1_0));
        assert!(visible_in(names::SENSITIVE, ProtocolVersion::V1_4));
        assert!(visible_in(names::FRESH, ProtocolVersion::V1_1));
        assert!(!visible_in(names::ORIGINAL_CREATION_DATE, ProtocolVersion::V1_1));
        assert!(visible_in(names::ORIGINAL_CREATION_DATE, ProtocolVersion::V1_2));
        assert!(visible_in("x-Vendor", ProtocolVersion::V1_0));
        assert!(!visible_in(names::OPERATION_POLICY_NAME, ProtocolVersion::V2_1));
        assert!(!visible_in(names::KEY_FORMAT_TYPE, ProtocolVersion::V1_4));
        assert!(visible_in(names::KEY_FORMAT_TYPE, ProtocolVersion::V2_0));
        assert!(!visible_in(names::ROTATE_INTERVAL, ProtocolVersion::V2_0));
        assert!(visible_in(names::ROTATE_INTERVAL, ProtocolVersion::V2_1));
        assert!(!visible_in(names::SHORT_UNIQUE_IDENTIFIER, ProtocolVersion::V1_4));
        assert!(visible_in(names::PROTECTION_STORAGE_MASK, ProtocolVersion::V2_1));
        assert!(!visible_in("Certificate Subject CN", ProtocolVersion::V1_4));
        assert!(visible_in("Certificate Subject CN", ProtocolVersion::V2_1));
    }
}

/// The Usage Limits attribute (KMIP 1.4 §3.21, KMIP 2.1 §4.61): how much protection a key
/// may still apply, in bytes or in objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageLimits {
    /// Usage Limits Total: the allowance the object started with.
    pub total: i64,
    /// Usage Limits Count: what is left of it.
    pub count: i64,
    /// Usage Limits Unit.
    pub unit: crate::enums::UsageLimitsUnit,
}

impl UsageLimits {
    /// Reads the attribute's value; a missing Count means the whole Total is left.
    pub fn from_value(value: &Value) -> Result<Self, FieldError> {
        let item = Ttlv::new(Tag::USAGE_LIMITS, value.clone());
        let total = item.require(Tag::USAGE_LIMITS_TOTAL)?.as_i64()?;
        let count = item.find(Tag::USAGE_LIMITS_COUNT).map(Ttlv::as_i64).transpose()?;
        let unit = crate::enums::UsageLimitsUnit(item.require(Tag::USAGE_LIMITS_UNIT)?.as_enum()?);
        Ok(UsageLimits { total, count: count.unwrap_or(total), unit })
    }

    /// The attribute's value.
    pub fn to_value(self) -> Value {
        Value::Structure(vec![
            Ttlv::new(Tag::USAGE_LIMITS_TOTAL, Value::LongInteger(self.total)),
            Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(self.count)),
            Ttlv::new(Tag::USAGE_LIMITS_UNIT, Value::Enumeration(self.unit.0)),
        ])
    }
}
