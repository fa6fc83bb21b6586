//! Store tests on a real SQLite file.

use kmip::attributes::{names, Attribute};
use kmip::{Tag, Ttlv, Value};

use super::{AuditEvent, Backend, LocateQuery, NewObject, ObjectRow, Store};

/// A store for one test: a fresh SQLite file, or a fresh PostgreSQL database on the server
/// named by `STRONGROOM_TEST_POSTGRES_URL` (default: this machine's, as `scripts/test` starts
/// it), dropped again at the end.
struct TempStore {
    store: Store,
    drop: Option<(String, String)>,
    dir: Option<std::path::PathBuf>,
}

/// The PostgreSQL server the tests use, as a URL to its maintenance database.
fn test_postgres_url() -> String {
    std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TempStore {
    async fn sqlite() -> TempStore {
        let dir = std::env::temp_dir().join(format!("strongroom-store-{}", crate::util::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempStore {
            store: Store::open_sqlite(&dir.join("s.db")).await.unwrap(),
            drop: None,
            dir: Some(dir),
        }
    }

    async fn postgres() -> TempStore {
        use sqlx::Connection as _;
        let admin = test_postgres_url();
        let name = format!("strongroom_test_{}", crate::util::uuid_v4().replace('-', ""));
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} (start it with scripts/start-test-databases): {e}")
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let store = Store::open_postgres(&format!("{base}/{name}")).await.unwrap();
        TempStore { store, drop: Some((admin, name)), dir: None }
    }

    /// One of each backend.
    async fn both() -> [TempStore; 2] {
        [TempStore::sqlite().await, TempStore::postgres().await]
    }

    async fn remove(self) {
        use sqlx::Connection as _;
        self.store.close().await;
        if let Some((admin, name)) = self.drop {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        if let Some(dir) = self.dir {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}

fn row(id: &str, owner: &str, initial: i64) -> ObjectRow {
    ObjectRow::for_test(id, owner, initial)
}

fn name(n: &str) -> Attribute {
    Attribute::new(
        names::NAME,
        Value::Structure(vec![
            Ttlv::new(Tag::NAME_VALUE, Value::TextString(n.into())),
            Ttlv::new(Tag::NAME_TYPE, Value::Enumeration(1)),
        ]),
    )
}

/// Runs `check` on a fresh store of each backend.
macro_rules! on_both {
    ($check:ident) => {
        for t in TempStore::both().await {
            $check(&t.store).await;
            t.remove().await;
        }
    };
}

#[tokio::test]
async fn objects_attributes_and_locate() {
    on_both!(objects_attributes_and_locate_on);
}

async fn objects_attributes_and_locate_on(store: &Store) {
    let attrs = [name("a"), Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(12))];
    store
        .insert_object(NewObject { row: row("1", "alice", 10), attributes: &attrs })
        .await
        .unwrap();
    store
        .insert_object(NewObject { row: row("2", "alice", 20), attributes: &[name("a")] })
        .await
        .unwrap();
    store
        .insert_object(NewObject { row: row("3", "bob", 30), attributes: &[name("a")] })
        .await
        .unwrap();

    let got = store.attributes("1").await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got.iter().find(|a| a.name == names::NAME).unwrap().value, name("a").value);

    let q = |attrs: Vec<(String, String)>| LocateQuery {
        owner: "alice".into(),
        storage_mask: 1,
        attributes: attrs,
        ..LocateQuery::default()
    };
    let (n, ids) = store.locate(&q(vec![("Name".into(), "a".into())])).await.unwrap();
    assert_eq!((n, ids), (2, vec!["2".to_owned(), "1".to_owned()]), "newest first, owner only");
    let mut by_mask = q(vec![]);
    by_mask.usage_mask = Some(4);
    assert_eq!(store.locate(&by_mask).await.unwrap().1, vec!["1".to_owned()]);
    // A stored date attribute in a range; other attributes' text is never cast.
    let stop = Attribute::new("Protect Stop Date", Value::DateTime(1_000));
    store.add_attribute("2", &stop, 25).await.unwrap();
    let in_range = |from, to| {
        let mut q = q(vec![]);
        q.attribute_date_ranges = vec![("Protect Stop Date".into(), from, to)];
        q
    };
    assert_eq!(store.locate(&in_range(900, 1_100)).await.unwrap().1, vec!["2".to_owned()]);
    assert_eq!(store.locate(&in_range(1_000, 1_000)).await.unwrap().1, vec!["2".to_owned()]);
    assert!(store.locate(&in_range(1_001, 2_000)).await.unwrap().1.is_empty());
    // A custom attribute may be a date on one object and text on another: only dates count.
    let when = |v| Attribute::new("x-when", v);
    store.add_attribute("2", &when(Value::DateTime(1_500)), 26).await.unwrap();
    store.add_attribute("1", &when(Value::TextString("soon".into())), 26).await.unwrap();
    let mut custom = q(vec![]);
    custom.attribute_date_ranges = vec![("x-when".into(), 1_000, 2_000)];
    assert_eq!(store.locate(&custom).await.unwrap().1, vec!["2".to_owned()]);
    let mut paged = q(vec![]);
    paged.limit = Some(1);
    paged.offset = 1;
    assert_eq!(store.locate(&paged).await.unwrap(), (2, vec!["1".to_owned()]));

    // Optimistic concurrency: a stale row cannot overwrite a newer one.
    let mut r = store.object("1").await.unwrap().unwrap();
    let stale = r.clone();
    r.state = 2;
    store.save_lifecycle(&r).await.unwrap();
    assert!(matches!(store.save_lifecycle(&stale).await, Err(super::StoreError::Conflict(_))));

    let idx = store.add_attribute("1", &name("b"), 40).await.unwrap();
    assert_eq!(idx, 1);
    assert!(store.delete_attribute("1", names::NAME, 0, 41).await.unwrap().is_some());
    assert_eq!(store.locate(&q(vec![("Name".into(), "b".into())])).await.unwrap().1, vec!["1"]);
}

/// The WHERE clause Locate builds (see `where_clause`), for one caller and a name.
fn locate_by_name() -> String {
    let n = super::objects::MATCH_PREFIX;
    format!(
        "SELECT o.id FROM objects o WHERE (o.owner = 'a' OR o.id IN \
         (SELECT object_id FROM grants WHERE principal = 'a')) \
         AND ((1 != 0 AND o.archived = 0 AND o.state NOT IN (5, 6)) OR (0 != 0 AND o.archived = 1) \
         OR (0 != 0 AND o.state IN (5, 6))) \
         AND o.id IN (SELECT object_id FROM attributes WHERE name = 'Name' \
         AND substr(match_key, 1, {n}) = substr('k', 1, {n}) AND match_key = 'k') \
         ORDER BY o.initial_date DESC"
    )
}

#[tokio::test]
async fn locate_by_name_uses_the_index() {
    let t = TempStore::sqlite().await;
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", locate_by_name())))
            .fetch_all(&mut *t.store.read.get().await.unwrap())
            .await
            .unwrap();
    let text: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("attributes_match")), "{text:?}");
    assert!(!text.iter().any(|t| t.starts_with("SCAN")), "{text:?}");
    t.remove().await;

    // PostgreSQL plans by table statistics, so on an empty table it is asked whether the
    // index can serve the lookup at all: with sequential scans priced out, it must use it.
    let t = TempStore::postgres().await;
    let mut conn = t.store.read.get().await.unwrap();
    sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
    let plan: Vec<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {}", locate_by_name())))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    sqlx::query("RESET enable_seqscan").execute(&mut *conn).await.unwrap();
    drop(conn);
    let text: Vec<&str> = plan.iter().map(|p| p.0.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("attributes_match")), "{text:?}");
    t.remove().await;
}

#[tokio::test]
async fn long_attribute_values_are_stored_and_located() {
    on_both!(long_attribute_values_are_stored_and_located_on);
}

async fn long_attribute_values_are_stored_and_located_on(store: &Store) {
    // Over PostgreSQL's index entry limit (about 2.7 kB) even compressed (hex of a hash
    // chain), and alike in the first 200 characters, so that only the whole value tells
    // them apart.
    let noise: String = (0u32..300)
        .map(|i| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(i.to_be_bytes())))
        .collect::<Vec<_>>()
        .concat();
    let long = |last: char| format!("{noise}{last}");
    for (id, last) in [("1", 'a'), ("2", 'b')] {
        let attrs = [name(&long(last))];
        store
            .insert_object(NewObject { row: row(id, "alice", 10), attributes: &attrs })
            .await
            .unwrap();
    }
    let q = LocateQuery {
        owner: "alice".into(),
        storage_mask: 1,
        attributes: vec![("Name".into(), long('b'))],
        ..LocateQuery::default()
    };
    assert_eq!(store.locate(&q).await.unwrap(), (1, vec!["2".to_owned()]));
    let custom = Attribute::new("x-blob", Value::ByteString(vec![7; 4_000]));
    store.add_attribute("1", &custom, 20).await.unwrap();
    let got = store.attributes("1").await.unwrap();
    assert_eq!(got.iter().find(|a| a.name == "x-blob").map(|a| &a.value), Some(&custom.value));
}

