//! Write-through evidence: the ACK names the scope and id, says inserted then updated, carries a
//! watermark that strictly advances, and the next read sees the write; the native watermark
//! moves only for changes in its own scope and is served by the scope index.

use kyro_connector_sdk::{Connector, MutationAck, MutationOutcome, Watermark};

use crate::support::{DIMENSION, TestTable, direction, document, hit_ids, id, scope, search};

/// `<transaction id>@<watermark>`, with the ACK's own watermark.
fn assert_backend_mutation_id(ack: &MutationAck) {
    let (transaction_id, watermark) = ack.backend_mutation_id.split_once('@').unwrap();
    assert!(
        transaction_id.chars().all(|c| c.is_ascii_digit()) && !transaction_id.is_empty(),
        "{ack:?}"
    );
    assert_eq!(watermark.parse::<u64>().unwrap(), ack.watermark.unwrap().value(), "{ack:?}");
}

#[test]
fn an_ack_names_the_write_and_the_next_read_sees_it() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");

    let inserted =
        connector.upsert(&mine, &document("doc-1", direction(1, 0.0), &[("lang", "en")])).unwrap();
    assert_eq!((&inserted.scope, inserted.id.as_str()), (&mine, "doc-1"));
    assert_eq!(inserted.outcome, MutationOutcome::Inserted);
    assert_backend_mutation_id(&inserted);
    let first = inserted.watermark.unwrap();
    assert!(first > Watermark(0));

    let fetched = connector.fetch(&mine, &[id("doc-1")]).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].metadata.get("lang"), Some("en"));
    assert_eq!(fetched[0].watermark, Some(first));
    assert_eq!(connector.watermark(&mine).unwrap(), first);

    let updated =
        connector.upsert(&mine, &document("doc-1", direction(2, 0.0), &[("lang", "de")])).unwrap();
    assert_eq!((&updated.scope, updated.id.as_str()), (&mine, "doc-1"));
    assert_eq!(updated.outcome, MutationOutcome::Updated);
    assert_backend_mutation_id(&updated);
    let second = updated.watermark.unwrap();
    assert!(second > first, "{second:?} does not advance past {first:?}");

    let fetched = connector.fetch(&mine, &[id("doc-1")]).unwrap();
    assert_eq!(fetched[0].metadata.get("lang"), Some("de"));
    assert_eq!(fetched[0].watermark, Some(second));
    // The new embedding is what search sees: the document is now nearest to axis 2.
    let response = connector.search(&mine, &search(direction(2, 0.0), 1, None)).unwrap();
    assert_eq!(hit_ids(&response), ["doc-1"]);
    assert!(response.hits[0].score > 0.999, "{}", response.hits[0].score);

    let deleted = connector.delete(&mine, &id("doc-1")).unwrap();
    assert_eq!(
        (&deleted.scope, deleted.id.as_str(), deleted.outcome),
        (&mine, "doc-1", MutationOutcome::Deleted)
    );
    assert_backend_mutation_id(&deleted);
    assert!(connector.fetch(&mine, &[id("doc-1")]).unwrap().is_empty());
    let again = connector.delete(&mine, &id("doc-1")).unwrap();
    assert_eq!(again.outcome, MutationOutcome::NotFound);
    assert!(again.backend_mutation_id.starts_with("none@"), "{again:?}");
}

#[test]
fn the_watermark_advances_within_its_scope_and_stays_put_for_other_scopes() {
    let table = TestTable::create(DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    let other_tenant = scope("tenant-b", "docs");
    let other_namespace = scope("tenant-a", "other");

    assert_eq!(connector.watermark(&mine).unwrap(), Watermark(0), "an empty scope is 0");
    let ack = connector.upsert(&mine, &document("doc-1", direction(0, 0.0), &[])).unwrap();
    let after_mine = connector.watermark(&mine).unwrap();
    assert_eq!(Some(after_mine), ack.watermark);

    connector.upsert(&other_tenant, &document("doc-1", direction(0, 0.0), &[])).unwrap();
    connector.upsert(&other_namespace, &document("doc-2", direction(0, 0.0), &[])).unwrap();
    assert_eq!(connector.watermark(&mine).unwrap(), after_mine, "another scope's write moved mine");
    assert!(connector.watermark(&other_tenant).unwrap() > Watermark(0));

    connector.upsert(&mine, &document("doc-3", direction(3, 0.0), &[])).unwrap();
    let advanced = connector.watermark(&mine).unwrap();
    assert!(advanced > after_mine);

    // Documented limitation: a max()-based watermark does not advance on a delete (the delete's
    // ACK is the evidence); deleting an older row leaves it where it was.
    connector.delete(&mine, &id("doc-1")).unwrap();
    assert_eq!(connector.watermark(&mine).unwrap(), advanced);
}

#[test]
fn a_bigint_watermark_column_counts_per_scope() {
    let table = TestTable::create_with(DIMENSION, |sql| {
        sql.replace(
            "updated_at timestamptz NOT NULL DEFAULT clock_timestamp()",
            "updated_at bigint NOT NULL DEFAULT 0",
        )
    });
    let connector = table.open(serde_json::json!({})).unwrap();
    let mine = scope("tenant-a", "docs");
    let other = scope("tenant-b", "docs");
    let watermarks: Vec<u64> = ["a", "b", "a"]
        .iter()
        .map(|doc_id| {
            connector
                .upsert(&mine, &document(doc_id, direction(0, 0.0), &[]))
                .unwrap()
                .watermark
                .unwrap()
                .value()
        })
        .collect();
    assert_eq!(watermarks, [1, 2, 3]);
    assert_eq!(connector.watermark(&mine).unwrap(), Watermark(3));
    let other_ack = connector.upsert(&other, &document("a", direction(0, 0.0), &[])).unwrap();
    assert_eq!(other_ack.watermark, Some(Watermark(1)));
    assert_eq!(connector.watermark(&mine).unwrap(), Watermark(3));
}

/// The connector's scope-watermark statement for the example schema (a unit test in the crate
/// asserts it is exactly this text).
const SCOPE_WATERMARK_SQL: &str = "SELECT (extract(epoch FROM max(\"updated_at\")) * 1000000)::bigint \
     FROM \"public\".\"{table}\" WHERE \"tenant_id\" = $1 AND \"namespace\" = $2";

#[test]
fn the_scope_watermark_is_read_from_the_scope_index_not_a_table_scan() {
    let table = TestTable::create(DIMENSION);
    // The vector index only slows the bulk insert down; the plan in question does not use it.
    table.db.execute(&format!("DROP INDEX {}_embedding_idx", table.name));
    table.db.execute(&format!(
        "INSERT INTO {} (tenant_id, namespace, id, embedding) \
         SELECT 'tenant-' || (g % 50), 'docs', 'doc-' || g, array_fill(0.5::real, ARRAY[{DIMENSION}])::vector \
         FROM generate_series(1, 20000) AS g; ANALYZE {};",
        table.name, table.name
    ));
    let statement = SCOPE_WATERMARK_SQL.replace("{table}", &table.name);
    let plan = table.db.explain(&statement, &["tenant-7", "docs"]);
    assert!(plan.contains(&format!("{}_scope_idx", table.name)), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}
