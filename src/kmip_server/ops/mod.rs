//! One handler per KMIP operation, plus what they share: loading an object the caller may
//! use (owner, administrator or grant), its effective lifecycle state, whether a key may
//! serve a cryptographic operation now, and its full attribute list.

pub(crate) mod activate;
pub(crate) mod archive;
pub(crate) mod attributes;
pub(crate) mod certify;
pub(crate) mod create;
pub(crate) mod crypt;
pub(crate) mod derive;
pub(crate) mod destroy;
pub(crate) mod get;
pub(crate) mod get_attributes;
pub(crate) mod import;
pub(crate) mod key_pair;
pub(crate) mod locate;
pub(crate) mod mac;
pub(crate) mod pkcs11;
pub(crate) mod query;
pub(crate) mod register;
pub(crate) mod rekey;
pub(crate) mod revoke;
pub(crate) mod signature;
pub(crate) mod usage;

use kmip::attributes::{names, visible_in, Attribute};
use kmip::enums::{ObjectType, State};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

use super::error::OpError;
use crate::app::AppState;
use crate::authz::Principal;
use crate::store::{NewObject, ObjectRow};

/// What every handler gets: the service, the caller, the negotiated version, the time,
/// and the ID Placeholder left by earlier batch items.
pub(crate) struct OpCtx<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) principal: &'a Principal,
    pub(crate) version: ProtocolVersion,
    pub(crate) now: i64,
    pub(crate) placeholder: Option<String>,
    /// The operation being run, for access decisions on other owners' objects.
    pub(crate) operation: kmip::enums::Operation,
    /// Set when the caller was already authorised for the objects by an API policy (the
    /// TDE key API), so ownership and grants are not asked again.
    pub(crate) policy_authorised: bool,
    /// For Import (KMIP 2.1 §6.1.25): the Unique Identifier the new object takes, whose
    /// attributes are all set as supplied, server-managed ones included.
    pub(crate) import: Option<Import>,
}

/// Where an Import puts the object it registers.
#[derive(Clone)]
pub(crate) struct Import {
    pub(crate) id: String,
    /// The version of the object of that identifier it replaces, if any.
    pub(crate) replaces: Option<i64>,
}

/// A handler's result: the response payload and the object it concerned.
pub(crate) struct Outcome {
    pub(crate) payload: Vec<Ttlv>,
    pub(crate) object_id: Option<String>,
}

impl Outcome {
    pub(crate) fn new(payload: Vec<Ttlv>, object_id: Option<String>) -> Self {
        Outcome { payload, object_id }
    }
}

