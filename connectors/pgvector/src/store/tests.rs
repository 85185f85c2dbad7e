//! Unit tests of the row decoding that needs no database: a document's scope label comes from
//! its row's tenant and namespace, never from the request.

use kyro_connector_sdk::Scope;

use super::row_scope;

fn scope(tenant: &str, namespace: &str) -> Scope {
    Scope::new(tenant, namespace).unwrap()
}

#[test]
fn a_row_of_the_requested_scope_is_labelled_with_it() {
    let request = scope("acme", "docs");
    assert_eq!(row_scope(&request, "acme".to_owned(), "docs".to_owned()), Some(request));
}

#[test]
fn a_row_of_another_scope_keeps_its_own_label() {
    // What a case-insensitive collation (or a broken query) lets through must reach the host
    // labelled as what it is, so the host refuses it.
    let request = scope("acme", "docs");
    assert_eq!(
        row_scope(&request, "Acme".to_owned(), "docs".to_owned()),
        Some(scope("Acme", "docs"))
    );
    assert_eq!(
        row_scope(&request, "acme".to_owned(), "DOCS".to_owned()),
        Some(scope("acme", "DOCS"))
    );
}

#[test]
fn a_row_whose_scope_is_invalid_gets_no_label() {
    let request = scope("acme", "docs");
    assert_eq!(row_scope(&request, "acme ".to_owned(), "docs".to_owned()), None);
    assert_eq!(row_scope(&request, String::new(), "docs".to_owned()), None);
}
