//! The host's structural rules: layer edges point one way, no import cycle among the host's
//! modules, no file above the size limit, no long function without a reason written next to it.
//!
//! Each rule is a pure function over `(path, source)` pairs, run once on the real host and once
//! on a small synthetic tree that breaks it, so every rule is proven to fire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The host's layers, bottom first, with the layers each may import (`crate::<layer>`).
const LAYERS: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("config", &[]),
    ("stores", &["config"]),
    ("runtime", &["wire", "config", "stores"]),
    ("evidence", &["wire", "config", "stores", "runtime"]),
    ("http", &["wire", "config", "stores", "runtime", "evidence"]),
    ("cli", &["wire", "config", "stores", "runtime", "evidence", "http"]),
];

/// The most lines a host file may have.
pub(super) const MAX_FILE_LINES: usize = 500;
/// The most lines a host function may have without a `long-function:` comment saying why.
pub(super) const MAX_FUNCTION_LINES: usize = 80;

/// A source file: its path below `src/`, and its text.
pub(super) type Source = (PathBuf, String);

/// Every `.rs` file below `dir`, with paths relative to it.
pub(super) fn sources(dir: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    super::rust_files(dir, &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.strip_prefix(dir).unwrap().to_path_buf(), text)
        })
        .collect()
}

/// The module path of a file below `src/`: `runtime/retrieve.rs` is `runtime::retrieve`,
/// `runtime/mod.rs` is `runtime`, `lib.rs` is the crate root (empty).
fn module_of(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        path.iter().map(|part| part.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// The text without comments (line and block), so that paths in docs do not count.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match (character, chars.peek()) {
            ('/', Some('/')) => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                let mut previous = ' ';
                for next in chars.by_ref() {
                    if previous == '*' && next == '/' {
                        break;
                    }
                    previous = next;
                }
            }
            _ => out.push(character),
        }
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.to_owned()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (idx, character) in inner.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..idx]);
                start = idx + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .flat_map(|part| expand(part).into_iter().map(move |path| format!("{prefix}{path}")))
        .collect()
}

/// Every path a file names through `crate::`, `super::` or `self::`, resolved to a path from
/// the crate root.
fn referenced_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code = strip_comments(text);
    let mut raw = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let body = statement
            .strip_prefix("pub(crate) use ")
            .or_else(|| statement.strip_prefix("pub use "))
            .or_else(|| statement.rsplit_once("\nuse ").map(|(_, rest)| rest))
            .or_else(|| statement.strip_prefix("use "));
        if let Some(body) = body {
            let body: String = body.split_whitespace().collect();
            raw.extend(expand(&body));
        }
    }
    // Paths used inline, outside `use` statements.
    for anchor in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(anchor) {
            let tail = &rest[at..];
            let end = tail
                .find(|character: char| {
                    !(character.is_alphanumeric() || character == '_' || character == ':')
                })
                .unwrap_or(tail.len());
            raw.push(tail[..end].trim_end_matches(':').to_owned());
            rest = &tail[end..];
        }
    }
    raw.into_iter()
        .filter_map(|path| {
            let segments: Vec<&str> = path.split("::").map(str::trim).collect();
            let mut resolved: Vec<String> = match *segments.first()? {
                "crate" => Vec::new(),
                "self" | "super" => module.to_vec(),
                _ => return None,
            };
            let mut rest = &segments[1..];
            if segments[0] == "super" {
                resolved.pop();
                while rest.first() == Some(&"super") {
                    resolved.pop();
                    rest = &rest[1..];
                }
            }
            resolved.extend(
                rest.iter()
                    .map(|segment| segment.split(" as ").next().unwrap_or(segment).to_owned()),
            );
            Some(resolved)
        })
        .collect()
}

/// Layer edges that point the wrong way: `file: crate::<layer> is not allowed in <layer>`.
pub(super) fn layer_violations(files: &[Source]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    for (path, text) in files {
        let module = module_of(path);
        let Some(layer) = module.first() else { continue };
        if layer == "main" {
            continue;
        }
        let Some(may_import) = allowed.get(layer.as_str()) else {
            violations.push(format!("{}: {layer} is not a known layer", path.display()));
            continue;
        };
        for referenced in referenced_paths(&module, text) {
            let Some(target) = referenced.first() else { continue };
            if target != layer && !may_import.contains(&target.as_str()) {
                violations.push(format!(
                    "{}: layer {layer} may not import crate::{target}",
                    path.display()
                ));
            }
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

/// Import cycles among the host's modules. A module's use of its ancestors or descendants does
/// not count (a parent declares its children; children use their parent's items).
pub(super) fn cycles(files: &[Source]) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(path, _)| module_of(path)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (path, text) in files {
        let from = module_of(path);
        for referenced in referenced_paths(&from, text) {
            // The longest known module that prefixes the path is the one it names.
            let Some(to) = (0..=referenced.len())
                .rev()
                .map(|len| referenced[..len].to_vec())
                .find(|candidate| modules.contains(candidate))
            else {
                continue;
            };
            if to.starts_with(&from) || from.starts_with(&to) {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to);
        }
    }
    let mut found = Vec::new();
    for start in &modules {
        // Depth-first search for a path back to `start`.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> =
                        trail.iter().chain([start]).map(|module| module.join("::")).collect();
                    found.push(names.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Files over [`MAX_FILE_LINES`].
pub(super) fn oversized_files(files: &[Source]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_FILE_LINES)
        .map(|(path, text)| format!("{}: {} lines", path.display(), text.lines().count()))
        .collect()
}

/// Functions over [`MAX_FUNCTION_LINES`] without a `long-function:` comment in the lines
/// right above them.
pub(super) fn long_functions(files: &[Source]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "async fn ",
                "pub(crate) async fn ",
                "pub async fn ",
                "pub(super) fn ",
                "const fn ",
            ]
            .iter()
            .any(|prefix| code.starts_with(prefix));
            if !is_fn || code.ends_with(';') || code.ends_with('}') {
                continue;
            }
            let indent = line.len() - code.len();
            let closing = " ".repeat(indent) + "}";
            let Some(length) = lines[start..]
                .iter()
                .position(|candidate| candidate.starts_with(&closing) && candidate.trim() == "}")
            else {
                continue;
            };
            let justified = lines[start.saturating_sub(4)..start]
                .iter()
                .any(|above| above.contains("long-function:"));
            if length + 1 > MAX_FUNCTION_LINES && !justified {
                found.push(format!("{}:{}: {} lines", path.display(), start + 1, length + 1));
            }
        }
    }
    found
}
