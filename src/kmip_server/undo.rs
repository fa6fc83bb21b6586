//! Batch Error Continuation Option Undo (KMIP 1.4 §6.7 and §7.1): when an item of such a
//! batch fails, the items before it are taken back and answered Operation Undone. Before
//! each item the objects it may change are copied (those it names, or the ID Placeholder,
//! and the objects they link to); after a failure they are put back, and the objects the
//! batch created are removed, from the store and from the HSM. An object is put back only
//! while no one else has changed it since (its version), and undone items answer with the
//! identifiers of their payload only (an undone Encrypt gives no ciphertext, an undone Get
//! no key). Operations whose effects
//! cannot be taken back (a certificate the CA issued, a key-pair half destroyed in the HSM,
//! an allocation handed out, an Import that may replace an object) are refused in such a
//! batch, which undoes the rest.

use kmip::attributes::Attribute;
use kmip::enums::{ObjectType, Operation};
use kmip::message::RequestBatchItem;
use kmip::{Tag, Ttlv, Value};

use super::error::OpError;
use super::ops::OpCtx;
use crate::store::ObjectRow;

/// An object as it was before an item ran.
type Snapshot = (ObjectRow, Vec<Attribute>);

/// What one successful item changed.
struct Entry {
    /// Its position in the response.
    item: usize,
    operation: Operation,
    before: Vec<Snapshot>,
    /// The version each object in `before` had after the item: it is put back only if it
    /// is still there (no one else has changed it since).
    after: Vec<Option<i64>>,
    created: Vec<String>,
}

/// The successful items of an Undo batch so far.
#[derive(Default)]
pub(crate) struct Journal {
    entries: Vec<Entry>,
}

/// Operations that make new objects, whose response names them.
const CREATING: [Operation; 6] = [
    Operation::CREATE,
    Operation::CREATE_KEY_PAIR,
    Operation::REGISTER,
    Operation::DERIVE_KEY,
    Operation::RE_KEY,
    Operation::RE_KEY_KEY_PAIR,
];

impl Journal {
    /// Before `bi` runs: refuses it when it cannot be undone, else copies the objects it
    /// may change.
    pub(crate) async fn before(
        &self,
        cx: &OpCtx<'_>,
        bi: &RequestBatchItem,
    ) -> Result<Vec<Snapshot>, OpError> {
        match bi.operation {
            // The CA's record of an issued certificate stays (and it could be revoked, not
            // unissued).
            Operation::CERTIFY | Operation::RE_CERTIFY => {
                return Err(OpError::Unsupported(
                    "a Certify or Re-certify cannot be undone: leave out Undo",
                ))
            }
            Operation::GET_USAGE_ALLOCATION => {
                return Err(OpError::Unsupported(
                    "a Get Usage Allocation cannot be undone: leave out Undo",
                ))
            }
            // It may replace (delete) an object first, which a snapshot cannot bring back.
            Operation::IMPORT => {
                return Err(OpError::Unsupported("an Import cannot be undone: leave out Undo"))
            }
            _ => {}
        }
        // Re-key Key Pair names its pair by the Private Key Unique Identifier.
        let mut ids: Vec<String> =
            uids(&bi.payload, &[Tag::UNIQUE_IDENTIFIER, Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER]);
        if ids.is_empty() {
            ids.extend(cx.placeholder.clone());
        }
        let direct = ids.len();
        let mut snapshots: Vec<Snapshot> = Vec::new();
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i].clone();
            i += 1;
            if snapshots.iter().any(|(row, _)| row.id == id) {
                continue;
            }
            let Some(row) = cx.state.store.object(&id).await? else { continue };
            if bi.operation == Operation::DESTROY && super::ops::is_key_pair_half(&row) {
                return Err(OpError::Unsupported(
                    "destroying a key-pair half in the HSM cannot be undone: leave out Undo",
                ));
            }
            // A certificate revoked goes on its CA's CRL, which is not taken back.
            if bi.operation == Operation::REVOKE
                && row.object_type == i64::from(ObjectType::CERTIFICATE.0)
            {
                return Err(OpError::Unsupported(
                    "revoking a certificate cannot be undone: leave out Undo",
                ));
            }
            let attributes = cx.state.store.attributes(&id).await?;
            // Re-keying a pair links the old public key too: follow links one step.
            if i <= direct {
                for a in attributes.iter().filter(|a| a.name == "Link") {
                    if let Some(target) = linked(&a.value) {
                        ids.push(target);
                    }
                }
            }
            snapshots.push((row, attributes));
        }
        Ok(snapshots)
    }

    /// Records that item `item` succeeded with `payload`.
    pub(crate) async fn after(
        &mut self,
        cx: &OpCtx<'_>,
        item: usize,
        operation: Operation,
        before: Vec<Snapshot>,
        payload: &[Ttlv],
    ) {
        let mut after = Vec::with_capacity(before.len());
        for (row, _) in &before {
            // Unknown (a read that failed): not put back.
            after.push(cx.state.store.object(&row.id).await.ok().flatten().map(|r| r.version));
        }
        let created = if CREATING.contains(&operation) {
            let response = Ttlv::structure(Tag::RESPONSE_PAYLOAD, payload.to_vec());
            let tags = [
                Tag::UNIQUE_IDENTIFIER,
                Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
                Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
            ];
            uids(&response, &tags)
                .into_iter()
                .filter(|id| !before.iter().any(|(row, _)| &row.id == id))
                .collect()
        } else {
            Vec::new()
        };
        self.entries.push(Entry { item, operation, before, after, created });
    }

    /// Takes back every recorded item, newest first; returns the positions of the items
    /// undone. An item whose undoing fails keeps its Success (and is logged).
    pub(crate) async fn rollback(self, cx: &OpCtx<'_>) -> Vec<usize> {
        let mut undone = Vec::new();
        // Each object this rollback put back: the version it is at now, and the version the
        // snapshot put back was taken at.
        let mut restored = std::collections::HashMap::new();
        for entry in self.entries.into_iter().rev() {
            match undo(cx, &entry, &mut restored).await {
                Ok(()) => {
                    let object = entry.created.first().or(entry.before.first().map(|(r, _)| &r.id));
                    super::dispatch::audit_undone(cx, entry.operation, object.cloned()).await;
                    undone.push(entry.item);
                }
                Err(e) => {
                    tracing::error!(error = %e, op = ?entry.operation, "undoing a batch item failed");
                }
            }
        }
        undone
    }
}

