//! Managed objects and their attributes.

use kmip::attributes::Attribute;
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{Tag, Ttlv, Value};
use sqlx::Any;

use super::sql::{flag, Sql};
use super::{Store, StoreError};

/// A stored managed object: identity, owner, lifecycle, and wrapped material.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct ObjectRow {
    pub(crate) id: String,
    pub(crate) object_type: i64,
    pub(crate) owner: String,
    pub(crate) state: i64,
    pub(crate) sub_type: Option<i64>,
    pub(crate) key_format: Option<i64>,
    pub(crate) sealed_material: Option<Vec<u8>>,
    pub(crate) kek_label: Option<String>,
    /// SubjectPublicKeyInfo DER, for public keys.
    pub(crate) public_material: Option<Vec<u8>>,
    pub(crate) initial_date: i64,
    pub(crate) activation_date: Option<i64>,
    pub(crate) deactivation_date: Option<i64>,
    pub(crate) destroy_date: Option<i64>,
    pub(crate) compromise_date: Option<i64>,
    pub(crate) compromise_occurrence_date: Option<i64>,
    pub(crate) revocation_reason: Option<i64>,
    pub(crate) revocation_message: Option<String>,
    pub(crate) last_change_date: i64,
    /// Archived (KMIP Archive): out of on-line storage until recovered.
    #[sqlx(try_from = "super::Flag")]
    pub(crate) archived: bool,
    /// Fresh: the key material has not been served to a client yet.
    #[sqlx(try_from = "super::Flag")]
    pub(crate) fresh: bool,
    pub(crate) version: i64,
}

#[cfg(test)]
impl ObjectRow {
    /// A Pre-Active symmetric key row for tests: owned by `owner`, made at `initial`.
    pub(crate) fn for_test(id: &str, owner: &str, initial: i64) -> ObjectRow {
        ObjectRow {
            id: id.to_owned(),
            object_type: 2,
            owner: owner.to_owned(),
            state: 1,
            sub_type: None,
            key_format: Some(1),
            sealed_material: Some(vec![1, 2, 3]),
            kek_label: Some("kek".into()),
            public_material: None,
            initial_date: initial,
            activation_date: None,
            deactivation_date: None,
            destroy_date: None,
            compromise_date: None,
            compromise_occurrence_date: None,
            revocation_reason: None,
            revocation_message: None,
            last_change_date: initial,
            archived: false,
            fresh: true,
            version: 0,
        }
    }
}

/// When [`Store::add_attribute_if`] adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddIf {
    Always,
    /// No instance of the attribute exists (a single-valued attribute).
    Absent,
    /// No instance has the same value (Names are unique on an object).
    NewValue,
}

/// A new object and the attributes it is created with.
pub(crate) struct NewObject<'a> {
    pub(crate) row: ObjectRow,
    pub(crate) attributes: &'a [Attribute],
}

/// The lifecycle date columns Locate can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DateColumn {
    Initial,
    Activation,
    Deactivation,
    Destroy,
    Compromise,
    CompromiseOccurrence,
    LastChange,
}

impl DateColumn {
    fn column(self) -> &'static str {
        match self {
            DateColumn::Initial => "o.initial_date",
            DateColumn::Activation => "o.activation_date",
            DateColumn::Deactivation => "o.deactivation_date",
            DateColumn::Destroy => "o.destroy_date",
            DateColumn::Compromise => "o.compromise_date",
            DateColumn::CompromiseOccurrence => "o.compromise_occurrence_date",
            DateColumn::LastChange => "o.last_change_date",
        }
    }
}

/// Locate criteria; all must hold.
#[derive(Debug, Default)]
pub(crate) struct LocateQuery {
    pub(crate) owner: String,
    /// Administrators see every object.
    pub(crate) all_owners: bool,
    pub(crate) object_type: Option<i64>,
    /// States to match; `None` means any.
    pub(crate) states: Option<Vec<i64>>,
    /// Storage Status Mask (KMIP 1.4 §9.1.3.3.2): 1 on-line, 2 archival, 4 destroyed.
    pub(crate) storage_mask: i64,
    /// Attribute name and canonical value pairs.
    pub(crate) attributes: Vec<(String, String)>,
    /// Objects whose Cryptographic Usage Mask has all of these bits.
    pub(crate) usage_mask: Option<i64>,
    /// The object must have this identifier.
    pub(crate) id: Option<String>,
    /// Date columns that must fall in an inclusive range.
    pub(crate) date_ranges: Vec<(DateColumn, i64, i64)>,
    /// Stored date attributes (Protect Stop Date, Process Start Date, custom ones, ...) by
    /// name, one Date-Time instance of which must fall in an inclusive range.
    pub(crate) attribute_date_ranges: Vec<(String, i64, i64)>,
    pub(crate) limit: Option<i64>,
    pub(crate) offset: i64,
}

