//! Shrinking a failing read to a minimal witness: smaller `top_k`, filter subtrees dropped or
//! hoisted, fewer fetched ids, as long as the same property still fails. Greedy and bounded by a
//! number of connector calls; reads change nothing, so the oracle's state still applies.

use kyro_connector_sdk::{DocumentId, FilterExpr, RuntimeFilter, SearchRequest};

/// A read that can be sent again.
#[derive(Debug, Clone)]
pub(crate) enum Read {
    Search { scope_idx: usize, request: SearchRequest, query_note: String },
    Fetch { scope_idx: usize, ids: Vec<DocumentId> },
}

/// Shrinks `read` while `still_fails` says the candidate breaks the property; `still_fails` is
/// called at most `max_calls` times. Returns the smallest failing read found.
pub(crate) fn shrink(
    read: Read,
    max_calls: usize,
    still_fails: &mut dyn FnMut(&Read) -> bool,
) -> Read {
    let mut current = read;
    let mut n_calls = 0;
    'outer: loop {
        for candidate in candidates(&current) {
            if n_calls >= max_calls {
                break 'outer;
            }
            n_calls += 1;
            if still_fails(&candidate) {
                current = candidate;
                continue 'outer;
            }
        }
        break;
    }
    current
}

fn candidates(read: &Read) -> Vec<Read> {
    match read {
        Read::Search { scope_idx, request, query_note } => {
            let with = |request: SearchRequest| Read::Search {
                scope_idx: *scope_idx,
                request,
                query_note: query_note.clone(),
            };
            let mut out = Vec::new();
            if let Some(filter) = &request.filter {
                out.push(with(SearchRequest { filter: None, ..request.clone() }));
                for smaller in smaller_filters(filter.root()) {
                    if let Ok(filter) = RuntimeFilter::new(smaller) {
                        out.push(with(SearchRequest { filter: Some(filter), ..request.clone() }));
                    }
                }
            }
            let top_k = request.top_k;
            let mut top_ks = vec![1, top_k / 2, top_k.saturating_sub(1)];
            top_ks.retain(|candidate| *candidate >= 1 && *candidate < top_k);
            top_ks.dedup();
            for candidate in top_ks {
                out.push(with(SearchRequest { top_k: candidate, ..request.clone() }));
            }
            out
        }
        Read::Fetch { scope_idx, ids } => {
            let mut out = Vec::new();
            if ids.len() > 2 {
                let half = ids.len() / 2;
                out.push(Read::Fetch { scope_idx: *scope_idx, ids: ids[..half].to_vec() });
                out.push(Read::Fetch { scope_idx: *scope_idx, ids: ids[half..].to_vec() });
            }
            if ids.len() > 1 {
                for skip in 0..ids.len() {
                    let mut fewer = ids.clone();
                    fewer.remove(skip);
                    out.push(Read::Fetch { scope_idx: *scope_idx, ids: fewer });
                }
            }
            out
        }
    }
}

/// Every tree one step smaller than `filter`: a node replaced by one of its children, or a child
/// of an `and`/`or` with several removed.
fn smaller_filters(filter: &FilterExpr) -> Vec<FilterExpr> {
    let mut out = Vec::new();
    match filter {
        FilterExpr::Exact { .. } | FilterExpr::In { .. } | FilterExpr::Range { .. } => {}
        FilterExpr::Not(child) => {
            out.push((**child).clone());
            for smaller in smaller_filters(child) {
                out.push(FilterExpr::Not(Box::new(smaller)));
            }
        }
        FilterExpr::And(children) | FilterExpr::Or(children) => {
            let rebuild = |children: Vec<FilterExpr>| match filter {
                FilterExpr::And(_) => FilterExpr::And(children),
                _ => FilterExpr::Or(children),
            };
            out.extend(children.iter().cloned());
            if children.len() > 1 {
                for skip in 0..children.len() {
                    let mut fewer = children.clone();
                    fewer.remove(skip);
                    out.push(rebuild(fewer));
                }
            }
            for (child_idx, child) in children.iter().enumerate() {
                for smaller in smaller_filters(child) {
                    let mut replaced = children.clone();
                    replaced[child_idx] = smaller;
                    out.push(rebuild(replaced));
                }
            }
        }
    }
    out
}