impl OpCtx<'_> {
    /// The object named by `uid`, or by the ID Placeholder when `uid` is absent.
    pub(crate) fn target(&self, uid: Option<String>) -> Result<String, OpError> {
        uid.or_else(|| self.placeholder.clone()).ok_or(OpError::NoPlaceholder)
    }

    /// Names under the TDE mount (`MOUNT/…`) belong to the TDE API, which finds a
    /// database's key by its name among every owner's objects: no KMIP request but an
    /// admin's (or a Locate) may give one, or a client could plant a key it knows, or make
    /// the name ambiguous. Checked on the request as sent, so every way of naming an
    /// object (Create, Register, Add or Modify Attribute, ...) is covered.
    pub(crate) fn check_reserved_names(&self, payload: &Ttlv) -> Result<(), OpError> {
        fn names_under(t: &Ttlv, mount: &str) -> bool {
            let under = |s: &str| s.strip_prefix(mount).is_some_and(|rest| rest.starts_with('/'));
            (t.tag == Tag::NAME_VALUE && t.as_text().is_ok_and(under))
                || t.children().iter().any(|c| names_under(c, mount))
        }
        let mount = self.state.tde.mount.as_str();
        if !names_under(payload, mount) || self.policy_authorised || self.is_admin() {
            return Ok(());
        }
        Err(OpError::ReservedName(format!("{mount}/")))
    }

    /// Stores a new object: as imported when this is an Import, else through the
    /// writer's group commit.
    pub(crate) async fn insert(&self, new: NewObject<'_>) -> Result<(), OpError> {
        match &self.import {
            Some(import) => self.state.store.import_object(new, import.replaces).await?,
            None => self.state.store.insert_object(new).await?,
        }
        Ok(())
    }

    /// Whether the caller is an administrator (acts on every object).
    pub(crate) fn is_admin(&self) -> bool {
        self.state.admins.contains(self.principal.as_str())
    }

    /// Loads an object the caller may run this operation on: its own, any object for an
    /// administrator, or one whose owner granted the caller this operation.
    pub(crate) async fn load(&self, id: &str) -> Result<ObjectRow, OpError> {
        let row =
            self.state.store.object(id).await?.ok_or_else(|| OpError::NotFound(id.to_owned()))?;
        self.authorize(row).await
    }

    /// [`OpCtx::load`] with the object's stored attributes, read together.
    pub(crate) async fn load_with_attributes(
        &self,
        id: &str,
    ) -> Result<(ObjectRow, Vec<Attribute>), OpError> {
        let (row, stored) = self
            .state
            .store
            .object_with_attributes(id)
            .await?
            .ok_or_else(|| OpError::NotFound(id.to_owned()))?;
        Ok((self.authorize(row).await?, stored))
    }

    /// `row` if the caller may run this operation on it.
    /// Whether the caller may run `operation` on `row`: its owner, an administrator, or
    /// granted that operation by the owner.
    pub(crate) async fn may(
        &self,
        row: &ObjectRow,
        operation: kmip::enums::Operation,
    ) -> Result<bool, OpError> {
        Ok(self.policy_authorised
            || self.principal.as_str() == row.owner
            || self.is_admin()
            || self
                .state
                .store
                .is_granted(&row.id, self.principal.as_str(), operation.name().unwrap_or_default())
                .await?)
    }

    async fn authorize(&self, row: ObjectRow) -> Result<ObjectRow, OpError> {
        let id = row.id.as_str();
        if !self.may(&row, self.operation).await? {
            return Err(OpError::Denied(id.to_owned()));
        }
        // Archived objects keep their attributes on-line, nothing else (KMIP 1.4 §4.22).
        use kmip::enums::Operation as Op;
        let metadata_only = matches!(
            self.operation,
            Op::GET_ATTRIBUTES | Op::GET_ATTRIBUTE_LIST | Op::RECOVER | Op::ARCHIVE | Op::DESTROY
        );
        if row.archived && !metadata_only {
            return Err(OpError::Archived(id.to_owned()));
        }
        Ok(row)
    }
}

/// Whether `row` is a key-pair half, whose key lives in the HSM under its identifier.
pub(crate) fn is_key_pair_half(row: &ObjectRow) -> bool {
    [ObjectType::PRIVATE_KEY.0, ObjectType::PUBLIC_KEY.0]
        .contains(&u32::try_from(row.object_type).unwrap_or(0))
}

/// Whether the attributes say Sensitive (KMIP 2.1 §4.55): the object leaves only wrapped.
pub(crate) fn is_sensitive(attrs: &[Attribute]) -> bool {
    kmip::attributes::find(attrs, names::SENSITIVE).is_some_and(|a| a.value == Value::Boolean(true))
}

/// The state of `row` at `now`, with Activation and Deactivation Dates applied
/// (KMIP 1.4 §3.22 state transitions).
pub(crate) fn effective_state(row: &ObjectRow, now: i64) -> State {
    let state = State(row.state as u32);
    let due = |d: Option<i64>| d.is_some_and(|d| d <= now);
    if matches!(state, State::PRE_ACTIVE | State::ACTIVE) && due(row.deactivation_date) {
        return State::DEACTIVATED;
    }
    if state == State::PRE_ACTIVE && due(row.activation_date) {
        return State::ACTIVE;
    }
    state
}

/// Brings the stored state up to date with the dates before a state change.
pub(crate) fn refresh_state(row: &mut ObjectRow, now: i64) {
    row.state = i64::from(effective_state(row, now).0);
}

