//! The trash (SPEC 10.2): every delete moves records here, as they were
//! stored, instead of erasing them; they are restored from here (onto a
//! label that is free, or under a new one), and purged after a while. A
//! deleted project keeps its name, description and access here until its
//! records are restored or purged. Every move is in the history.

use super::history::Actor;
use super::sql::{args, Arg};
use super::{Level, Tx};
use crate::error::{Error, Result};
use crate::record::Record;
use serde_json::{json, Value};

/// A record in the trash.
#[derive(Debug, Clone, PartialEq)]
pub struct Trashed {
    pub id: i64,
    pub project: String,
    pub label: String,
    pub timestamp: String,
    pub tags: Vec<String>,
    pub deleted_at: String,
    pub deleted_by: String,
    /// How it went: `record`, `tag T`, `selection`, `project`.
    pub how: String,
}

impl Trashed {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "project": self.project, "label": self.label, "timestamp": self.timestamp,
               "tags": self.tags, "deleted_at": self.deleted_at, "deleted_by": self.deleted_by,
               "how": self.how})
    }
}

/// Which records of a project's trash to restore.
#[derive(Debug, Clone, Copy)]
pub enum Restore<'a> {
    /// These trashed records (their ids in the trash).
    Ids(&'a [i64]),
    /// The latest deleted record of each label.
    Labels(&'a [String]),
    /// Every record with this tag.
    Tag(&'a str),
    /// Every record deleted at or after this time (UTC).
    Since(&'a str),
}

/// The tags of a stored record's JSON.
fn tags_of(body: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Vec<String>,
    }
    serde_json::from_str::<Tags>(body)
        .map(|t| t.tags)
        .unwrap_or_default()
}

const TRASHED: &str =
    "SELECT id, project_id, label, timestamp, body, deleted_at, deleted_by, how FROM trash";

impl Tx<'_> {
    /// Moves the records of `project` that `cond` selects (over
    /// `records`, its arguments from `?2`; `?1` is the project) to the
    /// trash; returns their labels.
    fn trash_where(
        &self,
        project: &str,
        cond: &str,
        more: &[Arg<'_>],
        actor: &Actor,
        how: &str,
    ) -> Result<Vec<String>> {
        let mut a: Vec<Arg<'_>> = vec![Arg::from(project)];
        a.extend(more.iter().cloned());
        let selected = format!("project_id = ?1 AND {cond}");
        // Locked until the end of the transaction (PostgreSQL): a PUT of
        // one of them waits and then finds it gone; a second delete finds
        // nothing to move.
        let labels = self.all(
            &format!(
                "SELECT label FROM records WHERE {selected} ORDER BY timestamp, label{}",
                self.for_update()
            ),
            &a,
            |r| r.string(0),
        )?;
        if labels.is_empty() {
            return Ok(labels);
        }
        let n = a.len();
        a.extend([
            Arg::from(crate::record::timefmt::now()),
            Arg::from(actor.name.clone()),
            Arg::from(how.to_string()),
        ]);
        self.exec(
            &format!(
                "INSERT INTO trash (project_id, label, timestamp, body, deleted_at, deleted_by, how)
                 SELECT project_id, label, timestamp, body, ?{}, ?{}, ?{} FROM records WHERE {selected}
                 ORDER BY timestamp, label",
                n + 1,
                n + 2,
                n + 3
            ),
            &a,
        )?;
        a.truncate(n);
        self.exec(&format!("DELETE FROM records WHERE {selected}"), &a)?;
        for l in &labels {
            self.log(
                actor,
                Some(project),
                "record.delete",
                l,
                json!({"how": how}),
            )?;
        }
        Ok(labels)
    }

    /// Moves a record to the trash; whether there was one.
    pub fn delete_record(&self, project: &str, label: &str, actor: &Actor) -> Result<bool> {
        Ok(!self
            .trash_where(project, "label = ?2", &[Arg::from(label)], actor, "record")?
            .is_empty())
    }

    /// Moves every record of a project that has the tag to the trash;
    /// returns how many.
    pub fn delete_by_tag(&self, project: &str, tag: &str, actor: &Actor) -> Result<usize> {
        Ok(self
            .trash_where(
                project,
                "id IN (SELECT record_id FROM record_tags WHERE project_id = ?1 AND tag = ?2)",
                &[Arg::from(tag)],
                actor,
                &format!("tag {tag}"),
            )?
            .len())
    }

    /// Moves the records of these labels to the trash; returns their labels.
    pub fn delete_labels(
        &self,
        project: &str,
        labels: &[String],
        actor: &Actor,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in labels.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let a: Vec<Arg<'_>> = chunk.iter().map(Arg::from).collect();
            out.extend(self.trash_where(
                project,
                &format!("label IN ({})", marks.join(", ")),
                &a,
                actor,
                "selection",
            )?);
        }
        Ok(out)
    }

    /// Deletes a project: its records to the trash, its name, description
    /// and access kept beside them; returns how many records went.
    pub fn delete_project(&self, project: &str, actor: &Actor) -> Result<usize> {
        let p = self.require_project(project)?;
        let records = self
            .trash_where(project, "1 = 1", &[], actor, "project")?
            .len();
        let access: Vec<Value> = self
            .access(project)?
            .into_iter()
            .map(|a| json!({"user": a.username, "level": a.level.as_str()}))
            .collect();
        self.exec("DELETE FROM trashed_projects WHERE id = ?1", args![project])?;
        let created = self
            .project_created(project)?
            .unwrap_or_else(crate::record::timefmt::now);
        self.exec(
            "INSERT INTO trashed_projects (id, name, description, access, created, deleted_at, deleted_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                project,
                p.name.as_str(),
                p.description.as_str(),
                Value::Array(access).to_string(),
                created,
                crate::record::timefmt::now(),
                actor.name.as_str()
            ],
        )?;
        self.exec("DELETE FROM projects WHERE id = ?1", args![project])?;
        self.log(
            actor,
            Some(project),
            "project.delete",
            project,
            json!({"records": records, "name": p.name}),
        )?;
        Ok(records)
    }

    /// Takes a removed user out of the access the deleted projects keep.
    pub(super) fn forget_access_in_trash(&self, username: &str) -> Result<()> {
        let kept: Vec<(String, String)> =
            self.all("SELECT id, access FROM trashed_projects", &[], |r| {
                Ok((r.string(0)?, r.string(1)?))
            })?;
        for (id, access) in kept {
            let mut list: Vec<Value> = serde_json::from_str(&access).unwrap_or_default();
            let before = list.len();
            list.retain(|a| a["user"] != username);
            if list.len() != before {
                self.exec(
                    "UPDATE trashed_projects SET access = ?2 WHERE id = ?1",
                    args![id.as_str(), Value::Array(list).to_string()],
                )?;
            }
        }
        Ok(())
    }

    /// A page of the trash, latest deleted first (one project, or all).
    pub fn trash(&self, project: Option<&str>, limit: u64, offset: u64) -> Result<Vec<Trashed>> {
        let (cond, a) = match project {
            Some(p) => ("WHERE project_id = ?1", vec![Arg::from(p)]),
            None => ("", Vec::new()),
        };
        let sql = format!(
            "{TRASHED} {cond} ORDER BY deleted_at DESC, id DESC LIMIT {} OFFSET {}",
            limit.min(i64::MAX as u64),
            offset.min(i64::MAX as u64)
        );
        self.trashed(&sql, &a)
    }

    /// How many records a project's trash holds (all of it for `None`).
    pub fn trash_count(&self, project: Option<&str>) -> Result<i64> {
        match project {
            Some(p) => self.int("SELECT count(*) FROM trash WHERE project_id = ?1", args![p]),
            None => self.int("SELECT count(*) FROM trash", args![]),
        }
    }

    fn trashed(&self, sql: &str, a: &[Arg<'_>]) -> Result<Vec<Trashed>> {
        self.all(sql, a, |r| {
            Ok(Trashed {
                id: r.int(0)?,
                project: r.string(1)?,
                label: r.string(2)?,
                timestamp: r.string(3)?,
                tags: tags_of(r.text(4)?),
                deleted_at: r.string(5)?,
                deleted_by: r.string(6)?,
                how: r.string(7)?,
            })
        })
    }

    /// Restores records of a project's trash: each onto its label, which
    /// must be free (or under `rename`, for one record); a deleted project
    /// comes back first, with its name, description and the access of
    /// users that still exist. All or nothing; returns the labels restored.
    pub fn restore(
        &self,
        project: &str,
        which: Restore<'_>,
        rename: Option<&str>,
        actor: &Actor,
    ) -> Result<Vec<String>> {
        // (trash id, label, body, deleted_at), oldest first; what is asked
        // is chosen in SQL, not by reading the whole trash.
        let mut a: Vec<Arg<'_>> = vec![Arg::from(project)];
        let cond = match which {
            Restore::Ids(ids) => {
                a.extend(ids.iter().map(|i| Arg::Int(*i)));
                format!("id IN ({})", super::index::list("?", ids.len().max(1)))
            }
            Restore::Labels(labels) => {
                a.extend(labels.iter().map(Arg::from));
                format!(
                    "label IN ({})",
                    super::index::list("?", labels.len().max(1))
                )
            }
            // A prefilter on the body's text, the tag as JSON writes it
            // (a `"` or `\` escaped; a tag beyond ASCII may be written
            // as `\u` escapes, so none); the tags are checked below.
            Restore::Tag(t) if t.is_ascii() => {
                let json = serde_json::to_string(t).expect("a string serialises");
                a.push(Arg::Text(json[1..json.len() - 1].to_string().into()));
                match self.dialect() {
                    super::sql::Dialect::Sqlite => "instr(body, ?2) > 0".to_string(),
                    super::sql::Dialect::Postgres => "strpos(body, ?2) > 0".to_string(),
                }
            }
            Restore::Tag(_) => "1 = 1".to_string(),
            Restore::Since(s) => {
                a.push(Arg::from(s));
                "deleted_at >= ?2".to_string()
            }
        };
        let rows: Vec<(i64, String, String, String)> = self.all(
            &format!(
                "SELECT id, label, body, deleted_at FROM trash WHERE project_id = ?1 AND {cond}
                  ORDER BY deleted_at, id"
            ),
            &a,
            |r| Ok((r.int(0)?, r.string(1)?, r.string(2)?, r.string(3)?)),
        )?;
        let chosen: Vec<&(i64, String, String, String)> = match which {
            Restore::Ids(ids) => {
                if let Some(missing) = ids.iter().find(|i| !rows.iter().any(|r| r.0 == **i)) {
                    return Err(Error::not_found(format!(
                        "no record {missing} in the trash of project {project:?}"
                    )));
                }
                rows.iter().collect()
            }
            Restore::Labels(labels) => {
                let mut out = Vec::new();
                for l in labels {
                    // The latest deleted record of that label.
                    match rows.iter().rev().find(|r| &r.1 == l) {
                        Some(r) => out.push(r),
                        None => {
                            return Err(Error::not_found(format!(
                                "no record {l:?} in the trash of project {project:?}"
                            )))
                        }
                    }
                }
                out
            }
            Restore::Tag(t) => latest_of_each_label(
                rows.iter()
                    .filter(|r| tags_of(&r.2).iter().any(|x| x == t))
                    .collect(),
            ),
            Restore::Since(_) => latest_of_each_label(rows.iter().collect()),
        };
        if chosen.is_empty() {
            // A deleted project that had no records (or none left since
            // the time asked) comes back by itself.
            if matches!(which, Restore::Since(_))
                && self.project(project)?.is_none()
                && self.is_deleted_project(project)?
            {
                self.undelete_project(project, actor)?;
                return Ok(Vec::new());
            }
            return Err(Error::not_found(format!(
                "nothing in the trash of project {project:?} matches"
            )));
        }
        if rename.is_some() && chosen.len() != 1 {
            return Err(Error::bad(format!(
                "a new label is for one record; {} were chosen",
                chosen.len()
            )));
        }
        if self.project(project)?.is_none() {
            self.undelete_project(project, actor)?;
        }
        let mut restored = Vec::new();
        for (id, label, body, _) in chosen {
            let mut record: Record = serde_json::from_str(body).map_err(|e| {
                Error::Database(format!("trashed record {label:?} is unreadable: {e}"))
            })?;
            let body = match rename {
                Some(new) => {
                    crate::record::check_label(new).map_err(Error::BadRequest)?;
                    if crate::record::RESERVED_LABELS.contains(&new) {
                        return Err(Error::bad(format!(
                            "{new:?} is a route of its own, not usable as a label"
                        )));
                    }
                    record.label = new.to_string();
                    serde_json::to_string(&record).expect("a record serialises")
                }
                None => body.clone(),
            };
            if !self.insert_record_body(project, &record, &body)? {
                return Err(Error::Conflict(format!(
                    "label {:?} of project {project:?} is in use again: \
                     restore the record under a new label (--as NEW)",
                    record.label
                )));
            }
            self.exec("DELETE FROM trash WHERE id = ?1", args![*id])?;
            let detail = match rename {
                Some(_) => json!({"from": label}),
                None => json!({}),
            };
            self.log(
                actor,
                Some(project),
                "record.restore",
                &record.label,
                detail,
            )?;
            restored.push(record.label);
        }
        Ok(restored)
    }

    /// Whether a deleted project of this id waits in the trash.
    pub fn is_deleted_project(&self, id: &str) -> Result<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM trashed_projects WHERE id = ?1",
                args![id],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// A deleted project back, with the access of users that still exist.
    fn undelete_project(&self, project: &str, actor: &Actor) -> Result<()> {
        let kept = self.one(
            "SELECT name, description, access, created FROM trashed_projects WHERE id = ?1",
            args![project],
            |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?, r.string(3)?)),
        )?;
        let Some((name, description, access, created)) = kept else {
            return Err(Error::not_found(format!("no project {project:?}")));
        };
        self.exec("DELETE FROM trashed_projects WHERE id = ?1", args![project])?;
        self.create_project(project, &name, &description)?;
        // Its history goes on from where it began.
        self.exec(
            "UPDATE projects SET created = ?2 WHERE id = ?1",
            args![project, created],
        )?;
        let access: Vec<Value> = serde_json::from_str(&access).unwrap_or_default();
        for a in access {
            let (Some(user), Some(level)) = (a["user"].as_str(), a["level"].as_str()) else {
                continue;
            };
            if self.user(user)?.is_some() {
                self.grant(user, project, Level::parse(level)?)?;
            }
        }
        self.exec("DELETE FROM trashed_projects WHERE id = ?1", args![project])?;
        self.log(actor, Some(project), "project.restore", project, json!({}))
    }

    /// Erases what was deleted before `before` (UTC; everything for
    /// `None`), of one project or all; returns how many records.
    pub fn purge(&self, project: Option<&str>, before: Option<&str>, actor: &Actor) -> Result<u64> {
        let mut a: Vec<Arg<'_>> = Vec::new();
        let mut cond = vec!["1 = 1".to_string()];
        if let Some(p) = project {
            a.push(Arg::from(p));
            cond.push(format!("project_id = ?{}", a.len()));
        }
        if let Some(b) = before {
            a.push(Arg::from(b));
            cond.push(format!("deleted_at < ?{}", a.len()));
        }
        let cond = cond.join(" AND ");
        // What this transaction deleted (another process purging at the
        // same time logs only its own).
        let gone: Vec<(String, String)> = self.all(
            &format!("DELETE FROM trash WHERE {cond} RETURNING project_id, label"),
            &a,
            |r| Ok((r.string(0)?, r.string(1)?)),
        )?;
        for (p, l) in &gone {
            self.log(actor, Some(p), "record.purge", l, json!({}))?;
        }
        // A deleted project whose records are all gone goes too.
        let mut b: Vec<Arg<'_>> = Vec::new();
        let mut pcond = vec!["id NOT IN (SELECT project_id FROM trash)".to_string()];
        if let Some(p) = project {
            b.push(Arg::from(p));
            pcond.push(format!("id = ?{}", b.len()));
        }
        if let Some(t) = before {
            b.push(Arg::from(t));
            pcond.push(format!("deleted_at < ?{}", b.len()));
        }
        let pcond = pcond.join(" AND ");
        let projects: Vec<String> = self.all(
            &format!("DELETE FROM trashed_projects WHERE {pcond} RETURNING id"),
            &b,
            |r| r.string(0),
        )?;
        for p in &projects {
            self.log(actor, Some(p), "project.purge", p, json!({}))?;
        }
        Ok(gone.len() as u64)
    }
}

/// Of the trashed rows chosen (oldest first), the latest of each label: an
/// older copy of a label deleted, put again and deleted again stays in the
/// trash rather than take the label before the copy deleted last.
fn latest_of_each_label(
    rows: Vec<&(i64, String, String, String)>,
) -> Vec<&(i64, String, String, String)> {
    let mut last = std::collections::HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert(r.1.as_str(), i);
    }
    rows.iter()
        .enumerate()
        .filter(|(i, r)| last.get(r.1.as_str()) == Some(i))
        .map(|(_, r)| *r)
        .collect()
}
