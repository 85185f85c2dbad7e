//! Short, human-readable renderings of generated requests and answers for witnesses: filters in
//! infix form, scopes by alias (`G0`; the report's `space` maps aliases to names), hits as id
//! and origin. Never `Debug` dumps, and every rendering is capped.

use std::fmt::Write as _;

use kyro_connector_sdk::{FilterExpr, StoredDocument};

use super::model::{Model, Origin};

/// The longest any one witness field may be, in bytes.
pub(crate) const WITNESS_FIELD_CAP: usize = 1024;

/// `text` cut to at most `cap` bytes on a character boundary, saying how long it was.
pub(crate) fn cap(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let mut end = cap.saturating_sub(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// A filter in infix form: `lang = "en"`, `year in ["2019", "2021"]`, `2019 <= year <= 2021`,
/// `and(..)`, `or(..)`, `not(..)`.
pub(crate) fn filter(filter: &FilterExpr) -> String {
    let mut text = String::new();
    write_filter(filter, &mut text);
    text
}

fn write_filter(filter: &FilterExpr, text: &mut String) {
    match filter {
        FilterExpr::Exact { key, value } => {
            let _ = write!(text, "{key} = {:?}", value.as_str());
        }
        FilterExpr::In { key, values } => {
            let values: Vec<String> =
                values.iter().map(|value| format!("{:?}", value.as_str())).collect();
            let _ = write!(text, "{key} in [{}]", values.join(", "));
        }
        FilterExpr::Range { key, min, max } => match (min, max) {
            (Some(min), Some(max)) => {
                let _ = write!(text, "{min} <= {key} <= {max}");
            }
            (Some(min), None) => {
                let _ = write!(text, "{key} >= {min}");
            }
            (None, Some(max)) => {
                let _ = write!(text, "{key} <= {max}");
            }
            (None, None) => {
                let _ = write!(text, "{key} is a number");
            }
        },
        FilterExpr::And(children) | FilterExpr::Or(children) => {
            text.push_str(if matches!(filter, FilterExpr::And(_)) { "and(" } else { "or(" });
            for (child_idx, child) in children.iter().enumerate() {
                if child_idx > 0 {
                    text.push_str(", ");
                }
                write_filter(child, text);
            }
            text.push(')');
        }
        FilterExpr::Not(child) => {
            text.push_str("not(");
            write_filter(child, text);
            text.push(')');
        }
    }
}

/// One returned document: its id, and where it really comes from when that is not the current
/// version of the request's scope; the label it carried when that is not its origin.
pub(crate) fn returned(model: &Model, scope_idx: usize, document: &StoredDocument) -> String {
    let origin = model.identify(scope_idx, document);
    let mut text = format!("{:?}", document.id.as_str());
    match origin {
        Origin::Home(_) => {}
        Origin::Foreign(doc_idx) => {
            let doc = model.doc(doc_idx);
            let _ = write!(text, " [a document of {} v{}]", model.alias(doc.scope), doc.version);
        }
        Origin::Stale(doc_idx) => {
            let doc = model.doc(doc_idx);
            match model.current(scope_idx, &doc.id) {
                Some(current) => {
                    let _ = write!(
                        text,
                        " [stale: v{} while v{} is current]",
                        doc.version,
                        model.doc(current).version
                    );
                }
                None => text.push_str(" [deleted]"),
            }
        }
        Origin::Unknown => text.push_str(" [never written with this id and content]"),
    }
    let origin_scope = match origin {
        Origin::Home(doc_idx) | Origin::Foreign(doc_idx) | Origin::Stale(doc_idx) => {
            Some(model.doc(doc_idx).scope)
        }
        Origin::Unknown => None,
    };
    let label = model.scope_index(&document.scope);
    if origin_scope.is_some() && label != origin_scope {
        let label = label.map_or_else(
            || "a scope outside the space".to_owned(),
            |label| model.alias(label).to_owned(),
        );
        let _ = write!(text, " labelled {label}");
    }
    text
}

/// A document the oracle expects, for `expected` fields.
pub(crate) fn expected_doc(model: &Model, doc_idx: usize) -> String {
    let doc = model.doc(doc_idx);
    format!("{:?} v{}", doc.id, doc.version)
}

/// A list rendered as `n items: a, b, c`, capped.
pub(crate) fn list(items: &[String]) -> String {
    cap(&format!("{} items: {}", items.len(), items.join(", ")), WITNESS_FIELD_CAP)
}
