//! The history (SPEC 10.3): every change appended, in the transaction of
//! the change itself, with who made it (a user, a token, or the shell and
//! its system user), when, from which address, and what changed. Nothing
//! in the HTTP API changes or deletes it.

use super::sql::{args, Arg};
use super::Tx;
use crate::error::Result;
use serde_json::Value;

/// Who makes a change, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub address: Option<String>,
}

impl Actor {
    /// The command line: `shell (USER)`, the system user who ran it.
    pub fn shell() -> Actor {
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata("/proc/self")
                    .map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
            });
        Actor {
            name: format!("shell ({user})"),
            address: None,
        }
    }

    /// A caller over HTTP.
    pub fn caller(name: &str, address: String) -> Actor {
        Actor {
            name: name.to_string(),
            address: Some(address),
        }
    }
}

/// One entry of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub address: Option<String>,
    pub project: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

impl Entry {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id, "at": self.at, "actor": self.actor, "address": self.address,
            "project": self.project, "action": self.action, "target": self.target,
            "detail": self.detail,
        })
    }
}

/// The top-level fields of two versions of a record that differ, and for
/// reason, outcome and tags the values before and after (SPEC 10.3).
pub fn record_changes(old: &Value, new: &Value) -> Value {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return Value::Null;
    };
    let mut fields: Vec<&String> = b
        .keys()
        .chain(a.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    fields.sort();
    fields.dedup();
    let mut detail = serde_json::Map::new();
    detail.insert("fields".into(), serde_json::json!(fields));
    for k in ["reason", "outcome", "tags"] {
        if a.get(k) != b.get(k) {
            detail.insert(
                k.into(),
                serde_json::json!({"before": a.get(k), "after": b.get(k)}),
            );
        }
    }
    Value::Object(detail)
}

impl Tx<'_> {
    /// Appends a change to the history.
    pub fn log(
        &self,
        actor: &Actor,
        project: Option<&str>,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO history (at, actor, address, project_id, action, target, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                crate::record::timefmt::now(),
                actor.name.as_str(),
                actor.address.as_deref(),
                project,
                action,
                target,
                detail.to_string()
            ],
        )?;
        Ok(())
    }

    /// Where the history of a project begins: its latest creation, and
    /// for a project that is there now, not before the latest purge of a
    /// deleted project of the same id (an older project of that id is not
    /// its past, whether the new one was made by a grant, a PUT or
    /// `loaddata`; a restored project keeps its own). A purged project's
    /// history stays readable in the shell.
    fn history_start(&self, project: Option<&str>) -> Result<Option<i64>> {
        let Some(p) = project else { return Ok(None) };
        let sql = match self.project(p)?.is_some() {
            true => {
                "SELECT max(CASE WHEN action = 'project.purge' THEN id + 1 ELSE id END)
                   FROM history
                  WHERE project_id = ?1 AND action IN ('project.create', 'project.purge')"
            }
            false => {
                "SELECT max(id) FROM history WHERE project_id = ?1 AND action = 'project.create'"
            }
        };
        self.one(sql, args![p], |r| r.int_opt(0))
            .map(Option::flatten)
    }

    /// A page of the history, newest first: of one project (or all of it),
    /// since a time (`YYYY-MM-DD[ HH:MM:SS]`, UTC).
    pub fn history(
        &self,
        project: Option<&str>,
        since: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Entry>> {
        let mut a: Vec<Arg<'_>> = Vec::new();
        let mut cond = vec!["1 = 1".to_string()];
        if let Some(p) = project {
            a.push(Arg::from(p));
            cond.push(format!("project_id = ?{}", a.len()));
        }
        if let Some(from) = self.history_start(project)? {
            a.push(Arg::Int(from));
            cond.push(format!("id >= ?{}", a.len()));
        }
        if let Some(s) = since {
            a.push(Arg::from(s));
            cond.push(format!("at >= ?{}", a.len()));
        }
        let sql = format!(
            "SELECT id, at, actor, address, project_id, action, target, detail FROM history
              WHERE {} ORDER BY id DESC LIMIT {} OFFSET {}",
            cond.join(" AND "),
            limit.min(i64::MAX as u64),
            offset.min(i64::MAX as u64)
        );
        self.all(&sql, &a, |r| {
            Ok(Entry {
                id: r.int(0)?,
                at: r.string(1)?,
                actor: r.string(2)?,
                address: r.text_opt(3)?.map(String::from),
                project: r.text_opt(4)?.map(String::from),
                action: r.string(5)?,
                target: r.string(6)?,
                detail: serde_json::from_str(r.text(7)?).unwrap_or(Value::Null),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::record_changes;
    use serde_json::json;

    #[test]
    fn a_change_names_its_fields_and_shows_reason_outcome_and_tags() {
        let old = json!({"reason": "a", "outcome": "", "tags": ["x"], "duration": null});
        let new = json!({"reason": "a", "outcome": "ok", "tags": ["x", "y"], "duration": 1.5});
        assert_eq!(
            record_changes(&old, &new),
            json!({"fields": ["duration", "outcome", "tags"],
                   "outcome": {"before": "", "after": "ok"},
                   "tags": {"before": ["x"], "after": ["x", "y"]}})
        );
        assert_eq!(record_changes(&old, &old), json!({"fields": []}));
    }
}
