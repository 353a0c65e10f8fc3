//! `loaddata` and `export` (SPEC 5): arguments in, the engine of
//! `crate::transfer` run, progress on a terminal, a report out.

use crate::error::{Error, Result};
use crate::store::{Project, Store, Tx};
use crate::transfer::{dump, load};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- loaddata

pub fn loaddata(
    store: &mut Store,
    sources: &[String],
    dry_run: bool,
    ignore_unknown: bool,
) -> Result<()> {
    store.for_bulk_writes()?;
    let bar = spinner("loading");
    let report = load(store, sources, dry_run, ignore_unknown, &|| bar.inc(1))?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let mut out = std::io::stdout().lock();
    if dry_run {
        for line in &report.changes {
            writeln!(out, "would {line}")?;
        }
        writeln!(
            out,
            "dry run: nothing was changed; loading {} would give:",
            sources.join(", ")
        )?;
    } else {
        writeln!(out, "loaded {}:", sources.join(", "))?;
    }
    writeln!(out, "{}", report.summary())?;
    Ok(())
}

/// A spinner counting records on stderr when it is a terminal; hidden
/// otherwise (a streamed load does not know its total).
fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} records ({per_sec}, {elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub(super) fn progress(total: u64, what: &str) -> ProgressBar {
    if total < 100 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} records ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

// ---------------------------------------------------------------- export

/// Writes `projects` (all when empty) to `output` or standard output: one
/// named project as a plain list of records, unless `full`, `with_users`
/// or `with_trash` ask for the export document (see `crate::transfer::dump`).
/// An export of every project with users is the whole store: the trash, the
/// deleted projects and the history too.
pub fn export(
    store: &mut Store,
    projects: &[String],
    output: Option<&Path>,
    with_users: bool,
    with_trash: bool,
    full: bool,
    force: bool,
) -> Result<()> {
    if let Some(path) = output {
        if path.exists() && !force {
            return Err(Error::Conflict(format!(
                "{} exists already; give --force to replace it",
                path.display()
            )));
        }
    }
    if with_users && output.is_none() {
        guard_stdout()?;
    }
    let plain = projects.len() == 1 && !full && !with_users && !with_trash;
    let every = projects.is_empty();
    let carry = dump::Carry {
        users: with_users,
        trash: with_trash || with_users,
        deleted_projects: every && (with_trash || with_users),
        history: every && with_users,
    };
    let (count, records) = store.snapshot(|tx| {
        let chosen = choose_projects(tx, projects)?;
        let mut total = 0;
        for p in &chosen {
            total += tx.count_records(&p.id, &[])? as u64;
        }
        let bar = progress(total, "exporting");
        let mut tick = || bar.inc(1);
        with_output(output, |out| match chosen.first() {
            Some(p) if plain => dump::write_records(tx, &p.id, out, &mut tick),
            _ => dump::write_document(tx, &chosen, carry, out, &mut tick),
        })?;
        bar.finish_and_clear();
        Ok((chosen.len(), total))
    })?;
    if let Some(path) = output {
        eprintln!(
            "exported {records} records of {count} project(s) to {}",
            path.display()
        );
    }
    Ok(())
}

/// An export with users on standard output holds password hashes (SPEC
/// 2.7): refused on a terminal; a file the shell made for it is made
/// readable by its owner only; a pipe is said to need care.
fn guard_stdout() -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if std::io::stdout().is_terminal() {
        return Err(Error::bad(
            "an export with users holds password hashes: write it to a file with -o FILE \
             (made readable by you only)",
        ));
    }
    // Standard output as the shell opened it (Linux: /proc/self/fd/1).
    let fd1 = Path::new("/proc/self/fd/1");
    match std::fs::metadata(fd1) {
        Ok(m) if m.file_type().is_file() => {
            std::fs::set_permissions(fd1, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                Error::bad(format!("cannot make standard output's file private: {e}"))
            })?;
            eprintln!(
                "note: the export holds password hashes; the file it goes to is now readable by its owner only"
            );
        }
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_socket() => {
            eprintln!("note: the export holds password hashes: keep what reads it private")
        }
        _ => eprintln!("note: the export holds password hashes: keep it private"),
    }
    Ok(())
}

/// The named projects (each once, in the order given), or all by id.
fn choose_projects(tx: &Tx<'_>, names: &[String]) -> Result<Vec<Project>> {
    if names.is_empty() {
        let mut all: Vec<Project> = tx
            .list_projects(None)?
            .into_iter()
            .map(|s| s.project)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(all);
    }
    let mut out: Vec<Project> = Vec::new();
    for name in names {
        if !out.iter().any(|p| p.id == *name) {
            out.push(tx.require_project(name)?);
        }
    }
    Ok(out)
}

/// Runs `write` on a buffered standard output, or on a file that appears
/// under its name only once complete.
fn with_output(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(path) = output else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        write(&mut out)?;
        return Ok(out.flush()?);
    };
    let partial = partial_path(path);
    // An export with users holds their password hashes: owner only, and a
    // new file (a link planted under the partial name is removed, never
    // followed).
    let _ = std::fs::remove_file(&partial);
    let file = crate::files::create_new_private(&partial)
        .map_err(|e| Error::BadRequest(format!("cannot write {}: {e}", partial.display())))?;
    let mut out = BufWriter::new(file);
    let result = write(&mut out).and_then(|()| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .map_err(|e| Error::BadRequest(format!("cannot write {}: {e}", path.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_name() {
        assert_eq!(
            partial_path(Path::new("/x/out.json")),
            Path::new("/x/out.json.partial")
        );
    }
}
