//! `token create|list|revoke` (SPEC 11.1), as the sysadmin; each change
//! made as `shell (USER)` in the history.

use crate::cli::{TokenCommand, TokenLevel, WhenceFormat};
use crate::error::{Error, Result};
use crate::store::{Actor, Level, NewToken, Store};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

pub fn run(store: &mut Store, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            user,
            project,
            level,
            expires,
            name,
        } => {
            let expires = crate::token::expiry(&expires)?;
            let token = crate::token::generate()?;
            let digest = crate::token::digest(&token);
            let level = match level {
                TokenLevel::Read => Level::Read,
                TokenLevel::Write => Level::Write,
            };
            let id = store.write(|tx| {
                tx.create_token(
                    &NewToken {
                        user: &user,
                        project: &project,
                        level,
                        name: &name,
                        expires: expires.as_deref(),
                        digest: &digest,
                    },
                    &Actor::shell(),
                )
            })?;
            eprintln!(
                "token {id} for {user} on project {project} ({level}), {}; \
                 it is shown this once. Use it as the password of the store URL:\n  \
                 smt init --store http://{user}:{token}@HOST/records/ ...",
                match &expires {
                    Some(e) => format!("expires {e} UTC"),
                    None => "never expires".to_string(),
                }
            );
            println!("{token}");
            Ok(())
        }
        TokenCommand::List { user, format } => {
            let tx = store.read();
            if let Some(u) = user.as_deref() {
                tx.require_user(u)?;
            }
            let tokens = tx.tokens(user.as_deref())?;
            if format == WhenceFormat::Json {
                let list: Vec<Value> = tokens.iter().map(|t| t.to_json()).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).expect("JSON serialises")
                );
                return Ok(());
            }
            if tokens.is_empty() {
                eprintln!("no tokens");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "id",
                "user",
                "project",
                "level",
                "name",
                "created",
                "expires",
                "last used",
            ]);
            for t in &tokens {
                let last = match (&t.last_used, &t.last_address) {
                    (Some(at), Some(from)) => format!("{at} from {from}"),
                    (Some(at), None) => at.clone(),
                    _ => "never".into(),
                };
                table.add_row([
                    t.id.to_string(),
                    t.username.clone(),
                    t.project.clone(),
                    t.level.to_string(),
                    t.name.clone(),
                    t.created.clone(),
                    t.expires.clone().unwrap_or_else(|| "never".into()),
                    last,
                ]);
            }
            println!("{table}");
            Ok(())
        }
        TokenCommand::Revoke { id, value } => {
            let t = store.write(|tx| {
                let found = match (id, &value) {
                    (Some(id), _) => tx.token(id)?,
                    (None, Some(v)) => tx.token_by_digest(&crate::token::digest(v.trim()))?,
                    (None, None) => None,
                };
                let t = found.ok_or_else(|| {
                    Error::not_found(match id {
                        Some(id) => format!("no token {id}"),
                        None => "no such token (revoked already, or never made here)".into(),
                    })
                })?;
                tx.revoke_token(&t, &Actor::shell())?;
                Ok(t)
            })?;
            eprintln!(
                "revoked token {} of {} on project {} ({:?})",
                t.id, t.username, t.project, t.name
            );
            Ok(())
        }
    }
}