/// Every attribute of an object the client may see (its protocol version defines): the
/// server-managed ones derived from the lifecycle columns, then the stored ones.
pub(crate) fn all_attributes(
    cx: &OpCtx<'_>,
    row: &ObjectRow,
    stored: Vec<Attribute>,
) -> Vec<Attribute> {
    use sha2::Digest as _;
    let (now, version, lease_time) = (cx.now, cx.version, cx.state.kmip_lease_time);
    let date = |d: i64| Value::DateTime(d);
    // Where the protection is (KMIP 2.1 §12.2): the HSM's keys protect every object, and
    // SoftHSM is software.
    let storage = if cx.state.hsm.is_softhsm() { 0x1 } else { 0x2 };
    let mut out = vec![
        Attribute::new(names::UNIQUE_IDENTIFIER, Value::TextString(row.id.clone())),
        Attribute::new(
            names::SHORT_UNIQUE_IDENTIFIER,
            Value::ByteString(sha2::Sha256::digest(row.id.as_bytes()).to_vec()),
        ),
        Attribute::new(names::PROTECTION_STORAGE_MASK, Value::Integer(storage)),
        Attribute::new(names::OBJECT_TYPE, Value::Enumeration(row.object_type as u32)),
        Attribute::new(names::STATE, Value::Enumeration(effective_state(row, now).0)),
        Attribute::new(names::INITIAL_DATE, date(row.initial_date)),
        Attribute::new(names::LAST_CHANGE_DATE, date(row.last_change_date)),
        Attribute::new(names::ORIGINAL_CREATION_DATE, date(row.initial_date)),
    ];
    let optional_dates = [
        (names::ACTIVATION_DATE, row.activation_date),
        (names::DEACTIVATION_DATE, row.deactivation_date),
        (names::DESTROY_DATE, row.destroy_date),
        (names::COMPROMISE_DATE, row.compromise_date),
        (names::COMPROMISE_OCCURRENCE_DATE, row.compromise_occurrence_date),
    ];
    for (name, d) in optional_dates {
        if let Some(d) = d {
            out.push(Attribute::new(name, date(d)));
        }
    }
    if let Some(code) = row.revocation_reason {
        let mut c = vec![Ttlv::new(Tag::REVOCATION_REASON_CODE, Value::Enumeration(code as u32))];
        if let Some(m) = &row.revocation_message {
            c.push(Ttlv::new(Tag::REVOCATION_MESSAGE, Value::TextString(m.clone())));
        }
        out.push(Attribute::new(names::REVOCATION_REASON, Value::Structure(c)));
    }
    // Key Value Present (KMIP 1.4 §3.46) pairs with Key Value Location for keys registered
    // without their value, which this server does not take: it is not reported, as the
    // OASIS reference responses do not report it.
    // Private keys stay in the HSM; everything else clients may Get in clear. (A private
    // key the HSM cannot hold, such as DSA, is kept sealed like a symmetric key, and is
    // described as what it is.)
    let in_hsm_only =
        row.object_type == i64::from(ObjectType::PRIVATE_KEY.0) && row.sealed_material.is_none();
    let is_key = [
        ObjectType::PRIVATE_KEY.0,
        ObjectType::SYMMETRIC_KEY.0,
        ObjectType::PUBLIC_KEY.0,
        ObjectType::SECRET_DATA.0,
    ]
    .contains(&(row.object_type as u32));
    if is_key {
        // Private keys never leave the HSM; other keys are Sensitive when the client says.
        let flag = |name| stored.iter().any(|a| a.name == name && a.value == Value::Boolean(true));
        let (sensitive, always) =
            (in_hsm_only || flag(names::SENSITIVE), in_hsm_only || flag(names::ALWAYS_SENSITIVE));
        for (name, v) in [
            (names::SENSITIVE, sensitive),
            (names::ALWAYS_SENSITIVE, always),
            (names::EXTRACTABLE, !in_hsm_only),
            (names::NEVER_EXTRACTABLE, in_hsm_only),
        ] {
            out.push(Attribute::new(name, Value::Boolean(v)));
        }
        out.push(Attribute::new(names::FRESH, Value::Boolean(row.fresh)));
        if lease_time > 0 {
            out.push(Attribute::new(names::LEASE_TIME, Value::Interval(lease_time)));
        }
        if let Some(format) = row.key_format {
            out.push(Attribute::new(names::KEY_FORMAT_TYPE, Value::Enumeration(format as u32)));
        }
    }
    let derived = |n: &str| is_key && (n == names::SENSITIVE || n == names::ALWAYS_SENSITIVE);
    out.extend(stored.into_iter().filter(|a| !derived(&a.name)));
    out.retain(|a| visible_in(&a.name, version));
    out
}

