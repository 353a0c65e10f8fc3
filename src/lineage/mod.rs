//! Lineage (SPEC 9.2): which records a record was made from (its parents,
//! upstream) and which used what it made (its children, downstream),
//! linked through the digests of the files they read and wrote.
//!
//! Record A is a parent of record B when a digest in B's inputs equals a
//! digest in A's outputs (A ≠ B, both readable by the caller). The walk
//! goes breadth first from one record, keeps a visited set (lineage may
//! have cycles: the same bytes written twice), and stops at its depth and
//! size bounds, saying when it was cut. It knows no SQL and no HTTP: the
//! store answers the [`Graph`] questions, the pages and formats show the
//! answer.

pub mod runs;

pub use runs::{Run, Runs};

use crate::error::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Depth of a walk when none is asked for, and the deepest allowed.
pub const DEFAULT_DEPTH: u32 = 3;
pub const MAX_DEPTH: u32 = 20;
/// Records in one answer at most.
pub const MAX_RECORDS: usize = 500;

/// Whether a file was read or written by a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Input = 0,
    Output = 1,
}

/// One file entry of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUse {
    pub record: i64,
    pub role: Role,
    pub path: String,
    pub digest: String,
    /// The digest may link records (a real SHA-1, not a placeholder).
    pub links: bool,
    /// What the record said of the file: its size in bytes, media type
    /// and creation time (as given), when it said.
    pub size: Option<i64>,
    pub mimetype: Option<String>,
    pub creation: Option<String>,
}

/// A record as lineage shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: i64,
    pub project: String,
    pub label: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    pub reason: String,
    pub outcome: String,
    pub tags: Vec<String>,
    /// Seconds the run took, if known.
    pub duration: Option<f64>,
    /// Who ran it (Sumatra's `Name <mail>`), the repository's URL, the
    /// code's version and main file: the run's agent and plan in PROV.
    pub user: String,
    pub repository: String,
    pub version: String,
    pub main_file: String,
}

/// What the walk asks of the store; every answer is limited to the records
/// the caller may read.
pub trait Graph {
    /// The file entries of these records, in their order.
    fn files(&self, records: &[i64]) -> Result<Vec<FileUse>>;
    /// Entries of the given role whose digest is one of these (linking
    /// digests only), at most `limit`.
    fn holders(&self, digests: &[String], role: Role, limit: usize) -> Result<Vec<FileUse>>;
    fn nodes(&self, ids: &[i64]) -> Result<Vec<Node>>;
    /// The parameters of these records as read (SPEC 7.1): (record, key,
    /// value), numbers as numbers.
    fn params(&self, records: &[i64]) -> Result<Vec<(i64, String, serde_json::Value)>>;
    /// How many file entries these records list.
    fn count_files(&self, records: &[i64]) -> Result<u64> {
        Ok(self.files(records)?.len() as u64)
    }
}

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }
}

/// A link: `from` produced the file that `to` read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub from: i64,
    pub to: i64,
    pub digest: String,
    pub from_path: String,
    pub to_path: String,
    /// The producer started after the consumer started.
    pub out_of_order: bool,
}

/// An input that no readable record produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub record: i64,
    pub path: String,
    pub digest: String,
}

/// The answer of a walk.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub start: i64,
    /// Each record with its depth: negative upstream, 0 the start,
    /// positive downstream; in the order found.
    pub records: Vec<(Node, i32)>,
    pub links: Vec<Link>,
    /// Digests with more than one producer among the links.
    pub several_producers: Vec<String>,
    pub external_inputs: Vec<External>,
    /// The size bound left records out.
    pub cut: bool,
}

impl Lineage {
    pub fn node(&self, id: i64) -> Option<&Node> {
        self.records
            .iter()
            .find(|(n, _)| n.id == id)
            .map(|(n, _)| n)
    }

    /// The answer as JSON (SPEC 9.3): the records, the links, files with
    /// several producers, external inputs, and whether it was cut; `url`
    /// gives each record's address.
    pub fn to_json(
        &self,
        direction: Direction,
        depth: u32,
        url: &dyn Fn(&Node) -> String,
    ) -> serde_json::Value {
        use serde_json::{json, Value};
        let reference = |id: i64| match self.node(id) {
            Some(n) => json!({"project": n.project, "label": n.label, "url": url(n)}),
            None => Value::Null,
        };
        json!({
            "record": reference(self.start),
            "direction": direction.as_str(), "depth": depth,
            "records": self.records.iter().map(|(n, d)| json!({
                "project": n.project, "label": n.label, "url": url(n),
                "timestamp": n.timestamp, "reason": n.reason, "tags": n.tags, "depth": d,
            })).collect::<Vec<_>>(),
            "links": self.links.iter().map(|k| json!({
                "from": reference(k.from), "to": reference(k.to), "digest": k.digest,
                "from_path": k.from_path, "to_path": k.to_path, "out_of_order": k.out_of_order,
            })).collect::<Vec<_>>(),
            "several_producers": self.several_producers,
            "external_inputs": self.external_inputs.iter().map(|e| json!({
                "record": reference(e.record), "path": e.path, "digest": e.digest,
            })).collect::<Vec<_>>(),
            "cut": self.cut,
        })
    }
}

