//! Versioned keys for databases' transparent data encryption (TDE). Key `NAME` on the mount
//! `M` is the managed AES key whose KMIP Name is `M/NAME`; its versions are the chain of
//! re-keyed objects (each replacement links to the key it replaced), the oldest being
//! version 1 and the named one the latest. So a KMIP client that Re-keys `M/NAME` adds a
//! version, and keys made here are ordinary managed objects to KMIP clients.
//!
//! The operations run the KMIP handlers, with the caller already authorised by the API's
//! policies; only how keys are found and numbered lives here.

use kmip::attributes::{names, Attribute};
use kmip::enums::{usage_mask, CryptographicAlgorithm, LinkType, ObjectType, State};
use kmip::{Tag, Ttlv, Value};

use crate::kmip_server::error::OpError;
use crate::kmip_server::ops::key_pair::linked;
use crate::kmip_server::ops::{self, effective_state, OpCtx};
use crate::store::{LocateQuery, ObjectRow, StoreError};

/// Re-key chains longer than this are refused as corrupt rather than walked forever.
const MAX_VERSIONS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TdeError {
    #[error("key {0} does not exist")]
    NoKey(String),
    #[error("key {name} has no version {version}")]
    NoVersion { name: String, version: u32 },
    #[error("key {name} version {version} has been destroyed")]
    Destroyed { name: String, version: u32 },
    #[error("key {name} version {version} cannot be used now: {source}")]
    Unusable {
        name: String,
        version: u32,
        #[source]
        source: Box<OpError>,
    },
    #[error("key {0} already exists; rotate it to add a version")]
    Exists(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error(
        "key {name} version {version} may still be needed to decrypt data a database wrote \
         with it{last_read}; destroying it makes that data unreadable for good. Send \
         force=true to destroy it anyway"
    )]
    NeedsForce { name: String, version: u32, last_read: String },
    #[error(
        "version {version} is key {name}'s latest, or the one a database encrypts with: \
         rotate the key first, or delete the whole key"
    )]
    Latest { name: String, version: u32 },
    #[error("more than one managed key is named {0}; rename all but one")]
    Ambiguous(String),
    #[error("the re-key chain of key {0} is broken or too long")]
    BrokenChain(String),
    #[error(transparent)]
    Op(#[from] OpError),
}

impl From<StoreError> for TdeError {
    fn from(e: StoreError) -> TdeError {
        TdeError::Op(OpError::Store(e))
    }
}

/// One version of a key: its number (from 1) and its managed object.
#[derive(Debug)]
pub(crate) struct Version {
    pub(crate) number: u32,
    pub(crate) row: ObjectRow,
}

impl Version {
    pub(crate) fn destroyed(&self, now: i64) -> bool {
        matches!(effective_state(&self.row, now), State::DESTROYED | State::DESTROYED_COMPROMISED)
    }
}

/// Key material of one version, as read for a database.
pub(crate) struct KeyMaterial {
    pub(crate) version: u32,
    pub(crate) object_id: String,
    pub(crate) created: i64,
    pub(crate) material: Vec<u8>,
}

/// The TDE mount: its name and a lock that keeps two creations of one key apart.
#[derive(Clone)]
pub(crate) struct Tde {
    pub(crate) mount: String,
    create_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Key names are what databases use as ids: MariaDB asks for numbers, others for names.
pub(crate) fn check_name(name: &str) -> Result<(), TdeError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(TdeError::Invalid("key names are 1 to 128 letters, digits, '-', '_' or '.'"))
    }
}

/// The number of the newest version in use at `now`: one scheduled for later (a KMIP
/// Re-key with an Offset leaves it Pre-Active) takes over once it activates.
fn in_use(versions: &[Version], now: i64) -> u32 {
    let active = |v: &Version| effective_state(&v.row, now) != State::PRE_ACTIVE;
    versions.iter().rposition(active).map_or(versions.len(), |i| i + 1) as u32
}

impl Tde {
    pub(crate) fn new(mount: String) -> Tde {
        Tde { mount, create_lock: Default::default() }
    }

    /// The KMIP Name of key `name`.
    pub(crate) fn object_name(&self, name: &str) -> String {
        format!("{}/{name}", self.mount)
    }