#[tokio::test]
async fn audit_events_are_committed_on_flush() {
    on_both!(audit_events_are_committed_on_flush_on);
}

async fn audit_events_are_committed_on_flush_on(store: &Store) {
    // More than one multi-row statement's worth, each record's fields in its own place.
    for i in 0..300 {
        store
            .audit(AuditEvent {
                at: 1,
                principal: format!("CN=client{i}"),
                protocol: "kmip",
                operation: format!("op{i}"),
                object_id: Some("x".into()),
                outcome: "ok".into(),
                detail: None,
            })
            .await;
    }
    store.flush().await;
    let events = store.audit_for_object("x").await.unwrap();
    assert_eq!(events.len(), 300);
    for (i, (principal, operation, _)) in events.iter().enumerate() {
        assert_eq!(
            (principal.as_str(), operation.as_str()),
            (&*format!("CN=client{i}"), &*format!("op{i}"))
        );
    }
    // What no store column could hold from a client is kept in a form it can.
    let long = "\0y".repeat(3000);
    store
        .audit(AuditEvent {
            at: 2,
            principal: "CN=odd\0".into(),
            protocol: "kmip",
            operation: "Get".into(),
            object_id: Some(long),
            outcome: "denied".into(),
            detail: Some("\0".into()),
        })
        .await;
    store.flush().await;
    let odd = store.audit_events(0, Some("CN=odd\u{FFFD}"), None, 10).await.unwrap();
    assert_eq!(odd.len(), 1, "kept, U+0000 replaced");
    let id = odd[0].object_id.clone().unwrap();
    assert!(id.len() <= 1024 + '…'.len_utf8() && id.ends_with('…'), "{}", id.len());
    // Likewise an object's attributes.
    let many: Vec<Attribute> = (0..300).map(|i| name(&format!("n{i}"))).collect();
    store
        .insert_object(NewObject { row: row("many", "alice", 1), attributes: &many })
        .await
        .unwrap();
    let got: Vec<Value> =
        store.attributes("many").await.unwrap().into_iter().map(|a| a.value).collect();
    assert!(got == many.into_iter().map(|a| a.value).collect::<Vec<_>>(), "attributes differ");
}

#[tokio::test]
async fn concurrent_inserts_keep_their_own_columns() {
    on_both!(concurrent_inserts_keep_their_own_columns_on);
}

/// Inserts that arrive together share the writer's statements: each row keeps its values.
async fn concurrent_inserts_keep_their_own_columns_on(store: &Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40i64 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut r = row(&format!("c{i}"), &format!("owner{i}"), i);
            r.sealed_material = Some(vec![i as u8; 3]);
            r.activation_date = (i % 2 == 0).then_some(1000 + i);
            r.fresh = i % 3 == 0;
            store.insert_object(NewObject { row: r, attributes: &[name(&format!("n{i}"))] }).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    for i in 0..40i64 {
        let (r, attrs) = store.object_with_attributes(&format!("c{i}")).await.unwrap().unwrap();
        assert_eq!(
            (r.owner, r.sealed_material, r.activation_date, r.fresh, r.initial_date),
            (
                format!("owner{i}"),
                Some(vec![i as u8; 3]),
                (i % 2 == 0).then_some(1000 + i),
                i % 3 == 0,
                i
            )
        );
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].value, name(&format!("n{i}")).value);
    }

    // An insert that cannot be stored (its id is taken) fails alone: the inserts that
    // shared its commit, and the audit events beside them, are stored.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20i64 {
        let store = store.clone();
        tasks.spawn(async move {
            let id = if i == 7 { "c3".to_owned() } else { format!("d{i}") };
            store
                .audit(AuditEvent {
                    at: 1,
                    principal: "CN=test".into(),
                    protocol: "kmip",
                    operation: "Create".into(),
                    object_id: Some(format!("d{i}")),
                    outcome: "ok".into(),
                    detail: None,
                })
                .await;
            let attributes = [name(&format!("m{i}"))];
            (
                i,
                store
                    .insert_object(NewObject { row: row(&id, "o", i), attributes: &attributes })
                    .await,
            )
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, inserted) = done.unwrap();
        assert_eq!(inserted.is_ok(), i != 7, "insert {i}: {inserted:?}");
    }
    store.flush().await;
    for i in 0..20i64 {
        let id = format!("d{i}");
        let stored = store.object_with_attributes(&id).await.unwrap();
        assert_eq!(
            stored.map(|(_, a)| a[0].value.clone()),
            (i != 7).then(|| name(&format!("m{i}")).value)
        );
        assert_eq!(store.audit_for_object(&id).await.unwrap().len(), 1, "{id}");
    }
    assert_eq!(store.object("c3").await.unwrap().unwrap().owner, "owner3");
}

#[tokio::test]
async fn lifecycle_rekey_and_flags() {
    on_both!(lifecycle_rekey_and_flags_on);
}

async fn lifecycle_rekey_and_flags_on(store: &Store) {
    let mut pending = row("p", "alice", 10);
    pending.activation_date = Some(50);
    store.insert_object(NewObject { row: pending, attributes: &[name("tde/k")] }).await.unwrap();
    assert_eq!(store.apply_due_dates(49).await.unwrap(), 0);
    assert_eq!(store.apply_due_dates(50).await.unwrap(), 1);
    let old = store.object("p").await.unwrap().unwrap();
    assert_eq!((old.state, old.fresh, old.archived), (2, true, false));
    store.mark_served("p").await.unwrap();
    assert!(!store.object("p").await.unwrap().unwrap().fresh);

    // Re-key moves the Name to the new key and links the old one to it.
    let link = Attribute::new("Link", Value::TextString("n".into()));
    let (n_row, n_attrs) = (row("n", "alice", 60), [name("tde/k")]);
    let one = super::Replacement {
        new: &n_row,
        new_attributes: &n_attrs,
        old: &old,
        old_link: &link,
        old_replaced: &[],
    };
    store.rekey(&[one], 60).await.unwrap();
    assert!(store.attributes("p").await.unwrap().iter().all(|a| a.name != names::NAME));
    assert_eq!(store.key_names_with_prefix("tde/").await.unwrap(), vec!["tde/k"]);
    assert!(store.key_names_with_prefix("tdx/").await.unwrap().is_empty());
    // The old row is stale now.
    let m_row = row("m", "alice", 61);
    let stale = super::Replacement {
        new: &m_row,
        new_attributes: &[],
        old: &old,
        old_link: &link,
        old_replaced: &[],
    };
    let again = store.rekey(&[stale], 61).await;
    assert!(matches!(again, Err(super::StoreError::Conflict(_))));

    let mut archived = store.object("n").await.unwrap().unwrap();
    archived.archived = true;
    store.save_lifecycle(&archived).await.unwrap();
    let q = LocateQuery { owner: "alice".into(), storage_mask: 2, ..LocateQuery::default() };
    assert_eq!(store.locate(&q).await.unwrap().1, vec!["n"]);

    store.grant("n", "bob", &["Get".into(), "Get".into()], "alice", 70).await.unwrap();
    assert!(store.is_granted("n", "bob", "Get").await.unwrap());
    let bobs = LocateQuery { owner: "bob".into(), storage_mask: 3, ..LocateQuery::default() };
    assert_eq!(store.locate(&bobs).await.unwrap().1, vec!["n"]);
    assert_eq!(store.revoke_grants("n", "bob", &["Get".into()]).await.unwrap(), 1);
    assert!(!store.is_granted("n", "bob", "Get").await.unwrap());
}

#[tokio::test]
async fn leases_certificates_and_revocations() {
    on_both!(leases_certificates_and_revocations_on);
}