/// The entries of the file with `digest`, in the records the graph can
/// read: its producers, then its users, at most `limit` of each; and
/// whether some were left out.
pub fn users_of(g: &impl Graph, digest: &str, limit: usize) -> Result<(Vec<FileUse>, bool)> {
    let d = [digest.to_string()];
    let mut out = Vec::new();
    let mut cut = false;
    for role in [Role::Output, Role::Input] {
        let mut some = g.holders(&d, role, limit + 1)?;
        cut |= some.len() > limit;
        some.truncate(limit);
        out.extend(some);
    }
    Ok((out, cut))
}

/// Walks from `start` in `direction` up to `depth` links away, keeping at
/// most `max_records` records (the start included).
pub fn walk(
    g: &impl Graph,
    start: Node,
    direction: Direction,
    depth: u32,
    max_records: usize,
) -> Result<Lineage> {
    let depth = depth.min(MAX_DEPTH);
    let max_records = max_records.max(1);
    let mut depth_of: HashMap<i64, i32> = HashMap::from([(start.id, 0)]);
    let mut order: Vec<i64> = vec![start.id];
    let mut links: Vec<Link> = Vec::new();
    let mut seen_links: HashSet<(i64, i64, String)> = HashSet::new();
    let mut external: Vec<External> = Vec::new();
    let mut cut = false;
    // (producer, consumer) pairs whose timestamps are compared at the end.
    let sides: Vec<(Role, i32)> = match direction {
        Direction::Up => vec![(Role::Input, -1)],
        Direction::Down => vec![(Role::Output, 1)],
        Direction::Both => vec![(Role::Input, -1), (Role::Output, 1)],
    };
    for (own_role, step) in sides {
        let mut frontier = vec![start.id];
        for level in 1..=depth as i32 {
            if frontier.is_empty() {
                break;
            }
            let own: Vec<FileUse> = g
                .files(&frontier)?
                .into_iter()
                .filter(|f| f.role == own_role)
                .collect();
            let digests: Vec<String> = own
                .iter()
                .filter(|f| f.links)
                .map(|f| f.digest.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let other_role = match own_role {
                Role::Input => Role::Output,
                Role::Output => Role::Input,
            };
            // Enough to fill the answer and to know that it was cut.
            let room = max_records.saturating_sub(order.len());
            let holders = if digests.is_empty() {
                Vec::new()
            } else {
                g.holders(&digests, other_role, room + own.len() + 1)?
            };
            let mut by_digest: HashMap<&str, Vec<&FileUse>> = HashMap::new();
            for h in &holders {
                by_digest.entry(h.digest.as_str()).or_default().push(h);
            }
            let mut next = Vec::new();
            for f in &own {
                let others = if f.links {
                    by_digest.get(f.digest.as_str())
                } else {
                    None
                };
                let others: Vec<&&FileUse> = others
                    .map(|v| v.iter().filter(|h| h.record != f.record).collect())
                    .unwrap_or_default();
                if others.is_empty() {
                    if own_role == Role::Input {
                        external.push(External {
                            record: f.record,
                            path: f.path.clone(),
                            digest: f.digest.clone(),
                        });
                    }
                    continue;
                }
                for h in others {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        depth_of.entry(h.record)
                    {
                        if order.len() >= max_records {
                            cut = true;
                            continue;
                        }
                        slot.insert(step * level);
                        order.push(h.record);
                        next.push(h.record);
                    }
                    let (from, to, from_path, to_path) = match own_role {
                        Role::Input => (h.record, f.record, &h.path, &f.path),
                        Role::Output => (f.record, h.record, &f.path, &h.path),
                    };
                    if seen_links.insert((from, to, f.digest.clone())) {
                        links.push(Link {
                            from,
                            to,
                            digest: f.digest.clone(),
                            from_path: from_path.clone(),
                            to_path: to_path.clone(),
                            out_of_order: false,
                        });
                    }
                }
            }
            frontier = next;
        }
        // Records at the depth bound may have more: said only by `cut`
        // when the size bound, not the depth, left records out.
    }
    let mut nodes: HashMap<i64, Node> = g.nodes(&order)?.into_iter().map(|n| (n.id, n)).collect();
    nodes.insert(start.id, start.clone());
    for l in &mut links {
        if let (Some(a), Some(b)) = (nodes.get(&l.from), nodes.get(&l.to)) {
            l.out_of_order = a.timestamp > b.timestamp;
        }
    }
    let mut producers: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for l in &links {
        producers
            .entry(l.digest.as_str())
            .or_default()
            .insert(l.from);
    }
    let several_producers = producers
        .into_iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(d, _)| d.to_string())
        .collect();
    let records = order
        .iter()
        .filter_map(|id| nodes.remove(id).map(|n| (n, depth_of[id])))
        .collect();
    Ok(Lineage {
        start: start.id,
        records,
        links,
        several_producers,
        external_inputs: external,
        cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records with (inputs, outputs) as digests; all link.
    struct Fake(Vec<(Vec<&'static str>, Vec<&'static str>, &'static str)>);

    impl Fake {
        fn uses(&self) -> Vec<FileUse> {
            let mut out = Vec::new();
            for (i, (ins, outs, _)) in self.0.iter().enumerate() {
                for (role, list) in [(Role::Input, ins), (Role::Output, outs)] {
                    for d in list {
                        out.push(FileUse {
                            record: i as i64,
                            role,
                            path: format!("{d}.dat"),
                            digest: d.to_string(),
                            links: !d.starts_with('x'),
                            size: None,
                            mimetype: None,
                            creation: None,
                        });
                    }
                }
            }
            out
        }
    }

    impl Graph for Fake {
        fn files(&self, records: &[i64]) -> Result<Vec<FileUse>> {
            Ok(self
                .uses()
                .into_iter()
                .filter(|f| records.contains(&f.record))
                .collect())
        }
        fn holders(&self, digests: &[String], role: Role, limit: usize) -> Result<Vec<FileUse>> {
            Ok(self
                .uses()
                .into_iter()
                .filter(|f| f.links && f.role == role && digests.contains(&f.digest))
                .take(limit)
                .collect())
        }
        fn nodes(&self, ids: &[i64]) -> Result<Vec<Node>> {
            Ok(ids.iter().map(|&i| node(self, i)).collect())
        }
        fn params(&self, records: &[i64]) -> Result<Vec<(i64, String, serde_json::Value)>> {
            Ok(records
                .iter()
                .map(|&r| (r, "n".to_string(), serde_json::json!(r)))
                .collect())
        }
    }

    fn node(g: &Fake, i: i64) -> Node {
        Node {
            id: i,
            project: "P".into(),
            label: format!("r{i}"),
            timestamp: g.0[i as usize].2.into(),
            reason: String::new(),
            outcome: String::new(),
            tags: vec![],
            duration: None,
            user: String::new(),
            repository: String::new(),
            version: String::new(),
            main_file: String::new(),
        }
    }

    fn labels(l: &Lineage) -> Vec<(String, i32)> {
        l.records
            .iter()
            .map(|(n, d)| (n.label.clone(), *d))
            .collect()
    }

    #[test]
    fn a_chain_is_walked_both_ways_to_its_depth() {
        // r0 -> a -> r1 -> b -> r2 -> c -> r3
        let g = Fake(vec![
            (vec!["x0"], vec!["a"], "2026-01-01 00:00:00"),
            (vec!["a"], vec!["b"], "2026-01-02 00:00:00"),
            (vec!["b"], vec!["c"], "2026-01-03 00:00:00"),
            (vec!["c"], vec![], "2026-01-04 00:00:00"),
        ]);
        let l = walk(&g, node(&g, 2), Direction::Both, 3, 500).unwrap();
        assert_eq!(
            labels(&l),
            [
                ("r2".into(), 0),
                ("r1".into(), -1),
                ("r0".into(), -2),
                ("r3".into(), 1)
            ]
        );
        assert_eq!(l.links.len(), 3);
        assert!(l.links.iter().all(|k| !k.out_of_order));
        assert_eq!(l.external_inputs.len(), 1, "r0's x0 was made by no record");
        assert!(!l.cut);
        let up1 = walk(&g, node(&g, 3), Direction::Up, 1, 500).unwrap();
        assert_eq!(labels(&up1), [("r3".into(), 0), ("r2".into(), -1)]);
    }

    #[test]
    fn cycles_several_producers_out_of_order_and_the_size_bound() {
        // r0 and r1 both write d (a re-run); r2 reads d and writes e, which
        // r0 also reads (a cycle); r2 started before r1.
        let g = Fake(vec![
            (vec!["e"], vec!["d"], "2026-01-01 00:00:00"),
            (vec![], vec!["d"], "2026-01-05 00:00:00"),
            (vec!["d"], vec!["e"], "2026-01-03 00:00:00"),
        ]);
        let l = walk(&g, node(&g, 2), Direction::Both, 20, 500).unwrap();
        assert_eq!(l.records.len(), 3, "each record once despite the cycle");
        assert_eq!(l.several_producers, ["d"]);
        let late = l.links.iter().find(|k| k.from == 1 && k.to == 2).unwrap();
        assert!(late.out_of_order);
        let cut = walk(&g, node(&g, 2), Direction::Both, 20, 2).unwrap();
        assert_eq!(cut.records.len(), 2);
        assert!(cut.cut);
    }

    #[test]
    fn a_record_never_links_to_itself_and_placeholders_never_link() {
        let g = Fake(vec![
            (vec!["a", "x1"], vec!["a"], "2026-01-01 00:00:00"),
            (vec!["x1"], vec![], "2026-01-02 00:00:00"),
        ]);
        let l = walk(&g, node(&g, 0), Direction::Both, 3, 500).unwrap();
        assert_eq!(labels(&l), [("r0".into(), 0)]);
        assert!(l.links.is_empty());
    }
}