    /// Every version of key `name`, oldest first.
    pub(crate) async fn versions(
        &self,
        cx: &OpCtx<'_>,
        name: &str,
    ) -> Result<Vec<Version>, TdeError> {
        check_name(name)?;
        let full = self.object_name(name);
        let q = LocateQuery {
            all_owners: true,
            object_type: Some(i64::from(ObjectType::SYMMETRIC_KEY.0)),
            storage_mask: 7,
            attributes: vec![(names::NAME.to_owned(), full.clone())],
            limit: Some(2),
            ..LocateQuery::default()
        };
        let (total, ids) = cx.state.store.locate(&q).await?;
        let latest = match (total, ids.first()) {
            (0, _) | (_, None) => return Err(TdeError::NoKey(name.to_owned())),
            (1, Some(id)) => id.clone(),
            _ => return Err(TdeError::Ambiguous(full)),
        };
        let mut chain: Vec<ObjectRow> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut next = Some(latest);
        let broken = || TdeError::BrokenChain(name.to_owned());
        while let Some(id) = next {
            if chain.len() >= MAX_VERSIONS || !seen.insert(id.clone()) {
                return Err(broken());
            }
            let row = cx.state.store.object(&id).await?.ok_or_else(broken)?;
            let attrs = cx.state.store.attributes(&id).await?;
            // Links are the client's to set too (KMIP 1.4 §3.35): an older version counts
            // only if Re-key made it so, the same owner's symmetric key pointing back at
            // its successor, or a key's owner could make the API serve any object.
            if let Some(successor) = chain.last() {
                let replaced_by = linked(&attrs, LinkType::REPLACEMENT_OBJECT_LINK);
                if row.owner != successor.owner
                    || row.object_type != successor.object_type
                    || replaced_by.as_deref() != Some(successor.id.as_str())
                {
                    return Err(broken());
                }
            }
            next = linked(&attrs, LinkType::REPLACED_OBJECT_LINK);
            chain.push(row);
        }
        chain.reverse();
        Ok(chain.into_iter().zip(1..).map(|(row, number)| Version { number, row }).collect())
    }

    /// Key material for a database: `version`, or the latest when `None`. The latest must
    /// be usable for encryption now; an older version only for decryption (so keys that
    /// were deactivated still decrypt, as KMIP allows).
    pub(crate) async fn read(
        &self,
        cx: &OpCtx<'_>,
        name: &str,
        version: Option<u32>,
    ) -> Result<KeyMaterial, TdeError> {
        let mut versions = self.versions(cx, name).await?;
        let number = version.unwrap_or_else(|| in_use(&versions, cx.now));
        if number == 0 || number as usize > versions.len() {
            return Err(TdeError::NoVersion { name: name.to_owned(), version: number });
        }
        let v = versions.swap_remove(number as usize - 1);
        if v.destroyed(cx.now) {
            return Err(TdeError::Destroyed { name: name.to_owned(), version: number });
        }
        let stored = cx.state.store.attributes(&v.row.id).await?;
        // A Sensitive key leaves only wrapped (KMIP 2.1 §4.55), which this API cannot do.
        if ops::is_sensitive(&stored) {
            let source = Box::new(OpError::Sensitive(v.row.id.clone()));
            return Err(TdeError::Unusable { name: name.to_owned(), version: number, source });
        }
        let (op, protecting, bit) = match version {
            None => ("Encrypt", true, usage_mask::ENCRYPT),
            Some(_) => ("Decrypt", false, usage_mask::DECRYPT),
        };
        ops::check_use(&v.row, &stored, cx.now, op, protecting, bit).map_err(|source| {
            TdeError::Unusable { name: name.to_owned(), version: number, source: Box::new(source) }
        })?;
        let sealed = v
            .row
            .sealed_material
            .clone()
            .ok_or_else(|| TdeError::Destroyed { name: name.to_owned(), version: number })?;
        let aad = v.row.id.clone();
        let material = cx.state.hsm.open_sealed_async(sealed, aad).await.map_err(OpError::from)?;
        if v.row.fresh {
            cx.state.store.mark_served(&v.row.id).await?;
        }
        Ok(KeyMaterial {
            version: number,
            object_id: v.row.id,
            created: v.row.initial_date,
            material,
        })
    }