async fn leases_certificates_and_revocations_on(store: &Store) {
    use super::{CertificateRow, IssuerRow, LeaseRow};
    let lease = |id: &str, expires| LeaseRow {
        id: id.into(),
        kind: "database".into(),
        data: "{}".into(),
        issued_at: 0,
        expires_at: expires,
        max_expires_at: 1000,
        renewable: true,
        state: super::lease_state::ACTIVE.into(),
        attempts: 0,
        next_attempt_at: expires,
        last_error: None,
        revoked_at: None,
        issued_to: "root".into(),
    };
    for (id, exp) in
        [("database/creds/a/1", 10), ("database/creds/a/2", 20), ("database/creds/b/1", 5)]
    {
        store.insert_lease(&lease(id, exp)).await.unwrap();
    }
    let a = store.leases_with_prefix("database/creds/a/", false).await.unwrap();
    assert_eq!(
        a.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["database/creds/a/1", "database/creds/a/2"]
    );
    assert!(a[0].renewable);
    let due = store.due_leases(10, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        ["database/creds/b/1", "database/creds/a/1"]
    );
    assert!(store.claim_lease("database/creds/b/1", 5, 100).await.unwrap());
    assert!(!store.claim_lease("database/creds/b/1", 5, 100).await.unwrap(), "one claim wins");
    store.mark_lease_revoked("database/creds/b/1", 11).await.unwrap();
    assert!(store.leases_with_prefix("database/creds/b", true).await.unwrap().is_empty());
    assert!(store.renew_lease("database/creds/a/1", 9, 30).await.unwrap());
    assert!(!store.renew_lease("database/creds/a/2", 20, 40).await.unwrap(), "expired");
    // Claimed by the reaper: its credential may be dropped already.
    assert!(store.claim_lease("database/creds/a/2", 20, 120).await.unwrap());
    assert!(!store.renew_lease("database/creds/a/2", 19, 40).await.unwrap(), "claimed");

    let cert = |serial: &str| CertificateRow {
        not_before: 0,
        pem: String::new(),
        ..a_certificate(serial, "int-a", 1000)
    };
    for serial in ["01", "02", "03"] {
        store.insert_certificate(&cert(serial)).await.unwrap();
    }
    store
        .insert_certificate(&CertificateRow { issuer: "int-b".into(), ..cert("04") })
        .await
        .unwrap();
    assert!(store.revoke_certificate("04", 1, 40).await.unwrap());
    assert_eq!(store.certificate("04").await.unwrap().unwrap().issuer, "int-b");
    assert_eq!(store.revocations("int-b", 0).await.unwrap(), vec![("04".to_owned(), 40, Some(1))]);
    assert!(store.revocations("int-a", 0).await.unwrap().is_empty());
    assert!(store.revoke_certificate("03", 1, 50).await.unwrap());
    assert!(store.revoke_certificate("01", 4, 60).await.unwrap());
    assert!(store.revoke_certificate("03", 5, 70).await.unwrap(), "first revocation stays");
    assert_eq!(
        store.revocations("int-a", 0).await.unwrap(),
        vec![("03".to_owned(), 50, Some(1)), ("01".to_owned(), 60, Some(4))],
        "oldest revocation first, this issuer's only"
    );
    // A key found compromised later says so; the revocation time stays.
    assert!(store.revoke_certificate("01", 1, 65).await.unwrap());
    let revoked = store.revocations("int-a", 0).await.unwrap();
    assert_eq!(revoked[1], ("01".to_owned(), 60, Some(1)));
    assert!(store.revocations("int-a", 1000).await.unwrap().is_empty(), "expired ones leave");
    assert_eq!(store.revocation_marker().await.unwrap(), (3, Some(60), Some(3)));

    assert!(store.ca_issuers().await.unwrap().is_empty());
    let row = |id: &str, kind: &str, certifies: Option<&str>| IssuerRow {
        id: id.into(),
        kind: kind.into(),
        parent: "root".into(),
        certifies: certifies.map(Into::into),
        key_label: format!("strongroom-ca-{id}"),
        cert_pem: "PEM".into(),
        created_at: 20,
        revoked_at: None,
    };
    store.insert_ca_issuers(&[row("int-2", "intermediate", None)]).await.unwrap();
    let batch = [
        row("r2", "root", None),
        row("r2-by-root", "cross", Some("r2")),
        row("int-1", "intermediate", None),
    ];
    store.insert_ca_issuers(&batch).await.unwrap();
    let rows = store.ca_issuers().await.unwrap();
    let ids: Vec<&str> = rows.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["int-2", "r2", "r2-by-root", "int-1"], "in the order added");
    assert_eq!((rows[2].kind.as_str(), rows[2].certifies.as_deref()), ("cross", Some("r2")));
    // Revoking an intermediate marks it and puts its certificate on its root's CRL, once.
    let int_cert = CertificateRow { issuer: "root".into(), ..cert("0a") };
    assert!(store.revoke_ca_issuer("int-2", &int_cert, 2, 90).await.unwrap());
    assert!(!store.revoke_ca_issuer("int-2", &int_cert, 2, 91).await.unwrap(), "once");
    assert!(!store.revoke_ca_issuer("r2", &int_cert, 2, 91).await.unwrap(), "not a root");
    assert_eq!(store.ca_issuers().await.unwrap()[0].revoked_at, Some(90));
    assert_eq!(store.revocations("root", 0).await.unwrap(), vec![("0a".to_owned(), 90, Some(2))]);
}

#[tokio::test]
async fn tokens_policies_engines_and_audit_chain() {
    on_both!(tokens_policies_engines_and_audit_chain_on);
}

