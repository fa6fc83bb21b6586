//! Store tests on a real SQLite file.

use kmip::attributes::{names, Attribute};
use kmip::{Tag, Ttlv, Value};

use super::{AuditEvent, LocateQuery, NewObject, ObjectRow, Store};

async fn temp_store() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("strongroom-store-{}", crate::util::uuid_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    (Store::open_sqlite(&dir.join("s.db")).await.unwrap(), dir)
}

fn row(id: &str, owner: &str, initial: i64) -> ObjectRow {
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

fn name(n: &str) -> Attribute {
    Attribute::new(
        names::NAME,
        Value::Structure(vec![
            Ttlv::new(Tag::NAME_VALUE, Value::TextString(n.into())),
            Ttlv::new(Tag::NAME_TYPE, Value::Enumeration(1)),
        ]),
    )
}

#[tokio::test]
async fn objects_attributes_and_locate() {
    let (store, dir) = temp_store().await;
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
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn locate_by_name_uses_the_index() {
    let (store, dir) = temp_store().await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        // The WHERE clause Locate builds (see where_clause), for one caller and a name.
        "EXPLAIN QUERY PLAN SELECT o.id FROM objects o WHERE (o.owner = 'a' OR o.id IN \
         (SELECT object_id FROM grants WHERE principal = 'a')) \
         AND ((1 != 0 AND o.archived = 0 AND o.state NOT IN (5, 6)) OR (0 != 0 AND o.archived = 1) \
         OR (0 != 0 AND o.state IN (5, 6))) \
         AND o.id IN (SELECT object_id FROM attributes WHERE name = 'Name' AND match_key = 'k') \
         ORDER BY o.initial_date DESC, o.rowid DESC",
    )
    .fetch_all(&store.read)
    .await
    .unwrap();
    let text: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
    assert!(text.iter().any(|t| t.contains("attributes_match")), "{text:?}");
    assert!(!text.iter().any(|t| t.starts_with("SCAN")), "{text:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn audit_events_are_committed_on_flush() {
    let (store, dir) = temp_store().await;
    for op in ["Get", "Destroy"] {
        store
            .audit(AuditEvent {
                at: 1,
                principal: "CN=alice".into(),
                protocol: "kmip",
                operation: op.into(),
                object_id: Some("x".into()),
                outcome: "ok".into(),
                detail: None,
            })
            .await;
    }
    store.flush().await;
    let events = store.audit_for_object("x").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].1, "Destroy");
    std::fs::remove_dir_all(dir).unwrap();
}