    /// Creates key `name`, version 1: an AES key generated in the HSM, active at once,
    /// for encryption and decryption, owned by `cx`'s principal.
    pub(crate) async fn create(
        &self,
        cx: &OpCtx<'_>,
        name: &str,
        bits: i32,
    ) -> Result<String, TdeError> {
        if ![128, 192, 256].contains(&bits) {
            return Err(TdeError::Invalid("AES keys are 128, 192 or 256 bits long"));
        }
        let _one_at_a_time = self.create_lock.lock().await;
        // Replicas sharing the store too: two keys with one name would make it unusable.
        let exclusive = format!("tde-create/{}", self.object_name(name));
        let _no_other_replica =
            cx.state.store.exclusive(&exclusive).await.map_err(OpError::from)?;
        match self.versions(cx, name).await {
            Err(TdeError::NoKey(_)) => {}
            Ok(_) | Err(TdeError::Ambiguous(_)) => return Err(TdeError::Exists(name.to_owned())),
            Err(e) => return Err(e),
        }
        let attributes = vec![
            Attribute::new(
                names::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(CryptographicAlgorithm::AES.0),
            ),
            Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
            Attribute::new(
                names::CRYPTOGRAPHIC_USAGE_MASK,
                Value::Integer(usage_mask::ENCRYPT | usage_mask::DECRYPT),
            ),
            Attribute::new(
                names::NAME,
                Value::Structure(vec![
                    Ttlv::new(Tag::NAME_VALUE, Value::TextString(self.object_name(name))),
                    Ttlv::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                ]),
            ),
            Attribute::new(names::ACTIVATION_DATE, Value::DateTime(cx.now)),
        ];
        let req = kmip::ops::create::Request { object_type: ObjectType::SYMMETRIC_KEY, attributes };
        let outcome = ops::create::handle(cx, req).await?;
        outcome.object_id.ok_or(TdeError::BrokenChain(name.to_owned()))
    }

    /// Adds a version to key `name` by re-keying its latest version (KMIP Re-key: the new
    /// key takes the name and the attributes); returns the new version's number and id.
    pub(crate) async fn rotate(
        &self,
        cx: &OpCtx<'_>,
        name: &str,
    ) -> Result<(u32, String), TdeError> {
        let versions = self.versions(cx, name).await?;
        let latest = versions.last().ok_or_else(|| TdeError::NoKey(name.to_owned()))?;
        // The new version belongs to the key's owner, whoever rotates it.
        let owner = crate::authz::Principal::named(&latest.row.owner);
        let as_owner = OpCtx {
            state: cx.state,
            principal: &owner,
            version: cx.version,
            now: cx.now,
            placeholder: None,
            operation: kmip::enums::Operation::RE_KEY,
            policy_authorised: cx.policy_authorised,
            import: None,
        };
        let outcome = ops::rekey::renew(&as_owner, &latest.row.id).await?;
        let id = outcome.object_id.ok_or(TdeError::BrokenChain(name.to_owned()))?;
        Ok((latest.number + 1, id))
    }

    /// Destroys the given versions (all when empty, which also frees the name): each is
    /// revoked if still active, then its material is removed. Refused without `force`, since a database may still hold
    /// data encrypted under any version. Returns the versions destroyed now.
    pub(crate) async fn destroy(
        &self,
        cx: &mut OpCtx<'_>,
        name: &str,
        wanted: &[u32],
        force: bool,
    ) -> Result<Vec<u32>, TdeError> {
        let versions = self.versions(cx, name).await?;
        if let Some(&missing) = wanted.iter().find(|&&n| n == 0 || n as usize > versions.len()) {
            return Err(TdeError::NoVersion { name: name.to_owned(), version: missing });
        }
        // Destroying every version, by number or not, deletes the key (the name is freed).
        let whole = versions.iter().all(|v| wanted.contains(&v.number) || v.destroyed(cx.now));
        let wanted = if whole { &[][..] } else { wanted };
        let selected: Vec<&Version> = versions
            .iter()
            .filter(|v| wanted.is_empty() || wanted.contains(&v.number))
            .filter(|v| !v.destroyed(cx.now))
            .collect();
        // Without its latest version a key could neither be rotated (Re-key refuses a
        // destroyed key) nor made again (the name is taken): stuck. Nor may the version
        // in use go while a later one waits to activate.
        let needed =
            versions.last().map(|l| l.number).into_iter().chain([in_use(&versions, cx.now)]);
        if let Some(version) = needed.into_iter().find(|n| !wanted.is_empty() && wanted.contains(n))
        {
            return Err(TdeError::Latest { name: name.to_owned(), version });
        }
        if let Some(v) = selected.first().filter(|_| !force) {
            cx.state.store.flush().await; // so the latest reads are in the audit trail
            let last_read = match cx.state.store.last_api_read(&v.row.id).await? {
                Some((at, who)) => format!(" (last read {} by {who})", crate::util::rfc3339(at)),
                None => String::new(),
            };
            return Err(TdeError::NeedsForce {
                name: name.to_owned(),
                version: v.number,
                last_read,
            });
        }
        let mut done = Vec::new();
        for v in selected {
            let id = Some(v.row.id.clone());
            if matches!(effective_state(&v.row, cx.now), State::PRE_ACTIVE | State::ACTIVE) {
                cx.operation = kmip::enums::Operation::REVOKE;
                let req = kmip::ops::revoke::Request {
                    unique_identifier: id.clone(),
                    reason: kmip::enums::RevocationReasonCode::CESSATION_OF_OPERATION,
                    message: Some(format!("TDE key {name} version {} destroyed", v.number)),
                    compromise_occurrence_date: None,
                };
                ops::revoke::handle(cx, req).await?;
            }
            cx.operation = kmip::enums::Operation::DESTROY;
            ops::destroy::handle(cx, kmip::ops::destroy::Request { unique_identifier: id }).await?;
            done.push(v.number);
        }
        // Deleting the whole key frees its name for a new key; the destroyed objects
        // keep their metadata and links, as KMIP keeps destroyed objects.
        if wanted.is_empty() {
            if let Some(latest) = versions.last() {
                let full = self.object_name(name);
                let attrs = cx.state.store.attributes(&latest.row.id).await?;
                let named = attrs.iter().find(|a| {
                    a.name == names::NAME && crate::store::match_key(names::NAME, &a.value) == full
                });
                if let Some(index) = named.map(|a| a.index.unwrap_or(0)) {
                    let id = &latest.row.id;
                    cx.state.store.delete_attribute(id, names::NAME, index.into(), cx.now).await?;
                }
            }
        }
        Ok(done)
    }
}