async fn tokens_policies_engines_and_audit_chain_on(store: &Store) {
    let token = super::TokenRow {
        accessor: "acc".into(),
        display_name: "t".into(),
        policies: "[\"p\"]".into(),
        created_at: 1,
        expires_at: None,
        created_by: "root".into(),
        revoked_at: None,
    };
    store.insert_token(&token, b"digest").await.unwrap();
    assert_eq!(store.token_by_hash(b"digest").await.unwrap().unwrap().accessor, "acc");
    assert!(store.has_tokens().await.unwrap());
    assert!(store.revoke_token("acc", 2).await.unwrap());
    assert!(!store.revoke_token("acc", 3).await.unwrap());
    assert!(!store.has_tokens().await.unwrap());
    // An expired token is no live token either: start-up writes a new admin token.
    let expired = super::TokenRow { accessor: "old".into(), expires_at: Some(5), ..token.clone() };
    store.insert_token(&expired, b"expired").await.unwrap();
    assert!(!store.has_tokens().await.unwrap());

    // Revoking a token revokes the tokens it made, theirs, and no others.
    let child = |accessor: &str, parent: &str| super::TokenRow {
        accessor: accessor.into(),
        created_by: format!("token:{parent}"),
        ..token.clone()
    };
    for (i, row) in
        [child("p", "x"), child("c1", "p"), child("c2", "p"), child("g", "c1"), child("other", "x")]
            .iter()
            .enumerate()
    {
        store.insert_token(row, format!("tree{i}").as_bytes()).await.unwrap();
    }
    let mut revoked = store.revoke_token_tree("p", 9).await.unwrap();
    revoked.sort();
    assert_eq!(revoked, ["c1", "c2", "g", "p"]);
    assert!(store.revoke_token_tree("p", 10).await.unwrap().is_empty(), "not live any more");
    assert!(store.has_tokens().await.unwrap(), "the other one is");
    // A revocation that stopped at its first token (or a child made meanwhile): the sweep
    // takes the rest, generation by generation, and no others.
    for (i, row) in [child("q", "x"), child("q1", "q"), child("q2", "q1")].iter().enumerate() {
        store.insert_token(row, format!("orphan{i}").as_bytes()).await.unwrap();
    }
    assert!(store.revoke_token("q", 11).await.unwrap());
    let mut swept = store.revoke_orphaned_tokens(12).await.unwrap();
    swept.sort();
    assert_eq!(swept, ["q1", "q2"]);
    assert!(store.revoke_orphaned_tokens(13).await.unwrap().is_empty());
    assert!(store.has_tokens().await.unwrap(), "the other one is still live");
    // Active leases of revoked tokens are found for revocation; those of live tokens, or
    // already revoked, or being retried, are not.
    let lease = |id: &str, holder: &str, state: &str| super::LeaseRow {
        id: id.into(),
        kind: "database".into(),
        data: "{}".into(),
        issued_at: 0,
        expires_at: 100,
        max_expires_at: 100,
        renewable: true,
        state: state.into(),
        attempts: 0,
        next_attempt_at: 100,
        last_error: None,
        revoked_at: None,
        issued_to: format!("token:{holder}"),
    };
    for row in [
        lease("l/1", "q2", "active"),
        lease("l/2", "other", "active"),
        lease("l/3", "q1", "revoked"),
        lease("l/4", "q1", "revoke_failed"),
    ] {
        store.insert_lease(&row).await.unwrap();
    }
    let found = store.leases_of_revoked_tokens(10).await.unwrap();
    assert_eq!(found.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["l/1"]);

    store.put_policy("p", "one", 1).await.unwrap();
    store.put_policy("p", "two", 2).await.unwrap();
    assert_eq!(store.policy("p").await.unwrap().as_deref(), Some("two"));
    assert_eq!(store.policy_names().await.unwrap(), vec!["p"]);

    store.put_engine_config("k", "n", "{}", Some(b"s1"), 1).await.unwrap();
    store.put_engine_config("k", "n", "{\"a\":1}", None, 2).await.unwrap();
    let c = store.engine_config("k", "n").await.unwrap().unwrap();
    assert_eq!((c.body.as_str(), c.sealed.as_deref()), ("{\"a\":1}", Some(&b"s1"[..])));
    store.set_pending_secret("k", "n", Some(b"s2")).await.unwrap();
    store.promote_pending_secret("k", "n", "{}", 3).await.unwrap();
    let c = store.engine_config("k", "n").await.unwrap().unwrap();
    assert_eq!((c.sealed.as_deref(), c.pending), (Some(&b"s2"[..]), None));

    // The chain: sequence numbers and hashes link up, and a seal is stored once.
    for i in 0..3 {
        store
            .audit(AuditEvent {
                at: i,
                principal: "p".into(),
                protocol: "api",
                operation: format!("op{i}"),
                object_id: None,
                outcome: "ok".into(),
                detail: Some("d".into()),
            })
            .await;
    }
    store.flush().await;
    let rows = store.audit_events(0, Some("p"), None, 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    let mut prev = super::GENESIS.to_vec();
    for r in &rows {
        let hash = super::audit_hash(&prev, r.seq, r.at, r.chain_fields());
        assert_eq!(r.hash.as_deref(), Some(&hash[..]));
        prev = hash;
    }
    assert_eq!(store.audit_head().await.unwrap(), (rows[2].seq, Some(prev.clone())));
    let seal = super::SealRow { seq: rows[2].seq, hash: prev, signature: vec![1], sealed_at: 9 };
    store.insert_audit_seal(&seal).await.unwrap();
    store.insert_audit_seal(&seal).await.unwrap();
    assert_eq!(store.audit_seals().await.unwrap().len(), 1);
    assert!(store.audit_events(0, Some("nobody"), None, 10).await.unwrap().is_empty());
    let g = store.gauges().await.unwrap();
    assert_eq!((g.audit_head, g.last_seal), (rows[2].seq, Some(9)));
}

#[tokio::test]
async fn acme_orders_keep_their_order() {
    on_both!(acme_orders_keep_their_order_on);
}

#[tokio::test]
async fn acme_orders_expire_from_the_store() {
    on_both!(acme_orders_expire_from_the_store_on);
}

/// Orders go with their authorizations and challenges once they and their certificates
/// expired before the cutoff; certificates stay (CRLs and OCSP answer for them).
async fn acme_orders_expire_from_the_store_on(store: &Store) {
    use super::{ChallengeRow, NewOrder};
    store.insert_acme_account(&an_account()).await.unwrap();
    let add = |id: &str, status: &str, expires_at: i64| {
        let order = super::OrderRow { expires_at, ..an_order(id, status) };
        let challenge = ChallengeRow {
            id: format!("{id}-a-c"),
            authz_id: format!("{id}-a"),
            kind: "http-01".into(),
            token: "t".into(),
            status: "valid".into(),
            validated_at: Some(1),
            error: None,
        };
        let authorizations = vec![(a_valid_authorization(id), vec![challenge])];
        async move {
            let new = NewOrder { order: &order, authorizations: &authorizations };
            store.insert_acme_order(new, None).await.unwrap();
            order
        }
    };
    add("stale", "pending", 100).await;
    add("claimed", "processing", 100).await;
    add("young", "pending", 300).await;
    let issued = add("issued", "valid", 100).await;
    let cert = a_certificate("0a", "ca", 500);
    store.complete_acme_order(&issued, &cert).await.unwrap();
    let kept = add("kept-on-order", "valid", 100).await;
    store.complete_acme_order_unstored(&kept, "0b", "PEM", "ca", 150).await.unwrap();
    // Open (pending or ready, nothing failed or expired) and listed (not invalid) orders.
    assert_eq!(store.acme_open_orders("acct", 50).await.unwrap(), 2);
    assert_eq!(store.acme_open_orders("acct", 150).await.unwrap(), 0, "authorizations expired");
    assert_eq!(store.acme_order_ids("acct", 50).await.unwrap().len(), 5);
    let listed = store.acme_order_ids("acct", 150).await.unwrap();
    assert_eq!(listed, ["claimed", "issued", "kept-on-order"]);
    let present = async |id: &str| {
        let order = store.acme_order(id).await.unwrap().is_some();
        let authorizations = store.acme_authorizations(id).await.unwrap().len();
        let challenges = store.acme_challenges(&format!("{id}-a")).await.unwrap().len();
        assert_eq!((authorizations, challenges), if order { (1, 1) } else { (0, 0) }, "{id}");
        order
    };
    // One at a time: the order that expired first goes first.
    assert_eq!(store.purge_acme_orders(200, 1).await.unwrap(), 1);
    assert!(!present("stale").await);
    assert!(present("kept-on-order").await);
    assert_eq!(store.purge_acme_orders(200, 10).await.unwrap(), 1);
    for (id, left) in
        [("kept-on-order", false), ("claimed", true), ("young", true), ("issued", true)]
    {
        assert_eq!(present(id).await, left, "{id}");
    }
    assert_eq!(store.purge_acme_orders(200, 10).await.unwrap(), 0);
    // Once its certificate has expired too, the issued order goes; the certificate stays.
    assert_eq!(store.purge_acme_orders(600, 10).await.unwrap(), 2);
    assert!(!present("issued").await && !present("young").await);
    assert!(present("claimed").await, "an order being finalized stays");
    assert_eq!(store.certificate("0a").await.unwrap().unwrap().not_after, 500);
}

/// A certificate row for store tests: an ACME certificate for CN=x from `issuer`, issued
/// at 1, with PEM "PEM".
fn a_certificate(serial: &str, issuer: &str, not_after: i64) -> super::CertificateRow {
    super::CertificateRow {
        serial: serial.into(),
        role: "acme".into(),
        subject: "CN=x".into(),
        not_before: 1,
        not_after,
        lease_id: None,
        revoked_at: None,
        revocation_reason: None,
        pem: "PEM".into(),
        issuer: issuer.into(),
        kmip_object: None,
    }
}

/// An ACME account row ("acct", thumbprint "tp") for store tests.
fn an_account() -> super::AccountRow {
    super::AccountRow {
        id: "acct".into(),
        thumbprint: "tp".into(),
        jwk: "{}".into(),
        status: "valid".into(),
        contact: "[]".into(),
        created_at: 1,
    }
}

/// The valid authorization `ORDER-a` of order `order` (account `acct`), for `a.test`.
fn a_valid_authorization(order: &str) -> super::AuthzRow {
    super::AuthzRow {
        id: format!("{order}-a"),
        order_id: order.into(),
        account_id: "acct".into(),
        identifier_type: "dns".into(),
        identifier_value: "a.test".into(),
        status: "valid".into(),
        expires_at: 100,
    }
}

/// An order of account "acct" for store tests, in `status`, expiring at 100.
fn an_order(id: &str, status: &str) -> super::OrderRow {
    super::OrderRow {
        id: id.into(),
        account_id: "acct".into(),
        status: status.into(),
        identifiers: "[]".into(),
        expires_at: 100,
        error: None,
        certificate_serial: None,
        created_at: 1,
        replaces: None,
        profile: Some("mtls".into()),
        unstored_serial: None,
        certificate_pem: None,
        certificate_issuer: None,
    }
}

async fn acme_orders_keep_their_order_on(store: &Store) {
    use super::{AuthzRow, ChallengeRow, NewOrder};
    let account = an_account();
    store.insert_acme_account(&account).await.unwrap();
    // Ids sort the other way from creation: listings must follow creation.
    for id in ["z", "y", "x"] {
        let order = an_order(id, "pending");
        let authz = |n: &str| AuthzRow {
            id: format!("{id}-{n}"),
            order_id: id.into(),
            account_id: "acct".into(),
            identifier_type: "dns".into(),
            identifier_value: format!("{n}.test"),
            status: "pending".into(),
            expires_at: 100,
        };
        let challenge = |a: &str| ChallengeRow {
            id: format!("{a}-c"),
            authz_id: a.into(),
            kind: "http-01".into(),
            token: "t".into(),
            status: "pending".into(),
            validated_at: None,
            error: None,
        };
        let authorizations: Vec<_> =
            ["b", "a"].iter().map(|n| (authz(n), vec![challenge(&format!("{id}-{n}"))])).collect();
        store
            .insert_acme_order(NewOrder { order: &order, authorizations: &authorizations }, None)
            .await
            .unwrap();
    }
    assert_eq!(store.acme_order_ids("acct", 0).await.unwrap(), vec!["z", "y", "x"]);
    let authzs = store.acme_authorizations("y").await.unwrap();
    assert_eq!(authzs.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["y-b", "y-a"]);
    // Read before each write, so that a cached copy would be there to go stale.
    assert_eq!(store.acme_challenges("y-b").await.unwrap()[0].status, "pending");
    assert_eq!(store.acme_authorization("y-b").await.unwrap().unwrap().status, "pending");
    assert!(store.start_acme_challenge("y-b-c", 2, 0).await.unwrap());
    assert!(!store.start_acme_challenge("y-b-c", 3, 0).await.unwrap(), "processing");
    assert_eq!(store.acme_challenges("y-b").await.unwrap()[0].status, "processing");
    // Left processing by a process that stopped: started again once stale.
    assert!(store.start_acme_challenge("y-b-c", 4, 3).await.unwrap());
    let c = store.acme_challenge("y-b-c").await.unwrap().unwrap();
    assert_eq!(store.acme_order("y").await.unwrap().unwrap().status, "pending");
    // The old validation's late failure is not recorded over the new one.
    assert!(!store.finish_acme_challenge(&c, 2, 5, Some("late")).await.unwrap());
    assert_eq!(store.acme_challenges("y-b").await.unwrap()[0].status, "processing");
    assert!(store.finish_acme_challenge(&c, 4, 5, None).await.unwrap());
    assert_eq!(store.acme_authorization("y-b").await.unwrap().unwrap().status, "valid");
    assert_eq!(store.acme_challenges("y-b").await.unwrap()[0].validated_at, Some(5));
    // What the order's reads return follows each write (SQLite serves them from a cache).
    assert_eq!(store.acme_authorizations("y").await.unwrap()[0].status, "valid");
    assert!(store.deactivate_acme_authorization("y-a").await.unwrap());
    assert_eq!(store.acme_authorizations("y").await.unwrap()[1].status, "deactivated");
    // The reads of an order with its authorizations, and of an authorization with its
    // challenges (one statement each on PostgreSQL), agree with the reads one by one.
    let (order, authzs) = store.acme_order_with_authorizations("y").await.unwrap().unwrap();
    assert_eq!(order.profile.as_deref(), Some("mtls"));
    let statuses: Vec<_> = authzs.iter().map(|a| (a.id.as_str(), a.status.as_str())).collect();
    assert_eq!(statuses, [("y-b", "valid"), ("y-a", "deactivated")]);
    assert_eq!(authzs[0].identifier_value, "b.test");
    let (authz, challenges) =
        store.acme_authorization_with_challenges("y-b").await.unwrap().unwrap();
    assert_eq!((authz.order_id.as_str(), authz.expires_at), ("y", 100));
    let c = &challenges[0];
    assert_eq!((c.kind.as_str(), c.status.as_str(), c.validated_at), ("http-01", "valid", Some(5)));
    assert!(store.acme_order_with_authorizations("nothing").await.unwrap().is_none());
    assert!(store.acme_authorization_with_challenges("nothing").await.unwrap().is_none());
    assert!(store.transition_acme_order("y", "pending", "processing", None).await.unwrap());
    assert_eq!(store.acme_order("y").await.unwrap().unwrap().status, "processing");
    assert!(!store.transition_acme_order("y", "pending", "processing", None).await.unwrap());
    let y = store.acme_order("y").await.unwrap().unwrap();
    store.complete_acme_order_unstored(&y, "01", "PEM", "issuer", 2).await.unwrap();
    let y = store.acme_order("y").await.unwrap().unwrap();
    assert_eq!((y.status.as_str(), y.unstored_serial.as_deref()), ("valid", Some("01")));
    assert!(store.acme_order("nothing").await.unwrap().is_none());

    // A certificate recorded in `certificates`, and one kept on its order, download the
    // same way, as written (from the cache) and as stored (a fresh store on the file).
    let x = store.acme_order("x").await.unwrap().unwrap();
    let cert = crate::store::CertificateRow { pem: "PEM2".into(), ..a_certificate("02", "ca2", 2) };
    store.complete_acme_order(&x, &cert).await.unwrap();
    let x = store.acme_order("x").await.unwrap().unwrap();
    assert_eq!((x.status.as_str(), x.certificate_serial.as_deref()), ("valid", Some("02")));
    let expected = [
        Some(("acct".to_owned(), "PEM".to_owned(), "issuer".to_owned())),
        Some(("acct".to_owned(), "PEM2".to_owned(), "ca2".to_owned())),
        None,
    ];
    for cached in [true, false] {
        if !cached {
            store.forget_cached();
        }
        for (serial, expected) in ["01", "02", "03"].into_iter().zip(&expected) {
            let c = store.acme_certificate(serial).await.unwrap();
            assert_eq!(&c.map(|c| (c.account_id, c.pem, c.issuer)), expected, "{serial}");
        }
        let x = store.acme_order("x").await.unwrap().unwrap();
        assert_eq!((x.status.as_str(), x.certificate_serial.as_deref()), ("valid", Some("02")));
        assert_eq!(store.acme_challenges("x-a").await.unwrap()[0].id, "x-a-c");
        assert!(store.acme_eab_key_of_account("acct").await.unwrap().is_none());
    }
    assert!(store.change_acme_account_key("acct", "tp2", "{}").await.unwrap());
    assert!(store.acme_account_by_thumbprint("tp2").await.unwrap().is_some());
}

#[test]
fn store_urls() {
    use super::Location;
    assert_eq!(Location::parse("sqlite:///a/b.db"), Some(Location::Sqlite("/a/b.db".into())));
    assert_eq!(Location::parse("sqlite:rel.db"), Some(Location::Sqlite("rel.db".into())));
    assert!(Location::parse("sqlite://").is_none());
    assert!(Location::parse("mysql://x/y").is_none());
    let pg = Location::parse("postgresql://kms:s3cret@db:5432/kms").unwrap();
    assert_eq!(pg.display(), "postgresql://kms:***@db:5432/kms");
    assert_eq!(
        Location::parse("postgres://kms@db/kms").unwrap().display(),
        "postgres://kms@db/kms"
    );
    let query = Location::parse("postgres://db/kms?user=k&password=s3cret&sslmode=require");
    assert_eq!(query.unwrap().display(), "postgres://db/kms?user=k&password=***&sslmode=require");
}

#[tokio::test]
async fn postgres_connections_the_server_dropped_are_replaced() {
    use sqlx::Connection as _;
    let t = TempStore::postgres().await;
    t.store.ping().await.unwrap();
    // The server ends every connection to the database (a restart, a proxy's timeout).
    let (admin, name) = t.drop.clone().unwrap();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let (ended,): (i64,) = sqlx::query_as(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(&name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(ended > 0);
    // A connection idle that long is checked before it is lent, and replaced.
    tokio::time::sleep(super::PING_WHEN_IDLE + std::time::Duration::from_millis(200)).await;
    t.store.ping().await.unwrap();
    t.remove().await;
}

#[tokio::test]
async fn a_replica_claims_a_ready_order_once() {
    use super::NewOrder;
    let t = TempStore::postgres().await;
    let store = &t.store;
    store.insert_acme_account(&an_account()).await.unwrap();
    let order = an_order("o", "ready");
    let authorizations = [(a_valid_authorization("o"), Vec::new())];
    let new = NewOrder { order: &order, authorizations: &authorizations };
    assert!(store.insert_acme_order(new, None).await.unwrap());
    let claim = |account, now| async move {
        let (passed, claimed) =
            store.claim_ready_acme_order("o", account, now, 0, None).await.unwrap();
        assert!(passed, "no guard");
        claimed
    };
    // Not another account's, not once expired.
    assert!(claim("other", 10).await.is_none());
    assert!(claim("acct", 101).await.is_none());
    let (claimed, authzs) = claim("acct", 100).await.unwrap();
    assert_eq!(claimed.status, "processing");
    assert_eq!(authzs.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["o-a"]);
    assert!(claim("acct", 10).await.is_none(), "once");
    assert_eq!(store.acme_order("o").await.unwrap().unwrap().status, "processing");
    // Left processing (claimed at 100) by a replica that stopped: claimed again once
    // stale, not before.
    let reclaim = |stale| store.claim_ready_acme_order("o", "acct", 100, stale, None);
    assert!(matches!(reclaim(100).await.unwrap(), (true, None)), "not stale yet");
    assert!(reclaim(101).await.unwrap().1.is_some(), "stale");

    // Not once an authorization was deactivated after the order became ready.
    let order = an_order("p", "ready");
    let authorizations = [(a_valid_authorization("p"), Vec::new())];
    let new = NewOrder { order: &order, authorizations: &authorizations };
    assert!(store.insert_acme_order(new, None).await.unwrap());
    assert!(store.deactivate_acme_authorization("p-a").await.unwrap());
    let claimed = store.claim_ready_acme_order("p", "acct", 10, 0, None).await.unwrap();
    assert!(matches!(claimed, (true, None)));
    assert_eq!(store.acme_order("p").await.unwrap().unwrap().status, "ready");
    t.remove().await;
}

#[tokio::test]
async fn a_replica_writes_only_what_its_nonce_guard_lets() {
    use super::{ChallengeRow, NewOrder, NonceGuard};
    let t = TempStore::postgres().await;
    let store = &t.store;
    let mut account = an_account();
    store.insert_acme_account(&account).await.unwrap();
    let nonces: Vec<String> = (1..=6).map(|n| format!("n{n}")).collect();
    store.insert_acme_nonces(&nonces, 100).await.unwrap();
    let guard = |nonce, jwk| NonceGuard { nonce, now: 10, account_id: "acct", jwk };
    // Two authorizations with two challenges each: several rows to each guarded insert.
    let order = an_order("o", "ready");
    let authorizations: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| {
            let authz = super::AuthzRow { id: format!("o-{n}"), ..a_valid_authorization("o") };
            let challenges = ["http-01", "dns-01"]
                .iter()
                .map(|kind| ChallengeRow {
                    id: format!("o-{n}-{kind}"),
                    authz_id: authz.id.clone(),
                    kind: (*kind).into(),
                    token: "t".into(),
                    status: "valid".into(),
                    validated_at: Some(5),
                    error: None,
                })
                .collect();
            (authz, challenges)
        })
        .collect();
    let new = || NewOrder { order: &order, authorizations: &authorizations };
    let order_rows = || async {
        let order = store.acme_order_with_authorizations("o").await.unwrap();
        let challenges = store.acme_challenges("o-b").await.unwrap();
        (order.map(|(_, authzs)| authzs.len()), challenges.len())
    };

    // Refused: a nonce never issued, an account key that changed since it was read.
    assert!(!store.insert_acme_order(new(), Some(guard("never", "{}"))).await.unwrap());
    assert!(!store.insert_acme_order(new(), Some(guard("n1", "{\"old\":1}"))).await.unwrap());
    assert_eq!(order_rows().await, (None, 0), "nothing written");
    // A refused account leaves the nonce for the request read afresh.
    assert!(store.consume_acme_nonce("n1", 10).await.unwrap(), "kept");
    // Let: written whole, and the nonce used up.
    assert!(store.insert_acme_order(new(), Some(guard("n2", "{}"))).await.unwrap());
    assert_eq!(order_rows().await, (Some(2), 2));
    assert!(!store.consume_acme_nonce("n2", 10).await.unwrap(), "used up");

    // A claim: refused with a used nonce, then made; a good nonce is used up also when
    // the order is not ready any more.
    let claim = |nonce| store.claim_ready_acme_order("o", "acct", 10, 0, Some(guard(nonce, "{}")));
    assert!(matches!(claim("n2").await.unwrap(), (false, None)));
    assert_eq!(store.acme_order("o").await.unwrap().unwrap().status, "ready");
    let (passed, claimed) = claim("n3").await.unwrap();
    assert!(passed);
    let (claimed, authzs) = claimed.unwrap();
    assert_eq!((claimed.status.as_str(), authzs.len()), ("processing", 2));
    assert!(matches!(claim("n4").await.unwrap(), (true, None)));
    assert!(!store.consume_acme_nonce("n4", 10).await.unwrap(), "used up");

    // An account deactivated since it was read.
    account.status = "deactivated".into();
    assert!(store.update_acme_account(&account).await.unwrap());
    // And stays so: an update made from the account as read before is refused.
    account.status = "valid".into();
    assert!(!store.update_acme_account(&account).await.unwrap(), "not revived");
    store.transition_acme_order("o", "processing", "ready", None).await.unwrap();
    assert!(matches!(claim("n5").await.unwrap(), (false, None)));
    assert_eq!(store.acme_order("o").await.unwrap().unwrap().status, "ready");
    t.remove().await;
}

#[tokio::test]
async fn shared_acme_nonces_are_single_use() {
    use super::{ChallengeRow, NewOrder, Prefetch, Prefetched};
    // Only PostgreSQL stores keep nonces (replicas share them); SQLite's process keeps
    // them in memory.
    let t = TempStore::postgres().await;
    let store = &t.store;
    store.insert_acme_nonces(&["n1".into(), "n3".into()], 100).await.unwrap();
    store.insert_acme_nonces(&["n2".into()], 50).await.unwrap();
    assert!(store.consume_acme_nonce("n1", 10).await.unwrap());
    assert!(!store.consume_acme_nonce("n1", 10).await.unwrap(), "used once");
    assert!(!store.consume_acme_nonce("n2", 50).await.unwrap(), "expired");
    assert!(!store.consume_acme_nonce("never", 10).await.unwrap());
    assert!(store.consume_acme_nonce("n3", 10).await.unwrap());
    // A kid-signed request's nonce and account in one statement.
    let account = an_account();
    store.insert_acme_account(&account).await.unwrap();
    store.insert_acme_nonces(&["n4".into(), "n5".into()], 100).await.unwrap();
    let consume =
        |nonce, account, also| store.consume_acme_nonce_reading_account(nonce, 10, account, also);
    let (good, read, _) = consume("n4", "acct", Prefetch::Nothing).await.unwrap();
    assert!(good);
    assert_eq!(read.map(|a| a.thumbprint), Some("tp".into()));
    let (good, read, _) = consume("n4", "acct", Prefetch::Nothing).await.unwrap();
    assert!(!good, "used once");
    assert!(read.is_some());
    let (good, read, _) = consume("n5", "other", Prefetch::Nothing).await.unwrap();
    assert!(good);
    assert!(read.is_none(), "no such account");
    assert_eq!(store.purge_acme_nonces(60).await.unwrap(), 1);

    // With the order or authorization the request names, as the reads of them give it.
    let order = an_order("o1", "ready");
    let authz = a_valid_authorization("o1");
    let challenge = ChallengeRow {
        id: "o1-a-c".into(),
        authz_id: "o1-a".into(),
        kind: "http-01".into(),
        token: "t".into(),
        status: "valid".into(),
        validated_at: Some(5),
        error: None,
    };
    let authorizations = [(authz, vec![challenge])];
    let new = NewOrder { order: &order, authorizations: &authorizations };
    store.insert_acme_order(new, None).await.unwrap();
    store.insert_acme_nonces(&["n6".into(), "n7".into(), "n8".into()], 100).await.unwrap();
    let (good, _, found) = consume("n6", "acct", Prefetch::Order("o1")).await.unwrap();
    assert!(good);
    let Some(Prefetched::Order(o, authzs)) = found else { panic!("no order: {found:?}") };
    let (want, want_authzs) = store.acme_order_with_authorizations("o1").await.unwrap().unwrap();
    assert_eq!(format!("{o:?} {authzs:?}"), format!("{want:?} {want_authzs:?}"));
    let authz = &want_authzs[0].id;
    let (_, _, found) = consume("n7", "acct", Prefetch::Authorization(authz)).await.unwrap();
    let Some(Prefetched::Authorization(a, challenges)) = found else { panic!("{found:?}") };
    let (want, want_challenges) =
        store.acme_authorization_with_challenges(authz).await.unwrap().unwrap();
    assert_eq!(format!("{a:?} {challenges:?}"), format!("{want:?} {want_challenges:?}"));
    assert!(!challenges.is_empty());
    let (_, _, found) = consume("n8", "acct", Prefetch::Order("none")).await.unwrap();
    assert!(found.is_none(), "no such order");
    // Unlogged: their commits wait for no WAL flush (see the migration).
    let (persistence,): (String,) =
        sqlx::query_as("SELECT relpersistence::text FROM pg_class WHERE relname = 'acme_nonces'")
            .fetch_one(&mut *store.read.get().await.unwrap())
            .await
            .unwrap();
    assert_eq!(persistence, "u");
    t.remove().await;
}

#[tokio::test]
async fn admin_listings() {
    on_both!(admin_listings_on);
}

async fn admin_listings_on(store: &Store) {
    store
        .insert_object(NewObject { row: row("1", "a", 10), attributes: &[name("x"), name("y")] })
        .await
        .unwrap();
    store.insert_object(NewObject { row: row("2", "b", 20), attributes: &[] }).await.unwrap();
    let all = store.object_summaries(0, 10).await.unwrap();
    let got: Vec<(&str, Vec<String>)> =
        all.iter().map(|o| (o.id.as_str(), o.names.clone())).collect();
    assert_eq!(got, vec![("1", vec!["x".to_owned(), "y".to_owned()]), ("2", vec![])]);
    assert_eq!(store.object_summaries(1, 10).await.unwrap()[0].id, "2");
    assert!(store.certificate_page(0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn usage_limits_draws_and_derived_objects() {
    on_both!(usage_limits_draws_and_derived_objects_on);
}

async fn usage_limits_draws_and_derived_objects_on(store: &Store) {
    use super::UsageDraw::{Allocate, Protect};
    use kmip::attributes::UsageLimits;
    use kmip::enums::UsageLimitsUnit;
    let limits = UsageLimits { total: 10, count: 10, unit: UsageLimitsUnit::BYTE };
    let attrs = [Attribute::new(names::USAGE_LIMITS, limits.to_value())];
    store.insert_object(NewObject { row: row("u", "alice", 1), attributes: &attrs }).await.unwrap();
    store.insert_object(NewObject { row: row("free", "alice", 1), attributes: &[] }).await.unwrap();
    let count = |a: Vec<Attribute>| {
        let v = &a.iter().find(|a| a.name == names::USAGE_LIMITS).unwrap().value;
        UsageLimits::from_value(v).unwrap().count
    };
    assert!(store.draw_usage("u", "alice", 3, Protect, 2).await.unwrap());
    assert!(store.draw_usage("u", "alice", 4, Allocate, 3).await.unwrap());
    assert_eq!(count(store.attributes("u").await.unwrap()), 3);
    assert_eq!(store.allocated_usage("u", "alice").await.unwrap(), 4);
    // Bob cannot take 4: only the 3 left in the Count are his to use.
    assert!(!store.draw_usage("u", "bob", 4, Protect, 4).await.unwrap());
    assert_eq!(count(store.attributes("u").await.unwrap()), 3, "a refused draw takes nothing");
    // Alice's 6 come from her allocation first (4), then the Count (2).
    assert!(store.draw_usage("u", "alice", 6, Protect, 5).await.unwrap());
    assert_eq!(store.allocated_usage("u", "alice").await.unwrap(), 0);
    assert_eq!(count(store.attributes("u").await.unwrap()), 1);
    assert!(!store.draw_usage("u", "alice", 2, Allocate, 6).await.unwrap());
    // No Usage Limits: protecting is unlimited, allocating impossible.
    assert!(store.draw_usage("free", "alice", 1_000, Protect, 7).await.unwrap());
    assert!(!store.draw_usage("free", "alice", 1, Allocate, 7).await.unwrap());

    // A derived object and the Derived Key link on its base, in one transaction.
    let link = Attribute::new("Link", Value::TextString("d".into()));
    let derived = NewObject { row: row("d", "alice", 8), attributes: &[name("derived")] };
    store.insert_derived(derived, &["u".into(), "free".into()], &link, 8).await.unwrap();
    assert!(store.object("d").await.unwrap().is_some());
    for base in ["u", "free"] {
        let links = store.attributes(base).await.unwrap();
        assert_eq!(links.iter().filter(|a| a.name == "Link").count(), 1, "{base}");
    }
}

#[tokio::test]
async fn keys_due_for_rotation() {
    on_both!(keys_due_for_rotation_on);
}

async fn keys_due_for_rotation_on(store: &Store) {
    let rotating = |interval: u32, automatic: bool| {
        [
            Attribute::new(names::ROTATE_AUTOMATIC, Value::Boolean(automatic)),
            Attribute::new(names::ROTATE_INTERVAL, Value::Interval(interval)),
        ]
    };
    let active = |id: &str| {
        let mut r = row(id, "alice", 100);
        r.state = 2;
        r
    };
    for (id, attrs) in
        [("due", rotating(50, true)), ("later", rotating(80, true)), ("off", rotating(10, false))]
    {
        store.insert_object(NewObject { row: active(id), attributes: &attrs }).await.unwrap();
    }
    // Pre-Active keys wait.
    store
        .insert_object(NewObject {
            row: row("pending", "alice", 100),
            attributes: &rotating(10, true),
        })
        .await
        .unwrap();
    assert!(store.keys_due_for_rotation(149).await.unwrap().is_empty());
    assert_eq!(store.keys_due_for_rotation(150).await.unwrap(), vec!["due"]);
    let mut both = store.keys_due_for_rotation(180).await.unwrap();
    both.sort();
    assert_eq!(both, vec!["due", "later"]);
    // Once rotated (Rotate Latest False), a key is not due again.
    let old = store.object("due").await.unwrap().unwrap();
    let link = Attribute::new("Link", Value::TextString("new".into()));
    let not_latest = [Attribute::new(names::ROTATE_LATEST, Value::Boolean(false))];
    let new_row = row("new", "alice", 150);
    let replaced = super::Replacement {
        new: &new_row,
        new_attributes: &[],
        old: &old,
        old_link: &link,
        old_replaced: &not_latest,
    };
    store.rekey(&[replaced], 150).await.unwrap();
    assert_eq!(store.keys_due_for_rotation(180).await.unwrap(), vec!["later"]);
}

/// What `object_with_attributes` returns follows every write, on both backends (SQLite
/// serves it from the object cache); on SQLite a change another process makes to the file
/// shows once the cache's time is up.
#[tokio::test]
async fn reads_follow_every_write() {
    on_both!(reads_follow_every_write_on);

    let t = TempStore::sqlite().await;
    let store = &t.store;
    store.insert_object(NewObject { row: row("x", "alice", 10), attributes: &[] }).await.unwrap();
    assert!(store.object_with_attributes("x").await.unwrap().unwrap().1.is_empty());
    let path = t.dir.as_ref().unwrap().join("s.db");
    let other = Store::open_sqlite(&path).await.unwrap();
    other.add_attribute("x", &name("from the CLI"), 20).await.unwrap();
    other.close().await;
    std::thread::sleep(super::cache::TTL);
    let (_, attrs) = store.object_with_attributes("x").await.unwrap().unwrap();
    assert_eq!(attrs.len(), 1);
    t.remove().await;

    // Replicas see each other's changes at once: the cached object is checked first.
    let t = TempStore::postgres().await;
    let store = &t.store;
    store.insert_object(NewObject { row: row("x", "alice", 10), attributes: &[] }).await.unwrap();
    assert!(store.object_with_attributes("x").await.unwrap().unwrap().1.is_empty());
    let (admin, db) = t.drop.clone().unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let other = Store::open_postgres(&format!("{base}/{db}")).await.unwrap();
    other.add_attribute("x", &name("from a replica"), 20).await.unwrap();
    assert_eq!(store.object_with_attributes("x").await.unwrap().unwrap().1.len(), 1);
    other.mark_served("x").await.unwrap();
    assert!(!store.object_with_attributes("x").await.unwrap().unwrap().0.fresh);
    other.delete_object("x").await.unwrap();
    assert!(store.object_with_attributes("x").await.unwrap().is_none());
    other.close().await;
    t.remove().await;
}

async fn reads_follow_every_write_on(store: &Store) {
    let read = || async { store.object_with_attributes("c").await.unwrap().unwrap() };
    let names_of = |attrs: &[Attribute]| -> Vec<Value> {
        attrs.iter().filter(|a| a.name == names::NAME).map(|a| a.value.clone()).collect()
    };
    let mut pending = row("c", "alice", 10);
    pending.activation_date = Some(50);
    store.insert_object(NewObject { row: pending, attributes: &[name("one")] }).await.unwrap();
    assert!(store.object_with_attributes("nothing").await.unwrap().is_none());
    let (row_read, attrs) = read().await;
    assert_eq!((row_read.state, names_of(&attrs)), (1, vec![name("one").value]));

    store.add_attribute("c", &name("two"), 20).await.unwrap();
    assert_eq!(names_of(&read().await.1).len(), 2);
    store.modify_attribute("c", names::NAME, 1, &name("three").value, 21).await.unwrap();
    assert_eq!(names_of(&read().await.1)[1], name("three").value);
    store.delete_attribute("c", names::NAME, 0, 22).await.unwrap();
    assert_eq!(names_of(&read().await.1), vec![name("three").value]);

    store.apply_due_dates(50).await.unwrap();
    let (mut now, _) = read().await;
    assert_eq!(now.state, 2);
    store.mark_served("c").await.unwrap();
    assert!(!read().await.0.fresh);
    now = read().await.0;
    now.state = 3;
    store.save_lifecycle(&now).await.unwrap();
    assert_eq!(read().await.0.state, 3);

    let before = read().await;
    store.add_attribute("c", &name("four"), 30).await.unwrap();
    assert_eq!(names_of(&read().await.1).len(), 2);
    let after = read().await.0.version;
    // Only over the version the undone change left: not over someone else's since.
    let stale = store.restore_object(&before.0, &before.1, after - 1).await;
    assert!(matches!(stale, Err(super::StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(names_of(&read().await.1).len(), 2, "left as it was");
    store.restore_object(&before.0, &before.1, after).await.unwrap();
    assert_eq!(names_of(&read().await.1), vec![name("three").value]);
    store.delete_object("c").await.unwrap();
    assert!(store.object_with_attributes("c").await.unwrap().is_none());
}

#[tokio::test]
async fn batches_commit_whole_or_not_at_all() {
    on_both!(batches_commit_whole_or_not_at_all_on);
}

async fn batches_commit_whole_or_not_at_all_on(store: &Store) {
    use super::leases::add_certificate_row;
    let cert = |serial: &str| super::CertificateRow {
        role: "test".into(),
        subject: "s".into(),
        ..a_certificate(serial, "ca", 2)
    };
    let subject = |serial: &'static str| async move {
        store.certificate(serial).await.unwrap().map(|c| c.subject)
    };
    // Many statements with binds in each; then inserts beside an update of a row that was
    // there before the batch (statements of one batch do not see each other's writes on
    // PostgreSQL).
    let mut batch = store.batch();
    for i in 0..300 {
        add_certificate_row(&mut batch, &cert(&format!("{i:04}")));
    }
    store.commit(batch, |_| {}).await.unwrap();
    let mut batch = store.batch();
    add_certificate_row(&mut batch, &cert("0300"));
    batch
        .add("UPDATE certificates SET subject = ")
        .bind("changed")
        .push(" WHERE serial = ")
        .bind("0007");
    add_certificate_row(&mut batch, &cert("0301"));
    store.commit(batch, |_| {}).await.unwrap();
    assert_eq!(subject("0299").await.as_deref(), Some("s"));
    assert_eq!(subject("0301").await.as_deref(), Some("s"));
    assert_eq!(subject("0007").await.as_deref(), Some("changed"));

    // A statement that fails (a serial already there) undoes those before it, `then` does
    // not run, and the connection takes the next batch.
    let mut batch = store.batch();
    add_certificate_row(&mut batch, &cert("new1"));
    add_certificate_row(&mut batch, &cert("0001"));
    assert!(store.commit(batch, |_| panic!("ran after a failed batch")).await.is_err());
    assert_eq!(subject("new1").await, None);
    let mut batch = store.batch();
    add_certificate_row(&mut batch, &cert("new2"));
    store.commit(batch, |_| {}).await.unwrap();
    assert!(subject("new2").await.is_some());

    // A caller that goes away once the batch has started does not stop it half-way.
    let mut batch = store.batch();
    add_certificate_row(&mut batch, &cert("new3"));
    let mut commit = Box::pin(store.commit(batch, |_| {}));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let first = std::future::Future::poll(commit.as_mut(), &mut cx);
    assert!(first.is_pending(), "committed on its first poll");
    drop(commit);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while subject("new3").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the batch stopped with its caller");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut batch = store.batch();
    add_certificate_row(&mut batch, &cert("new4"));
    store.commit(batch, |_| {}).await.unwrap();
    assert!(subject("new4").await.is_some());

    // A batch committed without waiting for the disk, then one that fails so: each
    // leaves its connection committing durably again.
    let mut conn = store.write.get().await.unwrap();
    let mut batch = store.batch().without_flush();
    add_certificate_row(&mut batch, &cert("new5"));
    if store.backend == Backend::Sqlite {
        // The level the transaction ran at (NORMAL is 1), kept in a column.
        batch
            .add("UPDATE certificates SET subject = (SELECT CAST(synchronous AS TEXT) FROM pragma_synchronous()) WHERE serial = ")
            .bind("0008");
    }
    batch.commit(&mut conn).await.unwrap();
    assert_eq!(durability(store, &mut conn).await, "durable");
    if store.backend == Backend::Sqlite {
        assert_eq!(subject("0008").await.as_deref(), Some("1"), "committed at NORMAL");
    }
    let mut batch = store.batch().without_flush();
    add_certificate_row(&mut batch, &cert("new6"));
    add_certificate_row(&mut batch, &cert("new5"));
    assert!(batch.commit(&mut conn).await.is_err());
    assert_eq!(durability(store, &mut conn).await, "durable");
    drop(conn);
    assert!(subject("new5").await.is_some());
    assert_eq!(subject("new6").await, None);
}

/// How `conn` commits now: SQLite's `synchronous` (FULL is 2), PostgreSQL's
/// `synchronous_commit`.
async fn durability(store: &Store, conn: &mut sqlx::AnyConnection) -> &'static str {
    let durable = match store.backend {
        Backend::Sqlite => {
            let (level,): (i64,) =
                sqlx::query_as("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap();
            level == 2
        }
        Backend::Postgres => {
            let (setting,): (String,) =
                sqlx::query_as("SHOW synchronous_commit").fetch_one(&mut *conn).await.unwrap();
            setting == "on"
        }
    };
    if durable {
        "durable"
    } else {
        "not durable"
    }
}

/// CRL numbers (RFC 5280 §5.2.3) only increase, per issuer: at least the floor given (the
/// build's millisecond), and one more than the last when the clock gives no more.
#[tokio::test]
async fn crl_numbers_only_increase() {
    on_both!(crl_numbers_only_increase_on);
}

async fn crl_numbers_only_increase_on(store: &Store) {
    assert_eq!(store.next_crl_number("root", 1000).await.unwrap(), 1000);
    assert_eq!(store.next_crl_number("root", 1000).await.unwrap(), 1001);
    assert_eq!(store.next_crl_number("root", 900).await.unwrap(), 1002, "a clock behind");
    assert_eq!(store.next_crl_number("root", 5000).await.unwrap(), 5000);
    assert_eq!(store.next_crl_number("int-1", 10).await.unwrap(), 10, "per issuer");
}

/// Two requests making an account with one key: the second insert writes nothing and says
/// so (keys are unique), so that its request answers with the first's account.
#[tokio::test]
async fn an_account_key_is_taken_once() {
    on_both!(an_account_key_is_taken_once_on);
}

async fn an_account_key_is_taken_once_on(store: &Store) {
    let account = an_account();
    assert!(store.insert_acme_account(&account).await.unwrap());
    let again = super::AccountRow { id: "acct-2".into(), ..an_account() };
    assert!(!store.insert_acme_account(&again).await.unwrap());
    assert!(store.acme_account("acct-2").await.unwrap().is_none());
}

/// Certificates Certify issued before `kmip_object` existed get the oldest Certificate
/// object holding exactly their DER (the one Certify made, not a copy registered later),
/// and its Revoke then reaches them; a copy's does not.
#[tokio::test]
async fn certified_objects_are_linked_and_revoke_their_certificate() {
    on_both!(certified_objects_are_linked_on);
}

async fn certified_objects_are_linked_on(store: &Store) {
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x07];
    let certificate = |id: &str, initial: i64| ObjectRow {
        object_type: i64::from(kmip::enums::ObjectType::CERTIFICATE.0),
        public_material: Some(der.clone()),
        ..row(id, "alice", initial)
    };
    for (id, initial) in [("copy", 20), ("made", 10)] {
        let new = NewObject { row: certificate(id, initial), attributes: &[] };
        store.insert_object(new).await.unwrap();
    }
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
    );
    let record = super::CertificateRow {
        role: "kmip-certify".into(),
        pem,
        ..a_certificate("07", "int-a", 100)
    };
    store.insert_certificate(&record).await.unwrap();
    assert_eq!(store.link_certified_objects().await.unwrap(), 1);
    assert_eq!(store.link_certified_objects().await.unwrap(), 0, "once");
    assert!(!store.revoke_certified("copy", 1, 50).await.unwrap());
    assert!(store.certificate("07").await.unwrap().unwrap().revoked_at.is_none());
    assert!(store.revoke_certified("made", 1, 50).await.unwrap());
    assert_eq!(store.certificate("07").await.unwrap().unwrap().revoked_at, Some(50));
}

/// The search for unlinked Certify certificates, run at every start, reads its small
/// partial index, not the certificates table.
#[tokio::test]
async fn unlinked_certificates_are_found_by_their_index() {
    let t = TempStore::sqlite().await;
    let sql = format!("EXPLAIN QUERY PLAN {}", super::leases::UNLINKED_CERTIFIED);
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *t.store.read.get().await.unwrap())
        .await
        .unwrap();
    let text: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("certificates_unlinked")), "{text:?}");
    t.remove().await;
}

/// An Import keeps every lifecycle column it brings; a replacing one swaps the objects in
/// one step, and only the version it was asked to replace.
#[tokio::test]
async fn imports_keep_their_lifecycle_and_replace_one_version() {
    on_both!(imports_keep_their_lifecycle_and_replace_one_version_on);
}

async fn imports_keep_their_lifecycle_and_replace_one_version_on(store: &Store) {
    let mut imported = row("i", "alice", 10);
    imported.compromise_date = Some(20);
    imported.revocation_reason = Some(2);
    imported.revocation_message = Some("leaked".to_owned());
    store.import_object(NewObject { row: imported, attributes: &[name("a")] }, None).await.unwrap();
    let (kept, attrs) = store.object_with_attributes("i").await.unwrap().unwrap();
    assert_eq!(
        (kept.compromise_date, kept.revocation_reason, kept.revocation_message.as_deref()),
        (Some(20), Some(2), Some("leaked"))
    );
    assert_eq!(attrs.len(), 1);

    let stale = NewObject { row: row("i", "bob", 30), attributes: &[] };
    let refused = store.import_object(stale, Some(kept.version + 1)).await;
    assert!(matches!(refused, Err(super::StoreError::Conflict(_))), "{refused:?}");
    let (still, attrs) = store.object_with_attributes("i").await.unwrap().unwrap();
    assert_eq!((still.owner.as_str(), attrs.len()), ("alice", 1));

    let new = NewObject { row: row("i", "bob", 30), attributes: &[name("b"), name("c")] };
    store.import_object(new, Some(kept.version)).await.unwrap();
    let (now, attrs) = store.object_with_attributes("i").await.unwrap().unwrap();
    assert_eq!((now.owner.as_str(), now.compromise_date, attrs.len()), ("bob", None, 2));
    assert!(now.version > kept.version, "replicas' caches see a change");
}

/// Audit events the store refuses for a while (here its table is away) are kept and
/// stored once it takes them again, in order, on the one chain.
#[tokio::test]
async fn refused_audit_events_are_kept_and_stored_later() {
    use sqlx::Connection as _;
    let t = TempStore::sqlite().await;
    let store = &t.store;
    let event = |op: &str| AuditEvent {
        at: 1,
        principal: "p".into(),
        protocol: "api",
        operation: op.into(),
        object_id: None,
        outcome: "ok".into(),
        detail: None,
    };
    store.audit(event("before")).await;
    store.flush().await;
    let url = format!("sqlite://{}", t.dir.as_ref().unwrap().join("s.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(rename("audit", "audit_away")))
        .execute(&mut other)
        .await
        .unwrap();
    store.audit(event("while away")).await;
    store.flush().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(rename("audit_away", "audit")))
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    store.audit(event("after")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stored = loop {
        store.flush().await;
        let rows = store.audit_events(0, Some("p"), None, 10).await.unwrap();
        if rows.len() == 3 || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let ops: Vec<&str> = stored.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["before", "while away", "after"]);
    t.remove().await;
}

/// Adding an attribute only if absent, or only with a new value, is decided where it is
/// added: a second add of a single-valued attribute, or of the same Name, adds nothing.
#[tokio::test]
async fn conditional_adds_add_once() {
    on_both!(conditional_adds_add_once_on);
}

async fn conditional_adds_add_once_on(store: &Store) {
    use super::AddIf;
    store.insert_object(NewObject { row: row("a", "alice", 1), attributes: &[] }).await.unwrap();
    let interval = Attribute::new("Rotate Interval", Value::Interval(60));
    assert_eq!(store.add_attribute_if("a", &interval, 2, AddIf::Absent).await.unwrap(), Some(0));
    assert_eq!(store.add_attribute_if("a", &interval, 3, AddIf::Absent).await.unwrap(), None);
    assert_eq!(store.add_attribute_if("a", &name("n"), 4, AddIf::NewValue).await.unwrap(), Some(0));
    assert_eq!(store.add_attribute_if("a", &name("n"), 5, AddIf::NewValue).await.unwrap(), None);
    assert_eq!(store.add_attribute_if("a", &name("m"), 6, AddIf::NewValue).await.unwrap(), Some(1));
    assert_eq!(store.attributes("a").await.unwrap().len(), 3);
}
