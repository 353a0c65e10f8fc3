//! `lineage` (SPEC 9.4): a record's lineage from the shell, in every
//! project (the sysadmin sees all).

use crate::cli::{DirectionArg, LineageFormat};
use crate::error::{Error, Result};
use crate::lineage::{self, Direction, Node};
use crate::results::graph;
use crate::store::{Readable, Store};
use crate::transfer::{prov, rocrate};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

/// `PROJECT/LABEL`: how the shell names a record.
fn name(n: &Node) -> String {
    format!("{}/{}", n.project, n.label)
}

pub fn lineage(
    mut store: Store,
    project: &str,
    label: &str,
    direction: DirectionArg,
    depth: u32,
    format: LineageFormat,
    url: Option<&str>,
) -> Result<()> {
    if matches!(format, LineageFormat::RoCrate) {
        // Parameters written since the last search are read first.
        store.write(|tx| tx.index_pending(None))?;
    }
    let tx = store.read();
    tx.require_project(project)?;
    let start = tx
        .node(project, label)?
        .ok_or_else(|| Error::not_found(format!("no record {label:?} in project {project:?}")))?;
    let direction = match direction {
        DirectionArg::Up => Direction::Up,
        DirectionArg::Down => Direction::Down,
        DirectionArg::Both => Direction::Both,
    };
    let g = Readable {
        tx: &tx,
        projects: None,
    };
    let l = lineage::walk(&g, start, direction, depth, lineage::MAX_RECORDS)?;
    match format {
        LineageFormat::Prov | LineageFormat::RoCrate => {
            let ids: Vec<i64> = l.records.iter().map(|(n, _)| n.id).collect();
            lineage::runs::check_bounds(&g, &ids, "the lineage")?;
            let mut runs = lineage::runs::Chunked::new(&g, ids);
            let base = match url {
                Some(u) if u.ends_with('/') => u.to_string(),
                Some(u) => format!("{u}/"),
                None => prov::RECORD_URN.to_string(),
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if matches!(format, LineageFormat::Prov) {
                prov::write(&mut runs, &base, &mut out)?;
            } else {
                let published = chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S+00:00")
                    .to_string();
                let action_id = |n: &Node| {
                    let id = format!(
                        "{base}{}/{}",
                        prov::local(&n.project),
                        prov::local(&n.label)
                    );
                    if url.is_some() {
                        id + "/"
                    } else {
                        id
                    }
                };
                let about_name = format!("Lineage of {project} {label}");
                let description = format!(
                    "The records linked to record {label} of project {project} ({} to depth {depth}) \
                     through the files they read and wrote, as Sumatra recorded them",
                    direction.as_str()
                );
                let c = rocrate::Crate {
                    name: &about_name,
                    description: &description,
                    published: &published,
                    action_id: &action_id,
                };
                rocrate::write(&mut runs, &c, &mut out)?;
            }
            std::io::Write::flush(&mut out)?;
        }
        LineageFormat::Json => {
            let doc = l.to_json(direction, depth, &name);
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("JSON serialises")
            );
        }
        LineageFormat::Dot => {
            let (boxes, arrows) = graph::of_lineage(&l, name, |d| d.to_string());
            print!("{}", graph::dot(&boxes, &arrows));
        }
        LineageFormat::Table => {
            let mut records = Table::new();
            records.load_preset(UTF8_FULL_CONDENSED);
            records.set_header(["depth", "record", "date (UTC)", "reason"]);
            for (n, d) in &l.records {
                let reason: String = n.reason.chars().take(60).collect();
                records.add_row([d.to_string(), name(n), n.timestamp.clone(), reason]);
            }
            println!("{records}");
            if !l.links.is_empty() {
                let mut links = Table::new();
                links.load_preset(UTF8_FULL_CONDENSED);
                links.set_header(["made by", "used by", "file", "digest"]);
                for k in &l.links {
                    let (Some(a), Some(b)) = (l.node(k.from), l.node(k.to)) else {
                        continue;
                    };
                    let mut file = k.from_path.clone();
                    if k.out_of_order {
                        file.push_str(" (out of order)");
                    }
                    links.add_row([name(a), name(b), file, k.digest.chars().take(12).collect()]);
                }
                println!("{links}");
            }
            eprintln!(
                "{} record(s), {} link(s), {} external input(s){}",
                l.records.len(),
                l.links.len(),
                l.external_inputs.len(),
                if l.cut {
                    "; cut at 500 records: narrow it with --depth or --direction"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}
