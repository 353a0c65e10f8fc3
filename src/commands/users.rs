use crate::error::{Error, Result};
use crate::password;
use crate::store::{Actor, Store};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::json;
use std::io::{BufRead, IsTerminal};

/// Reads a new password: one line of standard input, or asked twice on the terminal.
fn read_new_password(user: &str, from_stdin: bool) -> Result<String> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Error::bad(
                "no terminal to ask for the password on; pipe it in with --password-stdin",
            ));
        }
        let first = rpassword::prompt_password(format!("New password for {user}: "))?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            return Err(Error::bad("the two passwords differ; nothing changed"));
        }
        first
    };
    if pw.is_empty() {
        return Err(Error::bad("the password is empty; nothing changed"));
    }
    if pw.starts_with(crate::token::PREFIX) {
        return Err(Error::bad(format!(
            "a password cannot begin with {:?}: tokens do; nothing changed",
            crate::token::PREFIX
        )));
    }
    if pw.len() > 72 {
        return Err(Error::bad(
            "the password is longer than 72 bytes (bcrypt's limit); nothing changed",
        ));
    }
    Ok(pw)
}

pub fn useradd(store: &mut Store, user: &str, from_stdin: bool) -> Result<()> {
    // Check the name before asking for a password.
    crate::store::check_username(user)?;
    if user == crate::store::ANONYMOUS {
        return Err(Error::bad(
            "\"anonymous\" is reserved: grant it read access to make a project public",
        ));
    }
    if store.read().user(user)?.is_some() {
        return Err(Error::Conflict(format!("user {user:?} exists already")));
    }
    let hash = password::hash(&read_new_password(user, from_stdin)?);
    store.write(|tx| {
        tx.add_user(user, &hash)?;
        tx.log(&Actor::shell(), None, "user.add", user, json!({}))
    })?;
    eprintln!("added user {user}");
    Ok(())
}

pub fn passwd(store: &mut Store, user: &str, from_stdin: bool) -> Result<()> {
    if user == crate::store::ANONYMOUS {
        return Err(Error::bad("\"anonymous\" cannot have a password"));
    }
    store.read().require_user(user)?;
    let hash = password::hash(&read_new_password(user, from_stdin)?);
    store.write(|tx| {
        tx.set_password(user, &hash)?;
        tx.log(&Actor::shell(), None, "user.password", user, json!({}))
    })?;
    eprintln!("changed the password of {user}");
    Ok(())
}

pub fn userdel(store: &mut Store, user: &str) -> Result<()> {
    let orphaned = store.write(|tx| {
        let orphaned = tx.sole_admin_of(user)?;
        let projects = tx.projects_of_user(user)?;
        let tokens = tx.tokens(Some(user))?;
        tx.delete_user(user)?;
        tx.log(&Actor::shell(), None, "user.remove", user, json!({}))?;
        // Each project's history says that the user's access (and their
        // tokens for it) ended: its admins read only their project's.
        for p in &projects {
            let ended: Vec<i64> = tokens
                .iter()
                .filter(|t| &t.project == p)
                .map(|t| t.id)
                .collect();
            let mut detail = crate::store::tokens_ended(&ended);
            detail["user_removed"] = json!(true);
            tx.log(&Actor::shell(), Some(p), "access.revoke", user, detail)?;
        }
        Ok(orphaned)
    })?;
    eprintln!("removed user {user} and their permissions (their records stay)");
    super::say_admin_less(&orphaned);
    Ok(())
}

pub fn list(store: &Store) -> Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["user", "can log in", "created", "projects"]);
    for u in store.read().list_users()? {
        let login = if u.can_log_in { "yes" } else { "no" };
        table.add_row([
            u.username,
            login.to_string(),
            u.created,
            u.projects.join(", "),
        ]);
    }
    println!("{table}");
    Ok(())
}
