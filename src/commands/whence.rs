//! `whence` (SPEC 9.4): which runs made or used these files, hashed as
//! Sumatra hashes them (SHA-1 of the whole file), in every project.

use crate::cli::WhenceFormat;
use crate::error::{Error, Result};
use crate::lineage::{self, Graph, Role};
use crate::store::{normalise_digest, Readable, Store};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Runs listed per file at most.
const MOST: usize = 1000;

/// The SHA-1 of a file's bytes, read a piece at a time.
fn sha1_of(path: &Path) -> Result<String> {
    use sha1::{Digest, Sha1};
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::bad(format!("{}: {e}", path.display())))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::bad(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub fn whence(
    store: &Store,
    files: &[PathBuf],
    digests: &[String],
    format: WhenceFormat,
) -> Result<()> {
    if files.is_empty() && digests.is_empty() {
        return Err(Error::bad("name files to look up, or give --digest SHA1"));
    }
    let mut asked: Vec<(String, String)> = Vec::new();
    for f in files {
        asked.push((f.display().to_string(), sha1_of(f)?));
    }
    for d in digests {
        let (digest, links) = normalise_digest(d);
        if !links {
            return Err(Error::bad(format!(
                "--digest {d:?}: expected the 40 hexadecimal characters of a SHA-1 \
                 (the all-zero and the empty file's digests link nothing)"
            )));
        }
        asked.push((digest.clone(), digest));
    }
    let tx = store.read();
    let g = Readable {
        tx: &tx,
        projects: None,
    };
    let mut out = Vec::new();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["file", "role", "record", "date (UTC)", "path in the record"]);
    for (what, digest) in &asked {
        let (uses, cut) = if normalise_digest(digest).1 {
            lineage::users_of(&g, digest, MOST)?
        } else {
            (Vec::new(), false)
        };
        let nodes = g.nodes(&uses.iter().map(|u| u.record).collect::<Vec<_>>())?;
        let mut entries = Vec::new();
        for u in &uses {
            let Some(n) = nodes.iter().find(|n| n.id == u.record) else {
                continue;
            };
            let role = if u.role == Role::Output {
                "produced by"
            } else {
                "used by"
            };
            table.add_row([
                what.clone(),
                role.to_string(),
                format!("{}/{}", n.project, n.label),
                n.timestamp.clone(),
                u.path.clone(),
            ]);
            entries.push(
                json!({"role": if u.role == Role::Output { "output" } else { "input" },
                                "project": n.project, "label": n.label,
                                "timestamp": n.timestamp, "path": u.path}),
            );
        }
        if uses.is_empty() {
            table.add_row([
                what.clone(),
                "no run made or used these bytes".into(),
                String::new(),
                String::new(),
                digest.clone(),
            ]);
        }
        out.push(json!({"file": what, "digest": digest, "records": entries, "cut": cut}));
    }
    match format {
        WhenceFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("JSON serialises")
        ),
        WhenceFormat::Table => println!("{table}"),
    }
    Ok(())
}