/// Checks that a key may serve `op` now (KMIP 1.4 §3.22, §3.25, §3.26): protecting
/// (encrypt, sign, MAC) needs an Active key before its Protect Stop Date; processing
/// (decrypt, verify) also accepts Deactivated and Compromised keys, from the Process Start
/// Date. The Cryptographic Usage Mask, when set, must include `bit`.
pub(crate) fn check_use(
    row: &ObjectRow,
    stored: &[Attribute],
    now: i64,
    op: &'static str,
    protecting: bool,
    bit: i32,
) -> Result<(), OpError> {
    let state = effective_state(row, now);
    let date = |name| match kmip::attributes::find(stored, name).map(|a| &a.value) {
        Some(Value::DateTime(d)) => Some(*d),
        _ => None,
    };
    let usable = if protecting {
        state == State::ACTIVE && date(names::PROTECT_STOP_DATE).is_none_or(|d| d > now)
    } else {
        matches!(state, State::ACTIVE | State::DEACTIVATED | State::COMPROMISED)
            && date(names::PROCESS_START_DATE).is_none_or(|d| d <= now)
    };
    if !usable {
        return Err(OpError::WrongState { op, state });
    }
    match kmip::attributes::find(stored, names::CRYPTOGRAPHIC_USAGE_MASK).map(|a| &a.value) {
        Some(Value::Integer(mask)) if mask & bit == 0 => Err(OpError::UsageMask(op)),
        _ => Ok(()),
    }
}

/// How a request takes part in a multi-part operation (KMIP 1.4 §4.29: Init Indicator,
/// Correlation Value, Final Indicator).
pub(crate) enum PartOf {
    /// Single-part (no multi-part fields, or both Init and Final).
    Whole,
    /// Starts one.
    First,
    /// Continues the one named, ending it when `last`.
    Next { correlation: Vec<u8>, last: bool },
}

impl PartOf {
    pub(crate) fn of(stream: Option<&kmip::ops::Stream>) -> Result<PartOf, OpError> {
        Ok(match stream {
            None => PartOf::Whole,
            Some(st) if st.init && st.last => PartOf::Whole,
            Some(st) if st.init => {
                if st.correlation.is_some() {
                    return Err(OpError::Invalid("a first part has no Correlation Value"));
                }
                PartOf::First
            }
            Some(st) => PartOf::Next {
                correlation: st.correlation.clone().ok_or(OpError::Invalid(
                    "a part after the first needs the Correlation Value the first part returned",
                ))?,
                last: st.last,
            },
        })
    }
}

/// The object's Usage Limits (KMIP 1.4 §3.21), if it has them.
pub(crate) fn usage_limits(
    stored: &[Attribute],
) -> Result<Option<kmip::attributes::UsageLimits>, OpError> {
    kmip::attributes::find(stored, names::USAGE_LIMITS)
        .map(|a| kmip::attributes::UsageLimits::from_value(&a.value))
        .transpose()
        .map_err(OpError::from)
}

/// Charges a protecting operation over `bytes` bytes to the key's Usage Limits, when it
/// has them: the caller's allocation first, then the Usage Limits Count. Called once the
/// operation succeeded and before its result is returned, so a failed operation uses
/// nothing and a refused one returns nothing.
pub(crate) async fn charge_usage(
    cx: &OpCtx<'_>,
    id: &str,
    stored: &[Attribute],
    bytes: usize,
) -> Result<(), OpError> {
    use kmip::enums::UsageLimitsUnit;
    let Some(limits) = usage_limits(stored)? else { return Ok(()) };
    let units = match limits.unit {
        UsageLimitsUnit::BYTE => i64::try_from(bytes).unwrap_or(i64::MAX),
        _ => 1,
    };
    let principal = cx.principal.as_str();
    let store = &cx.state.store;
    match store.draw_usage(id, principal, units, crate::store::UsageDraw::Protect, cx.now).await? {
        true => Ok(()),
        false => Err(OpError::UsageLimitsExhausted(id.to_owned())),
    }
}

