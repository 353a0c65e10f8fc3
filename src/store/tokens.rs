//! Tokens (SPEC 11.1): a user's stand-ins for the password, each for one
//! project at read or write, kept as the SHA-256 of the token only. What a
//! token grants is decided where it is used: at most its level, and never
//! more than its user holds on the project then.

use super::history::Actor;
use super::sql::args;
use super::{Level, Tx};
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub project: String,
    pub level: Level,
    pub name: String,
    pub digest: String,
    pub created: String,
    pub expires: Option<String>,
    pub last_used: Option<String>,
    pub last_address: Option<String>,
}

impl TokenRow {
    /// How the history names what a token did: `alice (token 3 "laptop")`.
    pub fn actor_name(&self) -> String {
        format!("{} (token {} {:?})", self.username, self.id, self.name)
    }

    /// Whether it has expired at `now` (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub fn expired(&self, now: &str) -> bool {
        self.expires.as_deref().is_some_and(|e| e <= now)
    }

    /// For listings: never the digest.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "user": self.username, "project": self.project,
               "level": self.level.as_str(), "name": self.name, "created": self.created,
               "expires": self.expires, "last_used": self.last_used,
               "last_address": self.last_address})
    }
}

const SELECT: &str = "SELECT t.id, t.user_id, u.username, t.project_id, t.level, t.name, t.digest,
        t.created, t.expires, t.last_used, t.last_address
   FROM tokens t JOIN users u ON u.id = t.user_id";

fn row(r: &dyn super::sql::Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.int(0)?,
        user_id: r.int(1)?,
        username: r.string(2)?,
        project: r.string(3)?,
        level: Level::parse(r.text(4)?)?,
        name: r.string(5)?,
        digest: r.string(6)?,
        created: r.string(7)?,
        expires: r.text_opt(8)?.map(String::from),
        last_used: r.text_opt(9)?.map(String::from),
        last_address: r.text_opt(10)?.map(String::from),
    })
}

/// What a new token is.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub user: &'a str,
    pub project: &'a str,
    pub level: Level,
    pub name: &'a str,
    /// UTC; none: never.
    pub expires: Option<&'a str>,
    pub digest: &'a str,
}

impl Tx<'_> {
    /// Keeps a new token's digest; refused for a level above write or above
    /// what the user holds on the project now. Returns its id.
    pub fn create_token(&self, t: &NewToken<'_>, actor: &Actor) -> Result<i64> {
        if t.level == Level::Admin {
            return Err(Error::bad(
                "a token is for reading or writing records (read or write), never for administering",
            ));
        }
        if t.name.chars().count() > 100 {
            return Err(Error::bad("a token's name: at most 100 characters"));
        }
        let user = self.require_user(t.user)?;
        if user.username == super::ANONYMOUS {
            return Err(Error::bad("anonymous has no tokens"));
        }
        self.require_project(t.project)?;
        let held = self.level(t.project, user.id)?;
        if held.is_none_or(|h| h < t.level) {
            return Err(Error::Forbidden(format!(
                "{} has {} access to project {:?}: a token cannot grant {} access",
                t.user,
                held.map_or("no".to_string(), |h| h.to_string()),
                t.project,
                t.level
            )));
        }
        let created = crate::record::timefmt::now();
        let id = self.next_token_id()?;
        self.exec(
            "INSERT INTO tokens (id, user_id, project_id, level, name, digest, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                id,
                user.id,
                t.project,
                t.level.as_str(),
                t.name,
                t.digest,
                created,
                t.expires
            ],
        )?;
        self.log(
            actor,
            Some(t.project),
            "token.create",
            t.user,
            json!({"token": id, "name": t.name, "level": t.level.as_str(), "expires": t.expires}),
        )?;
        Ok(id)
    }

    /// Every token, or a user's, by id.
    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRow>> {
        match user {
            Some(u) => self.all(
                &format!("{SELECT} WHERE u.username = ?1 ORDER BY t.id"),
                args![u],
                row,
            ),
            None => self.all(&format!("{SELECT} ORDER BY t.id"), &[], row),
        }
    }

    /// The token of this digest (one indexed lookup).
    pub fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRow>> {
        self.one(&format!("{SELECT} WHERE t.digest = ?1"), args![digest], row)
    }

    pub fn token(&self, id: i64) -> Result<Option<TokenRow>> {
        self.one(&format!("{SELECT} WHERE t.id = ?1"), args![id], row)
    }

    /// Ends a token; its row goes (what it did stays in the history).
    pub fn revoke_token(&self, t: &TokenRow, actor: &Actor) -> Result<()> {
        self.exec("DELETE FROM tokens WHERE id = ?1", args![t.id])?;
        self.log(
            actor,
            Some(&t.project),
            "token.revoke",
            &t.username,
            json!({"token": t.id, "name": t.name}),
        )
    }

    /// Notes when and from where tokens were last used (written at most
    /// once a minute per token, off the request's path).
    pub fn note_token_uses(&self, uses: &[(i64, String, String)]) -> Result<()> {
        for (id, at, address) in uses {
            self.exec(
                "UPDATE tokens SET last_used = ?2, last_address = ?3 WHERE id = ?1",
                args![*id, at.as_str(), address.as_str()],
            )?;
        }
        Ok(())
    }

    /// A new token's id: never one a token had before, even a revoked one
    /// (SQLite would give the highest id again once its token went), so
    /// that "token 12" in the history is one token: past every token's id
    /// and every id the history names. Token ids are always given here,
    /// never by the table's default; on PostgreSQL the table is locked
    /// until the transaction ends, so that two processes cannot both give
    /// one. It reads the history's token entries (no index: tokens are
    /// made seldom).
    fn next_token_id(&self) -> Result<i64> {
        if self.pg() {
            self.exec("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE", &[])?;
        }
        let mut past = self.int("SELECT coalesce(max(id), 0) FROM tokens", &[])?;
        self.each(
            "SELECT detail FROM history WHERE action = 'token.create'",
            &[],
            |r| {
                let named = serde_json::from_str::<serde_json::Value>(r.text_opt(0)?.unwrap_or(""))
                    .ok()
                    .and_then(|d| d["token"].as_i64())
                    .unwrap_or(0);
                past = past.max(named);
                Ok(())
            },
        )?;
        Ok(past + 1)
    }

    /// A token read from an export, unless its digest is there already;
    /// whether it was put. Into a fresh store (a copy) it keeps its id, by
    /// which the copied history names it; into a store with tokens or a
    /// history of its own it gets a new one (its old id may name another
    /// token here).
    pub fn keep_token(&self, t: &TokenRow, fresh: bool) -> Result<bool> {
        if self.token_by_digest(&t.digest)?.is_some() {
            return Ok(false);
        }
        let user = self.require_user(&t.username)?;
        let id = match fresh && t.id > 0 && self.token(t.id)?.is_none() {
            true => t.id,
            false => self.next_token_id()?,
        };
        self.exec(
            "INSERT INTO tokens (id, user_id, project_id, level, name, digest, created, expires,
                                 last_used, last_address)
             VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args![
                user.id,
                t.project.as_str(),
                t.level.as_str(),
                t.name.as_str(),
                t.digest.as_str(),
                t.created.as_str(),
                t.expires.as_deref(),
                t.last_used.as_deref(),
                t.last_address.as_deref(),
                id
            ],
        )?;
        Ok(true)
    }
}

/// The history's detail of an access revoked: the tokens that ended with
/// it, if any.
pub fn tokens_ended(ids: &[i64]) -> serde_json::Value {
    match ids {
        [] => json!({}),
        ids => json!({"tokens_ended": ids}),
    }
}