async fn undo(
    cx: &OpCtx<'_>,
    entry: &Entry,
    restored: &mut std::collections::HashMap<String, (i64, i64)>,
) -> Result<(), OpError> {
    let conflict = |id: &str| OpError::Store(crate::store::StoreError::Conflict(id.to_owned()));
    // What to put back, at which version: an object the item did not change is left as it
    // is. One that a later item's undoing put back is at that undoing's version, which is
    // as this item left it only if that later item found it so (nobody changed it between).
    let mut plan = Vec::new();
    for ((row, attributes), after) in entry.before.iter().zip(&entry.after) {
        let Some(after) = *after else { return Err(conflict(&row.id)) };
        if after == row.version {
            continue;
        }
        let expected = match restored.get(&row.id) {
            Some(&(now, as_found)) if as_found == after => now,
            Some(_) => return Err(conflict(&row.id)),
            None => after,
        };
        plan.push((row, attributes, expected));
    }
    // All checked before anything is taken back, so that an undo that cannot be whole
    // leaves the item as it succeeded.
    for (row, _, expected) in &plan {
        if cx.state.store.object(&row.id).await?.map(|r| r.version) != Some(*expected) {
            return Err(conflict(&row.id));
        }
    }
    for id in &entry.created {
        // Key pairs and registered private keys also live in the HSM.
        let hsm_id = id.clone();
        cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await?;
        cx.state.store.delete_object(id).await?;
    }
    for (row, attributes, expected) in plan.into_iter().rev() {
        cx.state.store.restore_object(row, attributes, expected).await?;
        restored.insert(row.id.clone(), (expected + 1, row.version));
    }
    Ok(())
}

/// The text identifiers directly under `payload` with one of `tags`.
fn uids(payload: &Ttlv, tags: &[Tag]) -> Vec<String> {
    payload
        .children()
        .iter()
        .filter(|t| tags.contains(&t.tag))
        .filter_map(|t| match &t.value {
            Value::TextString(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The Linked Object Identifier of a Link attribute's value.
fn linked(value: &Value) -> Option<String> {
    let Value::Structure(fields) = value else { return None };
    fields.iter().find(|f| f.tag == Tag::LINKED_OBJECT_IDENTIFIER).and_then(|f| match &f.value {
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    })
}