/// The canonical text of an attribute value, used for equality matching in Locate: the
/// Name Value of a Name, the decimal or text form of a primitive, hex of anything else.
pub(crate) fn match_key(name: &str, value: &Value) -> String {
    match value {
        Value::Structure(children) if name == kmip::attributes::names::NAME => children
            .iter()
            .find(|c| c.tag == Tag::NAME_VALUE)
            .and_then(|c| c.as_text().ok())
            .unwrap_or_default()
            .to_owned(),
        Value::Integer(v) => v.to_string(),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => v.to_string(),
        Value::Enumeration(v) | Value::Interval(v) => v.to_string(),
        Value::Boolean(v) => v.to_string(),
        Value::TextString(s) => s.clone(),
        Value::ByteString(b) | Value::BigInteger(b) => hex::encode(b),
        Value::Structure(_) => hex::encode(encode(&Ttlv::new(Tag::ATTRIBUTE_VALUE, value.clone()))),
    }
}

fn encode_value(value: &Value) -> Vec<u8> {
    encode(&Ttlv::new(Tag::ATTRIBUTE_VALUE, value.clone()))
}

/// What a draw on Usage Limits is for (see [`Store::draw_usage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UsageDraw {
    /// A protecting operation (Encrypt, Sign, MAC) uses the units.
    Protect,
    /// Get Usage Allocation sets them aside for the caller.
    Allocate,
}

/// One object a Re-key replaces: the new object and its attributes, the old one, and the
/// link the old one gets to the new.
pub(crate) struct Replacement<'a> {
    pub(crate) new: &'a ObjectRow,
    pub(crate) new_attributes: &'a [Attribute],
    pub(crate) old: &'a ObjectRow,
    pub(crate) old_link: &'a Attribute,
    /// Attributes that take the place of the old object's of the same name.
    pub(crate) old_replaced: &'a [Attribute],
}

