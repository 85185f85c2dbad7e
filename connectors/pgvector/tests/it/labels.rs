//! Honest labels: every document search and fetch return carries the tenant and namespace of
//! its own row (selected with it), never the request's; and the connector certifies through
//! `kyro_certification`'s library call against the live database in both ownership modes,
//! leaving nothing behind.

use std::time::Duration;

use kyro_certification::{Depth, Options, Verdict, certify_connector};
use kyro_connector_pgvector::PgvectorConnector;
use kyro_connector_sdk::{Connector, Scope};

use crate::support::{TestTable, direction, document, id, scope, search};

/// Scopes that differ only in letter case: a case-insensitive comparison anywhere would mix them.
fn case_variants() -> [Scope; 3] {
    [scope("acme", "docs"), scope("Acme", "docs"), scope("acme", "DOCS")]
}

#[test]
fn every_returned_document_is_labelled_with_its_own_rows_scope() {
    let table = TestTable::create(crate::support::DIMENSION);
    let connector = table.open(serde_json::json!({})).unwrap();
    for (scope_idx, owner) in case_variants().iter().enumerate() {
        for doc_id in ["shared", "only"] {
            let written =
                document(doc_id, direction(scope_idx, 0.1), &[("owner", &owner.to_string())]);
            connector.upsert(owner, &written).unwrap();
        }
    }
    for (scope_idx, asked) in case_variants().iter().enumerate() {
        let response =
            connector.search(asked, &search(direction(scope_idx, 0.1), 10, None)).unwrap();
        assert_eq!(response.hits.len(), 2, "{asked}");
        let fetched = connector.fetch(asked, &[id("shared"), id("only")]).unwrap();
        assert_eq!(fetched.len(), 2, "{asked}");
        let documents = response.hits.iter().map(|hit| &hit.document).chain(fetched.iter());
        for document in documents {
            // The row says whose it is in its metadata; the label must agree with the row.
            let owner = document.metadata.get("owner").unwrap();
            assert_eq!(document.scope.to_string(), owner, "asked {asked}");
            assert_eq!(&document.scope, asked);
        }
    }
}

fn certification_config(table: &TestTable, ownership: &str) -> serde_json::Value {
    serde_json::json!({
        "dsn": { "env": crate::support::DATABASE_URL_VAR },
        "table": format!("public.{}", table.name),
        "dimension": crate::support::DIMENSION,
        "distance": "cosine",
        "ownership_mode": ownership,
        "filterable_keys": ["lang", "year"],
        "max_top_k": 50,
        "max_fetch_ids": 50,
    })
}

#[test]
fn pgvector_certifies_through_the_library_call_in_both_ownership_modes() {
    for ownership in ["write_through", "event_feed"] {
        let table = TestTable::create(crate::support::DIMENSION);
        let options = Options {
            depth: Depth::Standard,
            seed: None,
            call_timeout: Duration::from_secs(5),
            budget: None,
        };
        let report = certify_connector::<PgvectorConnector>(
            &certification_config(&table, ownership),
            options,
        )
        .unwrap();
        let lines: Vec<String> = report.checks.iter().map(|check| check.to_line()).collect();
        assert_eq!(
            report.verdict,
            Verdict::Certified,
            "{ownership} (seed {}):\n{}\n{}",
            report.seed,
            lines.join("\n"),
            report.summary_line()
        );
        assert_eq!(report.profile, format!("pgvector/{ownership}"));
        assert_eq!(table.n_rows(), 0, "{ownership}: certification left rows behind");
    }
}