/// What `strongroom tde` was asked to do.
#[derive(Debug)]
pub(crate) enum CliAction {
    Create { name: String, bits: i32, owner: Option<String> },
    Rotate { name: String },
    Show { name: String },
    Destroy { name: String, versions: Vec<u32>, force: bool },
}

/// Runs a `strongroom tde` command as the local administrator; returns what to print.
pub(crate) async fn run_cli(
    state: &crate::app::AppState,
    action: CliAction,
) -> Result<String, TdeError> {
    let admin = crate::authz::Principal::named(match &action {
        CliAction::Create { owner: Some(owner), .. } => owner,
        _ => "local administrator",
    });
    let mut cx = OpCtx {
        state,
        principal: &admin,
        version: kmip::ProtocolVersion::V2_1,
        now: crate::util::now(),
        placeholder: None,
        operation: kmip::enums::Operation::CREATE,
        policy_authorised: true,
        import: None,
    };
    let tde = &state.tde;
    Ok(match action {
        CliAction::Create { name, bits, .. } => {
            let id = tde.create(&cx, &name, bits).await?;
            format!("key {name} version 1: {id}")
        }
        CliAction::Rotate { name } => {
            let (version, id) = tde.rotate(&cx, &name).await?;
            format!("key {name} version {version}: {id}")
        }
        CliAction::Show { name } => {
            let lines: Vec<String> = tde
                .versions(&cx, &name)
                .await?
                .iter()
                .map(|v| {
                    let state = effective_state(&v.row, cx.now);
                    let state = state.name().map_or_else(|| state.0.to_string(), str::to_owned);
                    format!(
                        "key {name} version {}: {} {state} owner {}",
                        v.number, v.row.id, v.row.owner
                    )
                })
                .collect();
            lines.join("\n")
        }
        CliAction::Destroy { name, versions, force } => {
            let done = tde.destroy(&mut cx, &name, &versions, force).await?;
            let done: Vec<String> = done.iter().map(u32::to_string).collect();
            format!("key {name}: destroyed versions {}", done.join(", "))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        for good in ["1", "4294967295", "orders-2026", "a.b_c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "../1", "a b", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replaced_links_are_found_by_type() {
        let link = |t: LinkType, id: &str| ops::rekey::link(t, id);
        let attrs = vec![
            link(LinkType::REPLACEMENT_OBJECT_LINK, "new"),
            link(LinkType::REPLACED_OBJECT_LINK, "old"),
        ];
        assert_eq!(linked(&attrs, LinkType::REPLACED_OBJECT_LINK).as_deref(), Some("old"));
        assert_eq!(linked(&attrs[..1], LinkType::REPLACED_OBJECT_LINK), None);
    }
}