impl Store {
    /// The object with `id`, if any.
    pub(crate) async fn object(&self, id: &str) -> Result<Option<ObjectRow>, StoreError> {
        Ok(sqlx::query_as::<_, ObjectRow>(SELECT_OBJECT)
            .bind(id)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
    }

    /// The stored attributes of `id`, ordered by name and index.
    pub(crate) async fn attributes(&self, id: &str) -> Result<Vec<Attribute>, StoreError> {
        let rows = sqlx::query_as(SELECT_ATTRIBUTES)
            .bind(id)
            .fetch_all(&mut *self.read.get().await?)
            .await?;
        decode_attributes(id, rows)
    }

    /// [`Store::object`] and [`Store::attributes`] together: what every cryptographic
    /// operation reads. From the cache (`cache.rs`): as kept where this process alone
    /// serves the store, after checking the object's version where replicas share it;
    /// otherwise read over one pooled connection.
    pub(crate) async fn object_with_attributes(
        &self,
        id: &str,
    ) -> Result<Option<(ObjectRow, Vec<Attribute>)>, StoreError> {
        let cache = &self.caches.objects;
        if self.caches.validate_objects {
            if let Some((row, attributes)) = cache.get(id) {
                let now: Option<(i64, super::sql::Flag)> =
                    sqlx::query_as("SELECT version, fresh FROM objects WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *self.read.get().await?)
                        .await?;
                if now.map(|(version, fresh)| (version, bool::from(fresh)))
                    == Some((row.version, row.fresh))
                {
                    return Ok(Some((row, attributes)));
                }
                cache.forget(id);
            }
        }
        super::cache::read_through(Some(cache), id, self.read_object_with_attributes(id)).await
    }

    async fn read_object_with_attributes(
        &self,
        id: &str,
    ) -> Result<Option<(ObjectRow, Vec<Attribute>)>, StoreError> {
        let mut conn = self.read.get().await?;
        let row = sqlx::query_as::<_, ObjectRow>(SELECT_OBJECT)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rows = sqlx::query_as(SELECT_ATTRIBUTES).bind(id).fetch_all(&mut *conn).await?;
        Ok(Some((row, decode_attributes(id, rows)?)))
    }

    /// Saves the lifecycle fields of `row` if nobody changed the object since it was read;
    /// bumps its version.
    pub(crate) async fn save_lifecycle(&self, row: &ObjectRow) -> Result<(), StoreError> {
        let _writing = self.writing();
        let sql = lifecycle_update!("version = version + 1 WHERE id = $13 AND version = $14");
        let done = bind_lifecycle(sqlx::query(sql), row)
            .bind(&row.id)
            .bind(row.version)
            .execute(&mut *self.write.get().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(row.id.clone()));
        }
        Ok(())
    }

    /// Adds an instance of an attribute at the next free index; returns that index.
    pub(crate) async fn add_attribute(
        &self,
        id: &str,
        attr: &Attribute,
        now: i64,
    ) -> Result<i64, StoreError> {
        let added = self.add_attribute_if(id, attr, now, AddIf::Always).await?;
        Ok(added.unwrap_or_default())
    }

    /// Adds an instance of an attribute when `only_if` holds, checked in the same
    /// transaction (so two concurrent adds cannot both pass); its index, or `None`.
    pub(crate) async fn add_attribute_if(
        &self,
        id: &str,
        attr: &Attribute,
        now: i64,
        only_if: AddIf,
    ) -> Result<Option<i64>, StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        // Touching the object first locks its row, so concurrent adds (another replica's)
        // take turns and each sees the index the other used.
        touch(&mut tx, id, now).await?;
        let clash = match only_if {
            AddIf::Always => None,
            AddIf::Absent => Some(
                sqlx::query("SELECT 1 FROM attributes WHERE object_id = $1 AND name = $2")
                    .bind(id)
                    .bind(&attr.name),
            ),
            AddIf::NewValue => Some(
                sqlx::query(
                    "SELECT 1 FROM attributes WHERE object_id = $1 AND name = $2 AND value = $3",
                )
                .bind(id)
                .bind(&attr.name)
                .bind(encode_value(&attr.value)),
            ),
        };
        if let Some(q) = clash {
            if q.fetch_optional(&mut *tx).await?.is_some() {
                return Ok(None);
            }
        }
        let next = next_index(&mut tx, id, &attr.name).await?;
        insert_attributes(&mut tx, &[(id, attr, next)]).await?;
        tx.commit().await?;
        Ok(Some(next))
    }

