//! The records of an export (SPEC 9.3: PROV-JSON and RO-Crate of a
//! lineage, of a record, of a query's matches), each with what the two
//! standards say of a run: its files, its parameters, and the records of
//! the same export that made a file it read. Read a chunk at a time, as
//! often as a format needs (PROV-JSON groups its document by kind, one
//! pass a kind), so that memory stays flat.

use super::{FileUse, Graph, Node, Role};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};

/// Records in one export at most, and file entries among them (a lineage
/// holds at most [`super::MAX_RECORDS`]; a query's matches are bounded
/// here, SPEC 7.6).
pub const MAX_EXPORT_RECORDS: usize = 10_000;
pub const MAX_EXPORT_FILES: u64 = 200_000;
/// Records read at once.
const CHUNK: usize = 200;
/// Producers looked up for one chunk at most.
const MOST_PRODUCERS: usize = 20_000;

/// A record of the export that made a file a run read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub project: String,
    pub label: String,
    pub digest: String,
}

/// One record as the exports show it.
#[derive(Debug, Clone)]
pub struct Run {
    pub node: Node,
    /// Inputs and outputs, in the record's order.
    pub files: Vec<FileUse>,
    pub params: Vec<(String, serde_json::Value)>,
    pub parents: Vec<Parent>,
}

/// Runs read in order, as many times as a format asks.
pub trait Runs {
    fn each(&mut self, f: &mut dyn FnMut(&Run) -> Result<()>) -> Result<()>;
}

impl Runs for Vec<Run> {
    fn each(&mut self, f: &mut dyn FnMut(&Run) -> Result<()>) -> Result<()> {
        self.iter().try_for_each(f)
    }
}

/// Refuses an export past its bounds, with a sentence saying how to
/// narrow it; `what` names the selection ("the query", "the lineage").
pub fn check_bounds(g: &impl Graph, ids: &[i64], what: &str) -> Result<()> {
    if ids.len() > MAX_EXPORT_RECORDS {
        return Err(Error::bad(format!(
            "{what} has more than {MAX_EXPORT_RECORDS} records, the most one export holds: \
             narrow it, or take it in parts with limit= and offset="
        )));
    }
    let files = g.count_files(ids)?;
    if files > MAX_EXPORT_FILES {
        return Err(Error::bad(format!(
            "{what} lists {files} files, more than the {MAX_EXPORT_FILES} one export holds: \
             narrow it, or take it in parts with limit= and offset="
        )));
    }
    Ok(())
}

/// The runs of `ids` read from a graph, linked to the producers among
/// themselves.
pub struct Chunked<'g, G: Graph> {
    g: &'g G,
    ids: Vec<i64>,
    members: HashSet<i64>,
}

impl<'g, G: Graph> Chunked<'g, G> {
    pub fn new(g: &'g G, ids: Vec<i64>) -> Self {
        let members = ids.iter().copied().collect();
        Chunked { g, ids, members }
    }
}

impl<G: Graph> Runs for Chunked<'_, G> {
    fn each(&mut self, f: &mut dyn FnMut(&Run) -> Result<()>) -> Result<()> {
        for chunk in self.ids.chunks(CHUNK) {
            for run in read(self.g, chunk, &self.members)? {
                f(&run)?;
            }
        }
        Ok(())
    }
}

/// The runs of `ids`, in that order; parents are looked for among `members`.
fn read(g: &impl Graph, ids: &[i64], members: &HashSet<i64>) -> Result<Vec<Run>> {
    let nodes: HashMap<i64, Node> = g.nodes(ids)?.into_iter().map(|n| (n.id, n)).collect();
    let mut files: HashMap<i64, Vec<FileUse>> = HashMap::new();
    for f in g.files(ids)? {
        files.entry(f.record).or_default().push(f);
    }
    let mut params: HashMap<i64, Vec<(String, serde_json::Value)>> = HashMap::new();
    for (id, k, v) in g.params(ids)? {
        params.entry(id).or_default().push((k, v));
    }
    // The producers, among the export's records, of what these read.
    let read_digests: Vec<String> = files
        .values()
        .flatten()
        .filter(|f| f.role == Role::Input && f.links)
        .map(|f| f.digest.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let producers: Vec<FileUse> = if read_digests.is_empty() {
        Vec::new()
    } else {
        g.holders(&read_digests, Role::Output, MOST_PRODUCERS)?
            .into_iter()
            .filter(|h| members.contains(&h.record))
            .collect()
    };
    let mut producer_ids: Vec<i64> = producers.iter().map(|h| h.record).collect();
    producer_ids.sort_unstable();
    producer_ids.dedup();
    let named: HashMap<i64, Node> = g
        .nodes(&producer_ids)?
        .into_iter()
        .map(|n| (n.id, n))
        .collect();
    let mut by_digest: HashMap<&str, Vec<i64>> = HashMap::new();
    for h in &producers {
        by_digest
            .entry(h.digest.as_str())
            .or_default()
            .push(h.record);
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(node) = nodes.get(id) else { continue };
        let files = files.remove(id).unwrap_or_default();
        let mut parents: Vec<Parent> = Vec::new();
        for f in files.iter().filter(|f| f.role == Role::Input && f.links) {
            for p in by_digest.get(f.digest.as_str()).into_iter().flatten() {
                let Some(n) = named.get(p).filter(|_| p != id) else {
                    continue;
                };
                let parent = Parent {
                    project: n.project.clone(),
                    label: n.label.clone(),
                    digest: f.digest.clone(),
                };
                if !parents.contains(&parent) {
                    parents.push(parent);
                }
            }
        }
        out.push(Run {
            node: node.clone(),
            files,
            params: params.remove(id).unwrap_or_default(),
            parents,
        });
    }
    Ok(out)
}
