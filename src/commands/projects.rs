use crate::cli::LevelArg;
use crate::error::Result;
use crate::store::{Actor, Level, Store, ANONYMOUS};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Read => Level::Read,
            LevelArg::Write => Level::Write,
            LevelArg::Admin => Level::Admin,
        }
    }
}

pub fn grant(store: &mut Store, user: &str, project: &str, level: LevelArg) -> Result<()> {
    let level = Level::from(level);
    let (created, orphaned) = store.write(|tx| {
        tx.require_user(user)?;
        let created = tx.ensure_project(project)?;
        tx.lock_project(project)?;
        let orphaned = level < Level::Admin && tx.sole_admin_of(user)?.iter().any(|p| p == project);
        let shell = Actor::shell();
        if created {
            tx.log(&shell, Some(project), "project.create", project, json!({}))?;
        }
        if tx.grant(user, project, level)? {
            tx.log(
                &shell,
                Some(project),
                "access.grant",
                user,
                json!({"level": level.as_str()}),
            )?;
        }
        Ok((created, orphaned))
    })?;
    if created {
        eprintln!("created project {project}");
    }
    if user == ANONYMOUS {
        eprintln!("project {project} is now public (anyone may read it)");
    } else {
        eprintln!("{user} now has {level} access to {project}");
    }
    if orphaned {
        super::say_admin_less(&[project.to_string()]);
    }
    Ok(())
}

pub fn revoke(store: &mut Store, user: &str, project: &str) -> Result<()> {
    let orphaned = store.write(|tx| {
        tx.lock_project(project)?;
        let orphaned = tx.sole_admin_of(user)?.iter().any(|p| p == project);
        let ended = tx.revoke(user, project)?;
        tx.log(
            &Actor::shell(),
            Some(project),
            "access.revoke",
            user,
            crate::store::tokens_ended(&ended),
        )?;
        Ok((orphaned, ended.len()))
    })?;
    let (orphaned, ended) = orphaned;
    match ended {
        0 => eprintln!("{user} no longer has access to {project}"),
        1 => eprintln!("{user} no longer has access to {project}; their token for it ended too"),
        n => {
            eprintln!("{user} no longer has access to {project}; their {n} tokens for it ended too")
        }
    }
    if orphaned {
        super::say_admin_less(&[project.to_string()]);
    }
    Ok(())
}

pub fn list(store: &Store) -> Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["id", "name", "records", "last updated (UTC)", "access"]);
    for p in store.read().list_projects(None)? {
        let access: Vec<String> = p
            .access
            .iter()
            .map(|a| format!("{} ({})", a.username, a.level))
            .collect();
        table.add_row([
            p.project.id.clone(),
            p.project.name.clone(),
            p.record_count.to_string(),
            p.last_updated.unwrap_or_else(|| "-".into()),
            access.join(", "),
        ]);
    }
    println!("{table}");
    Ok(())
}