    /// Replaces the value of instance `idx` of an attribute; false when it does not exist.
    pub(crate) async fn modify_attribute(
        &self,
        id: &str,
        name: &str,
        idx: i64,
        value: &Value,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(
            "UPDATE attributes SET value = $1, match_key = $2 WHERE object_id = $3 AND name = $4 AND idx = $5",
        )
        .bind(encode_value(value))
        .bind(match_key(name, value))
        .bind(id)
        .bind(name)
        .bind(idx)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        touch(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes instance `idx` of an attribute; returns its value, or `None` when absent.
    pub(crate) async fn delete_attribute(
        &self,
        id: &str,
        name: &str,
        idx: i64,
        now: i64,
    ) -> Result<Option<Value>, StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let old: Option<(Vec<u8>,)> = sqlx::query_as(
            "DELETE FROM attributes WHERE object_id = $1 AND name = $2 AND idx = $3 RETURNING value",
        )
        .bind(id)
        .bind(name)
        .bind(idx)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old,)) = old else { return Ok(None) };
        touch(&mut tx, id, now).await?;
        tx.commit().await?;
        let item = decode(&old, &Limits::default()).map_err(|source| {
            StoreError::CorruptAttribute { object_id: id.to_owned(), name: name.to_owned(), source }
        })?;
        Ok(Some(item.value))
    }

    /// Objects matching `q`, newest first: the total number of matches and one page of ids.
    pub(crate) async fn locate(&self, q: &LocateQuery) -> Result<(i64, Vec<String>), StoreError> {
        let mut count = Sql::new("SELECT COUNT(*) FROM objects o");
        where_clause(&mut count, q);
        let (total,): (i64,) = count.query_as()?.fetch_one(&mut *self.read.get().await?).await?;
        let mut page = Sql::new("SELECT o.id FROM objects o");
        where_clause(&mut page, q);
        // `rowid`: SQLite's implicit one, a column of that name in PostgreSQL.
        page.push(" ORDER BY o.initial_date DESC, o.rowid DESC LIMIT ")
            .bind(q.limit.unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .bind(q.offset);
        let ids: Vec<(String,)> = page.query_as()?.fetch_all(&mut *self.read.get().await?).await?;
        Ok((total, ids.into_iter().map(|(id,)| id).collect()))
    }

    /// The distinct Names of symmetric keys that start with `prefix`, in order (a TDE
    /// mount's key list).
    pub(crate) async fn key_names_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT a.match_key FROM attributes a JOIN objects o ON o.id = a.object_id \
             WHERE a.name = 'Name' AND substr(a.match_key, 1, length($1)) = $1 \
             AND o.object_type = 2 ORDER BY a.match_key",
        )
        .bind(prefix)
        .fetch_all(&mut *self.read.get().await?)
        .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    /// Stores the two halves of a key pair in one transaction.
    pub(crate) async fn insert_pair(
        &self,
        a: NewObject<'_>,
        b: NewObject<'_>,
    ) -> Result<(), StoreError> {
        // Two new objects: nothing cached changes (as for the writer's inserts).
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for new in [&a, &b] {
            super::writer::insert_object_row(&mut tx, &new.row).await?;
            insert_attributes(&mut tx, &indexed(&new.row.id, new.attributes)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Re-key: stores each replacement with its attributes and, on the object it replaces
    /// (whose version must be unchanged), removes the Name and adds `old_link` — all in
    /// one transaction (a key pair replaces both halves at once).
    pub(crate) async fn rekey(
        &self,
        replaced: &[Replacement<'_>],
        now: i64,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for r in replaced {
            let (old, new) = (r.old, r.new);
            let bumped = sqlx::query(
                "UPDATE objects SET last_change_date = $1, version = version + 1 WHERE id = $2 AND version = $3",
            )
            .bind(now)
            .bind(&old.id)
            .bind(old.version)
            .execute(&mut *tx)
            .await?;
            if bumped.rows_affected() == 0 {
                return Err(StoreError::Conflict(old.id.clone()));
            }
            super::writer::insert_object_row(&mut tx, new).await?;
            insert_attributes(&mut tx, &indexed(&new.id, r.new_attributes)).await?;
            sqlx::query("DELETE FROM attributes WHERE object_id = $1 AND name = 'Name'")
                .bind(&old.id)
                .execute(&mut *tx)
                .await?;
            let next = next_index(&mut tx, &old.id, &r.old_link.name).await?;
            insert_attributes(&mut tx, &[(old.id.as_str(), r.old_link, next)]).await?;
            for a in r.old_replaced {
                sqlx::query("DELETE FROM attributes WHERE object_id = $1 AND name = $2")
                    .bind(&old.id)
                    .bind(&a.name)
                    .execute(&mut *tx)
                    .await?;
                insert_attributes(&mut tx, &[(old.id.as_str(), a, 0)]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a derived object and gives each object it was derived from `base_link` (its
    /// Derived Key link, KMIP 1.4 §4.6), in one transaction.
    pub(crate) async fn insert_derived(
        &self,
        new: NewObject<'_>,
        bases: &[String],
        base_link: &Attribute,
        now: i64,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        super::writer::insert_object_row(&mut tx, &new.row).await?;
        insert_attributes(&mut tx, &indexed(&new.row.id, new.attributes)).await?;
        for id in bases {
            touch(&mut tx, id, now).await?;
            let next = next_index(&mut tx, id, &base_link.name).await?;
            insert_attributes(&mut tx, &[(id.as_str(), base_link, next)]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Draws `units` from object `id`'s Usage Limits (KMIP 1.4 §3.21) for `principal`:
    /// for a protecting operation, first from the principal's allocation and then from the
    /// Usage Limits Count; for Get Usage Allocation, from the Count into the principal's
    /// allocation. Returns false, taking nothing, when not enough is left. An object
    /// without Usage Limits has no limit to protect under, and nothing to allocate.
    pub(crate) async fn draw_usage(
        &self,
        id: &str,
        principal: &str,
        units: i64,
        draw: UsageDraw,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing();
        use kmip::attributes::{names, UsageLimits};
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        // Touching the object first locks its row, so concurrent draws take turns.
        touch(&mut tx, id, now).await?;
        let stored: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT idx, value FROM attributes WHERE object_id = $1 AND name = $2 ORDER BY idx",
        )
        .bind(id)
        .bind(names::USAGE_LIMITS)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((idx, blob)) = stored else { return Ok(draw == UsageDraw::Protect) };
        let corrupt = |why: String| StoreError::Corrupt(format!("Usage Limits of {id}: {why}"));
        let item = decode(&blob, &Limits::default()).map_err(|e| corrupt(e.to_string()))?;
        let mut limits =
            UsageLimits::from_value(&item.value).map_err(|e| corrupt(e.to_string()))?;
        let allocated: Option<(i64,)> = sqlx::query_as(
            "SELECT remaining FROM usage_allocations WHERE object_id = $1 AND principal = $2",
        )
        .bind(id)
        .bind(principal)
        .fetch_optional(&mut *tx)
        .await?;
        let allocated = allocated.map_or(0, |(a,)| a);
        let (from_count, allocation) = match draw {
            UsageDraw::Protect => {
                let from_allocation = allocated.min(units);
                (units - from_allocation, allocated - from_allocation)
            }
            UsageDraw::Allocate => (units, allocated + units),
        };
        if units < 0 || from_count > limits.count {
            return Ok(false);
        }
        limits.count -= from_count;
        let value = limits.to_value();
        sqlx::query(
            "UPDATE attributes SET value = $1, match_key = $2 \
             WHERE object_id = $3 AND name = $4 AND idx = $5",
        )
        .bind(encode_value(&value))
        .bind(match_key(names::USAGE_LIMITS, &value))
        .bind(id)
        .bind(names::USAGE_LIMITS)
        .bind(idx)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO usage_allocations (object_id, principal, remaining) VALUES ($1, $2, $3) \
             ON CONFLICT (object_id, principal) DO UPDATE SET remaining = excluded.remaining",
        )
        .bind(id)
        .bind(principal)
        .bind(allocation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The units of object `id`'s Usage Limits set aside for `principal` (Get Usage
    /// Allocation) and not yet used.
    pub(crate) async fn allocated_usage(
        &self,
        id: &str,
        principal: &str,
    ) -> Result<i64, StoreError> {
        let allocated: Option<(i64,)> = sqlx::query_as(
            "SELECT remaining FROM usage_allocations WHERE object_id = $1 AND principal = $2",
        )
        .bind(id)
        .bind(principal)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        Ok(allocated.map_or(0, |(a,)| a))
    }

    /// Puts an object back as it was when `row` and `attributes` were read (undoing a batch
    /// item, KMIP 1.4 §6.7): every lifecycle column, the material and the attributes with
    /// their indexes; the version moves on, so writers holding the undone state conflict.
    /// Only while the object is at `version` (as the undone item left it): a change made
    /// since by someone else is not undone with it (Conflict).
    pub(crate) async fn restore_object(
        &self,
        row: &ObjectRow,
        attributes: &[Attribute],
        version: i64,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let sql = lifecycle_update!(
            "public_material = $13, fresh = $14, version = version + 1 WHERE id = $15 \
             AND version = $16"
        );
        let done = bind_lifecycle(sqlx::query(sql), row)
            .bind(&row.public_material)
            .bind(flag(row.fresh))
            .bind(&row.id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(row.id.clone()));
        }
        sqlx::query("DELETE FROM attributes WHERE object_id = $1")
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(&str, &Attribute, i64)> = attributes
            .iter()
            .map(|a| (row.id.as_str(), a, i64::from(a.index.unwrap_or(0))))
            .collect();
        insert_attributes(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an imported object (KMIP 2.1 §6.1.25) with every lifecycle column as
    /// supplied. With `replaces`, the version of an object of the same identifier, that
    /// object and everything recorded about it go in the same transaction, so a failure
    /// leaves it as it was; its version must be unchanged, and moves on (replicas' caches
    /// see the replacement as a change).
    pub(crate) async fn import_object(
        &self,
        new: NewObject<'_>,
        replaces: Option<i64>,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let id = new.row.id.as_str();
        if let Some(version) = replaces {
            for sql in DELETE_RECORDS {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            let gone = sqlx::query("DELETE FROM objects WHERE id = $1 AND version = $2")
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Err(StoreError::Conflict(id.to_owned()));
            }
        }
        super::writer::insert_object_row(&mut tx, &new.row).await?;
        insert_attributes(&mut tx, &indexed(id, new.attributes)).await?;
        // The insert takes the columns every new object sets; the rest of the lifecycle
        // (destroy and compromise dates, revocation) is the imported object's own.
        let sql = lifecycle_update!("version = $13 WHERE id = $14");
        bind_lifecycle(sqlx::query(sql), &new.row)
            .bind(replaces.map_or(0, |v| v + 1))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an object and everything recorded about it (undoing its creation).
    pub(crate) async fn delete_object(&self, id: &str) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for sql in DELETE_RECORDS {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM objects WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks an object's material as served (Fresh turns false); a no-op after the first time.
    pub(crate) async fn mark_served(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE objects SET fresh = 0 WHERE id = $1 AND fresh = 1")
            .bind(id)
            .execute(&mut *self.write.get().await?)
            .await?;
        // Only the first time changes anything: later Gets keep the cache.
        if done.rows_affected() > 0 {
            self.objects_changed();
        }
        Ok(())
    }

    /// The Active symmetric keys, private keys and certificates due for automatic rotation
    /// at `now` (KMIP 2.1 §4.48–4.51):
    /// Rotate Automatic True, a Rotate Interval that has passed since the Initial Date, and
    /// not rotated already (no Rotate Latest False).
    pub(crate) async fn keys_due_for_rotation(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT o.id FROM objects o \
             JOIN attributes auto ON auto.object_id = o.id AND auto.name = 'Rotate Automatic' \
             JOIN attributes iv ON iv.object_id = o.id AND iv.name = 'Rotate Interval' \
             WHERE o.object_type IN (1, 2, 4) AND o.state = 2 AND o.archived = 0 \
             AND auto.match_key = 'true' AND CAST(iv.match_key AS BIGINT) > 0 \
             AND o.initial_date + CAST(iv.match_key AS BIGINT) <= $1 \
             AND NOT EXISTS (SELECT 1 FROM attributes l WHERE l.object_id = o.id \
             AND l.name = 'Rotate Latest' AND l.match_key = 'false')",
        )
        .bind(now)
        .fetch_all(&mut *self.read.get().await?)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Moves objects whose Activation Date has passed to Active, and Active objects whose
    /// Deactivation Date has passed to Deactivated; returns how many changed.
    pub(crate) async fn apply_due_dates(&self, now: i64) -> Result<u64, StoreError> {
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let a = sqlx::query(
            "UPDATE objects SET state = 2, last_change_date = $1, version = version + 1 \
             WHERE state = 1 AND activation_date IS NOT NULL AND activation_date <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let d = sqlx::query(
            "UPDATE objects SET state = 3, last_change_date = $1, version = version + 1 \
             WHERE state IN (1, 2) AND deactivation_date IS NOT NULL AND deactivation_date <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let changed = a.rows_affected() + d.rows_affected();
        if changed > 0 {
            self.objects_changed();
        }
        Ok(changed)
    }
}

/// How many characters of `match_key` PostgreSQL's `attributes_match` index holds
/// (migration 0010).
pub(super) const MATCH_PREFIX: usize = 200;

fn where_clause(b: &mut Sql, q: &LocateQuery) {
    // The caller's own objects and those it holds a grant on.
    if q.all_owners {
        b.push(" WHERE 1 = 1");
    } else {
        b.push(" WHERE (o.owner = ")
            .bind(q.owner.clone())
            .push(" OR o.id IN (SELECT object_id FROM grants WHERE principal = ")
            .bind(q.owner.clone())
            .push("))");
    }
    if let Some(t) = q.object_type {
        b.push(" AND o.object_type = ").bind(t);
    }
    if let Some(states) = &q.states {
        b.push(" AND o.state IN (");
        for (i, s) in states.iter().enumerate() {
            b.push(if i == 0 { "" } else { ", " }).bind(*s);
        }
        b.push(")");
    }
    // Which storage the objects may be in: on-line, archived, destroyed.
    b.push(" AND ((")
        .bind(q.storage_mask & 1)
        .push(" != 0 AND o.archived = 0 AND o.state NOT IN (5, 6)) OR (")
        .bind(q.storage_mask & 2)
        .push(" != 0 AND o.archived = 1) OR (")
        .bind(q.storage_mask & 4)
        .push(" != 0 AND o.state IN (5, 6)))");
    if let Some(id) = &q.id {
        b.push(" AND o.id = ").bind(id.clone());
    }
    for (column, from, to) in &q.date_ranges {
        b.push(&format!(" AND {} BETWEEN ", column.column())).bind(*from).push(" AND ").bind(*to);
    }
    if let Some(mask) = q.usage_mask {
        b.push(" AND o.id IN (SELECT object_id FROM attributes WHERE name = 'Cryptographic Usage Mask' AND (CAST(match_key AS BIGINT) & ")
            .bind(mask)
            .push(") = ")
            .bind(mask)
            .push(")");
    }
    // Dates are stored as decimal seconds (`match_key`). Only values whose TTLV item type
    // (the fourth byte of `value`) is Date-Time are cast, which CASE makes sure of on
    // PostgreSQL too: a custom attribute may hold text on another object.
    for (name, from, to) in &q.attribute_date_ranges {
        b.push(" AND o.id IN (SELECT object_id FROM attributes WHERE name = ")
            .bind(name.clone())
            .push(" AND CASE WHEN name = ")
            .bind(name.clone())
            .push(" AND substr(value, 4, 1) = ")
            .bind(vec![kmip::ItemType::DateTime as u8])
            .push(" THEN CAST(match_key AS BIGINT) END BETWEEN ")
            .bind(*from)
            .push(" AND ")
            .bind(*to)
            .push(")");
    }
    // PostgreSQL indexes the first MATCH_PREFIX characters of `match_key` (an index entry
    // cannot hold a long value), so the prefix is compared too, for that index; SQLite
    // indexes the whole value.
    for (name, key) in &q.attributes {
        b.push(" AND o.id IN (SELECT object_id FROM attributes WHERE name = ")
            .bind(name.clone())
            .push(&format!(" AND substr(match_key, 1, {MATCH_PREFIX}) = substr("))
            .bind(key.clone())
            .push(&format!(", 1, {MATCH_PREFIX}) AND match_key = "))
            .bind(key.clone())
            .push(")");
    }
}

/// The attribute rows of a new object: each instance numbered within its name from 0.
pub(super) fn indexed<'a>(
    id: &'a str,
    attrs: &'a [Attribute],
) -> Vec<(&'a str, &'a Attribute, i64)> {
    let mut next = std::collections::HashMap::<&str, i64>::new();
    attrs
        .iter()
        .map(|a| {
            let idx = next.entry(a.name.as_str()).or_insert(0);
            *idx += 1;
            (id, a, *idx - 1)
        })
        .collect()
}

/// The head of an insert of attribute rows, each bound by [`attribute_values`].
pub(super) const INSERT_ATTRIBUTES: &str =
    "INSERT INTO attributes (object_id, name, idx, value, match_key) VALUES ";

/// Binds an attribute row `(object id, attribute, index)` (5 parameters).
pub(super) fn attribute_values(b: &mut super::sql::Row<'_>, row: &(&str, &Attribute, i64)) {
    let (id, a, idx) = row;
    b.bind(id.to_string())
        .bind(a.name.clone())
        .bind(*idx)
        .bind(encode_value(&a.value))
        .bind(match_key(&a.name, &a.value));
}

/// Inserts attribute rows `(object id, attribute, index)`, many to a statement.
pub(super) async fn insert_attributes(
    tx: &mut sqlx::Transaction<'_, Any>,
    rows: &[(&str, &Attribute, i64)],
) -> Result<(), StoreError> {
    super::sql::insert_rows(tx, INSERT_ATTRIBUTES, 5, rows, attribute_values).await
}

/// What is recorded about an object beside its row, deleted before it (bound to its id).
const DELETE_RECORDS: [&str; 3] = [
    "DELETE FROM attributes WHERE object_id = $1",
    "DELETE FROM grants WHERE object_id = $1",
    "DELETE FROM usage_allocations WHERE object_id = $1",
];

/// `UPDATE objects SET` the lifecycle columns ($1 to $12, bound by [`bind_lifecycle`]),
/// then `rest`.
macro_rules! lifecycle_update {
    ($rest:literal) => {
        concat!(
            "UPDATE objects SET state = $1, sealed_material = $2, kek_label = $3, \
             activation_date = $4, deactivation_date = $5, destroy_date = $6, \
             compromise_date = $7, compromise_occurrence_date = $8, revocation_reason = $9, \
             revocation_message = $10, last_change_date = $11, archived = $12, ",
            $rest
        )
    };
}
use lifecycle_update;

/// Binds the lifecycle columns of `row` as $1 to $12 (see [`lifecycle_update`]).
fn bind_lifecycle<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    row: &'q ObjectRow,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    q.bind(row.state)
        .bind(&row.sealed_material)
        .bind(&row.kek_label)
        .bind(row.activation_date)
        .bind(row.deactivation_date)
        .bind(row.destroy_date)
        .bind(row.compromise_date)
        .bind(row.compromise_occurrence_date)
        .bind(row.revocation_reason)
        .bind(&row.revocation_message)
        .bind(row.last_change_date)
        .bind(flag(row.archived))
}

/// The index a new instance of attribute `name` of object `id` gets.
async fn next_index(
    tx: &mut sqlx::Transaction<'_, Any>,
    id: &str,
    name: &str,
) -> Result<i64, StoreError> {
    let (next,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM attributes WHERE object_id = $1 AND name = $2",
    )
    .bind(id)
    .bind(name)
    .fetch_one(&mut **tx)
    .await?;
    Ok(next)
}

async fn touch(tx: &mut sqlx::Transaction<'_, Any>, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE objects SET last_change_date = $1, version = version + 1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One managed object as the admin listing shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ObjectSummary {
    pub(crate) id: String,
    pub(crate) object_type: i64,
    pub(crate) state: i64,
    pub(crate) owner: String,
    pub(crate) initial_date: i64,
    pub(crate) names: Vec<String>,
}

impl Store {
    /// A page of managed objects, oldest first, with their names.
    pub(crate) async fn object_summaries(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ObjectSummary>, StoreError> {
        type Row = (String, i64, i64, String, i64, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.id, o.object_type, o.state, o.owner, o.initial_date, a.match_key \
             FROM (SELECT id, object_type, state, owner, initial_date, rowid AS seq FROM objects \
             ORDER BY initial_date, rowid LIMIT $1 OFFSET $2) o \
             LEFT JOIN attributes a ON a.object_id = o.id AND a.name = 'Name' \
             ORDER BY o.initial_date, o.seq, a.idx",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.read.get().await?)
        .await?;
        let mut out: Vec<ObjectSummary> = Vec::new();
        for (id, object_type, state, owner, initial_date, name) in rows {
            if out.last().is_none_or(|o| o.id != id) {
                out.push(ObjectSummary {
                    id,
                    object_type,
                    state,
                    owner,
                    initial_date,
                    names: Vec::new(),
                });
            }
            if let (Some(o), Some(name)) = (out.last_mut(), name) {
                o.names.push(name);
            }
        }
        Ok(out)
    }
}

const SELECT_OBJECT: &str = "SELECT id, object_type, owner, state, sub_type, key_format, \
     sealed_material, kek_label, public_material, initial_date, activation_date, \
     deactivation_date, destroy_date, compromise_date, compromise_occurrence_date, \
     revocation_reason, revocation_message, last_change_date, archived, fresh, version \
     FROM objects WHERE id = $1";

const SELECT_ATTRIBUTES: &str =
    "SELECT name, idx, value FROM attributes WHERE object_id = $1 ORDER BY name, idx";

/// Attribute rows (name, index, TTLV value) of object `id` as attributes.
fn decode_attributes(
    id: &str,
    rows: Vec<(String, i64, Vec<u8>)>,
) -> Result<Vec<Attribute>, StoreError> {
    // A value was part of a request the server took, and no deeper or with more items
    // than one; only its size may exceed the default, when `max_message_bytes` does.
    let limits = Limits { max_bytes: usize::MAX, ..Limits::default() };
    rows.into_iter()
        .map(|(name, idx, value)| {
            let item = decode(&value, &limits).map_err(|source| StoreError::CorruptAttribute {
                object_id: id.to_owned(),
                name: name.clone(),
                source,
            })?;
            Ok(Attribute { name, index: Some(idx as i32), value: item.value })
        })
        .collect()
}