/// The key's own Cryptographic Parameters attribute, the defaults for requests that omit
/// some parameters.
pub(crate) fn key_parameters(
    stored: &[Attribute],
) -> Result<kmip::ops::encrypt::CryptographicParameters, OpError> {
    Ok(kmip::attributes::find(stored, "Cryptographic Parameters")
        .map(|a| {
            kmip::ops::encrypt::CryptographicParameters::from_ttlv(&Ttlv::new(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                a.value.clone(),
            ))
        })
        .transpose()?
        .unwrap_or_default())
}

/// What the server reads off an object (a certificate's subject, issuer, signature
/// algorithm) or records itself (Archive Date), which a client must not contradict: dropped
/// where a client gives it at Register (a re-registered Get Attributes dump, say), refused
/// where it would change it.
pub(crate) fn is_read_off_object(name: &str) -> bool {
    matches!(
        name,
        "Certificate Identifier"
            | "Certificate Subject"
            | "Certificate Issuer"
            | "X.509 Certificate Identifier"
            | "X.509 Certificate Subject"
            | "X.509 Certificate Issuer"
            | "Digital Signature Algorithm"
            | "Archive Date"
    )
}

/// Most attribute instances one object may have (custom ones, Names, Object Groups, ...).
pub(crate) const MAX_ATTRIBUTES: usize = 1024;

/// Attributes only the server sets (KMIP 1.4 §3, "Modifiable by client: No"), including
/// what it reads from a certificate (which a client must not be able to contradict).
pub(crate) fn is_server_managed(name: &str) -> bool {
    name.starts_with("Certificate Subject ")
        || name.starts_with("Certificate Issuer ")
        || is_read_off_object(name)
        || matches!(
            name,
            names::UNIQUE_IDENTIFIER
                | names::OBJECT_TYPE
                | names::STATE
                | names::INITIAL_DATE
                | names::LAST_CHANGE_DATE
                | names::ORIGINAL_CREATION_DATE
                | names::DESTROY_DATE
                | names::COMPROMISE_DATE
                | names::COMPROMISE_OCCURRENCE_DATE
                | names::REVOCATION_REASON
                | names::DIGEST
                | names::KEY_VALUE_PRESENT
                | names::FRESH
                | names::ALWAYS_SENSITIVE
                | names::EXTRACTABLE
                | names::NEVER_EXTRACTABLE
                | names::KEY_FORMAT_TYPE
                | names::LEASE_TIME
                | names::SHORT_UNIQUE_IDENTIFIER
                | names::PROTECTION_STORAGE_MASK
                | names::ROTATE_DATE
                | names::ROTATE_GENERATION
                | names::ROTATE_LATEST
                | "Certificate Type"
                | "Certificate Length"
        )
}

/// Refuses a Name that is not a Name Value and Name Type (KMIP 1.4 §3.2): Locate, the TDE
/// API and the reserved-name check all read a Name's text from its Name Value. And more
/// than [`MAX_ATTRIBUTES`] attributes for one object.
pub(crate) fn check_names(attrs: &[Attribute]) -> Result<(), OpError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(OpError::Invalid("an object has at most 1024 attributes"));
    }
    let well_formed = |a: &Attribute| match &a.value {
        Value::Structure(fields) => {
            fields.iter().any(|f| f.tag == Tag::NAME_VALUE && f.as_text().is_ok())
        }
        _ => false,
    };
    match attrs.iter().filter(|a| a.name == names::NAME).all(well_formed) {
        true => Ok(()),
        false => Err(OpError::Invalid("a Name is a structure of Name Value and Name Type")),
    }
}
