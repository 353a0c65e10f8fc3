//! `project`, `trash`, `restore` and `history` (SPEC 10): a project's name
//! and deletion, the trash, and who changed what, from the shell (the
//! sysadmin sees every project). Every change is made as `shell (USER)`.

use crate::cli::WhenceFormat;
use crate::error::{Error, Result};
use crate::store::{Actor, Restore, Store};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Value};

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC), as the store compares it.
fn time_arg(what: &str, t: &str) -> Result<String> {
    let t = t.trim();
    let ok = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
        || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok();
    if !ok {
        return Err(Error::bad(format!(
            "{what}: a UTC time like 2026-12-05 or \"2026-12-05 09:00:00\", not {t:?}"
        )));
    }
    Ok(t.to_string())
}

/// The time `days` ago, UTC, as the store writes times (the beginning of
/// time, as far as it goes: never a panic).
pub fn days_ago(days: u32) -> String {
    chrono::Utc::now()
        .checked_sub_signed(chrono::Duration::days(days as i64))
        .map_or_else(
            || "0001-01-01 00:00:00".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

pub fn project(
    store: &mut Store,
    project: &str,
    name: Option<&str>,
    description: Option<&str>,
    delete: bool,
) -> Result<()> {
    let shell = Actor::shell();
    if delete {
        // Its records are trashed from this second on: restoring what was
        // deleted since brings back the project as it was, not records
        // deleted from it before on purpose.
        let at = crate::record::timefmt::now();
        let n = store.write(|tx| tx.delete_project(project, &shell))?;
        eprintln!(
            "deleted project {project}: its {n} record(s) are in the trash \
             (sumatra-server restore {project} --since \"{at}\" brings it back)"
        );
        return Ok(());
    }
    if name.is_none() && description.is_none() {
        let p = store.read().require_project(project)?;
        println!(
            "id: {}\nname: {}\ndescription: {}",
            p.id, p.name, p.description
        );
        return Ok(());
    }
    store.write(|tx| {
        let p = tx.require_project(project)?;
        tx.update_project(project, name, description)?;
        let mut detail = serde_json::Map::new();
        if let Some(n) = name.filter(|n| *n != p.name) {
            detail.insert("name".into(), json!({"before": p.name, "after": n}));
        }
        if let Some(d) = description.filter(|d| *d != p.description) {
            detail.insert(
                "description".into(),
                json!({"before": p.description, "after": d}),
            );
        }
        if !detail.is_empty() {
            tx.log(
                &shell,
                Some(project),
                "project.update",
                project,
                Value::Object(detail),
            )?;
        }
        Ok(())
    })?;
    eprintln!("updated project {project}");
    Ok(())
}

pub fn trash(
    store: &mut Store,
    project: Option<&str>,
    purge: bool,
    days: u32,
    format: WhenceFormat,
) -> Result<()> {
    if let Some(p) = project {
        let tx = store.read();
        if tx.project(p)?.is_none() && tx.trash_count(Some(p))? == 0 && !tx.is_deleted_project(p)? {
            return Err(Error::not_found(format!(
                "no project {p:?}, and nothing of it in the trash"
            )));
        }
    }
    if purge {
        // `--days 0`: everything, deleted this very second too.
        let before = (days > 0).then(|| days_ago(days));
        let n = store.write(|tx| tx.purge(project, before.as_deref(), &Actor::shell()))?;
        match before {
            Some(b) => eprintln!("purged {n} record(s) deleted before {b} UTC"),
            None => eprintln!("purged {n} record(s): the trash is empty"),
        }
        return Ok(());
    }
    let tx = store.read();
    let items = tx.trash(project, 10_000, 0)?;
    let total = tx.trash_count(project)?;
    match format {
        WhenceFormat::Json => {
            let v: Vec<Value> = items.iter().map(|t| t.to_json()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON serialises")
            );
        }
        WhenceFormat::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header(["project", "label", "deleted (UTC)", "by", "how", "tags"]);
            for t in &items {
                table.add_row([
                    t.project.clone(),
                    t.label.clone(),
                    t.deleted_at.clone(),
                    t.deleted_by.clone(),
                    t.how.clone(),
                    t.tags.join(", "),
                ]);
            }
            println!("{table}");
            eprintln!(
                "{total} record(s) in the trash{}",
                if total as usize > items.len() {
                    format!(" ({} shown)", items.len())
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

pub fn restore(
    store: &mut Store,
    project: &str,
    labels: &[String],
    tag: Option<&str>,
    since: Option<&str>,
    as_label: Option<&str>,
) -> Result<()> {
    let since = since.map(|s| time_arg("--since", s)).transpose()?;
    let which = match (labels.is_empty(), tag, since.as_deref()) {
        (false, None, None) => Restore::Labels(labels),
        (true, Some(t), None) => Restore::Tag(t),
        (true, None, Some(s)) => Restore::Since(s),
        _ => {
            return Err(Error::bad(
                "name the labels to restore, or give --tag TAG or --since TIME",
            ))
        }
    };
    let restored = store.write(|tx| tx.restore(project, which, as_label, &Actor::shell()))?;
    if restored.is_empty() {
        eprintln!("restored project {project} (it had no records to bring back)");
    } else {
        eprintln!(
            "restored {} record(s) of {project}: {}",
            restored.len(),
            restored.join(", ")
        );
    }
    Ok(())
}

pub fn history(
    store: &Store,
    project: Option<&str>,
    since: Option<&str>,
    limit: u64,
    format: WhenceFormat,
) -> Result<()> {
    let since = since.map(|s| time_arg("--since", s)).transpose()?;
    let tx = store.read();
    if let Some(p) = project {
        // A project of the past has a history too (a deleted one).
        if tx.project(p)?.is_none() && tx.history(Some(p), None, 1, 0)?.is_empty() {
            return Err(Error::not_found(format!(
                "no project {p:?}, and no history of one"
            )));
        }
    }
    let entries = tx.history(project, since.as_deref(), limit, 0)?;
    match format {
        WhenceFormat::Json => {
            let v: Vec<Value> = entries.iter().map(|e| e.to_json()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON serialises")
            );
        }
        WhenceFormat::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header([
                "when (UTC)",
                "who",
                "from",
                "project",
                "what",
                "of",
                "detail",
            ]);
            for e in &entries {
                let mut detail = e.detail.to_string();
                if detail == "{}" {
                    detail.clear();
                }
                if detail.chars().count() > 60 {
                    detail = detail.chars().take(59).collect::<String>() + "…";
                }
                table.add_row([
                    e.at.clone(),
                    e.actor.clone(),
                    e.address.clone().unwrap_or_default(),
                    e.project.clone().unwrap_or_default(),
                    e.action.clone(),
                    e.target.clone(),
                    detail,
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}
