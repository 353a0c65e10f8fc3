use super::sql::{args, Row};
use super::{Level, Tx, ANONYMOUS};
use crate::error::{Error, Result};
use crate::record::check_project_id;

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
}

impl Project {
    /// The name to show: the long name, or the id when there is none.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessEntry {
    pub username: String,
    pub level: Level,
}

#[derive(Debug, Clone)]
pub struct ProjectSummary {
    pub project: Project,
    pub record_count: i64,
    /// Timestamp of the newest record, if any.
    pub last_updated: Option<String>,
    pub access: Vec<AccessEntry>,
}

fn valid_id(id: &str) -> Result<()> {
    check_project_id(id).map_err(Error::BadRequest)
}

/// A project, the user a request names (if they exist), the level granted
/// to that user, and whether anyone may read the project.
#[derive(Debug, Clone)]
pub struct Access {
    pub project: Project,
    pub user: Option<super::UserAuth>,
    pub level: Option<Level>,
    pub public: bool,
    /// The record asked for with it, as stored (only to a caller who may read it).
    pub record: Option<String>,
}

impl Access {
    /// What a user (by id; none: anonymous) holds: their grant, or read on
    /// a public project (the anonymous user's grant is read at most).
    pub fn level_of(&self, user: Option<i64>) -> Option<Level> {
        let own = match (user, &self.user) {
            (Some(id), Some(u)) if u.id == id && u.username != super::ANONYMOUS => self.level,
            _ => None,
        };
        own.max(self.public.then_some(Level::Read))
    }
}

impl Tx<'_> {
    pub fn project(&self, id: &str) -> Result<Option<Project>> {
        self.one(
            "SELECT id, name, description FROM projects WHERE id = ?1",
            args![id],
            project_of,
        )
    }

    /// A project and what the user named by a request holds on it, in one
    /// question (SPEC 11.4: a request's authorization is one round trip on
    /// PostgreSQL): none when there is no such project.
    /// With `label`, the stored JSON of that record too (the client's GET
    /// of a record: one question in all).
    pub fn access_and_record(
        &self,
        project: &str,
        username: Option<&str>,
        label: Option<&str>,
    ) -> Result<Option<Access>> {
        self.one(
            "SELECT p.id, p.name, p.description, u.id, u.username, u.password,
                    (SELECT pe.level FROM permissions pe
                      WHERE pe.project_id = p.id AND pe.user_id = u.id),
                    EXISTS (SELECT 1 FROM permissions pe JOIN users a ON a.id = pe.user_id
                             WHERE pe.project_id = p.id AND a.username = 'anonymous'),
                    (SELECT r.body FROM records r WHERE r.project_id = p.id AND r.label = ?3)
               FROM projects p LEFT JOIN users u ON u.username = ?2
              WHERE p.id = ?1",
            args![project, username, label],
            |r| {
                let user = match r.int_opt(3)? {
                    Some(id) => Some(super::UserAuth {
                        id,
                        username: r.string(4)?,
                        password_hash: r.string(5)?,
                    }),
                    None => None,
                };
                Ok(Access {
                    project: Project {
                        id: r.string(0)?,
                        name: r.string(1)?,
                        description: r.string(2)?,
                    },
                    user,
                    level: r.text_opt(6)?.map(Level::parse).transpose()?,
                    public: r.int(7)? != 0,
                    record: r.text_opt(8)?.map(String::from),
                })
            },
        )
    }

    /// When a project was created (UTC): its history starts there.
    pub fn project_created(&self, id: &str) -> Result<Option<String>> {
        self.one(
            "SELECT created FROM projects WHERE id = ?1",
            args![id],
            |r| r.string(0),
        )
    }

    /// Locks a project's row until the transaction ends (PostgreSQL; SQLite
    /// has one writer at a time): checks of who is admin and the change
    /// they guard happen as one, whichever process writes.
    pub fn lock_project(&self, id: &str) -> Result<()> {
        let sql = format!("SELECT id FROM projects WHERE id = ?1{}", self.for_update());
        self.one(&sql, args![id], |_| Ok(()))?;
        Ok(())
    }

    pub fn require_project(&self, id: &str) -> Result<Project> {
        self.project(id)?
            .ok_or_else(|| Error::not_found(format!("no project {id:?}")))
    }

    pub fn create_project(&self, id: &str, name: &str, description: &str) -> Result<()> {
        valid_id(id)?;
        if self.project(id)?.is_some() {
            return Err(Error::Conflict(format!("project {id:?} exists already")));
        }
        // A deleted project's records, access and history are its own: a
        // new project does not take them over under the same id.
        if self
            .one(
                "SELECT 1 FROM trashed_projects WHERE id = ?1",
                args![id],
                |_| Ok(()),
            )?
            .is_some()
        {
            return Err(Error::Conflict(format!(
                "project {id:?} was deleted and is in the trash: restore it, or purge it \
                 (sumatra-server trash {id} --purge --days 0) before making a new one"
            )));
        }
        self.exec(
            "INSERT INTO projects (id, name, description, created) VALUES (?1, ?2, ?3, ?4)",
            args![id, name, description, crate::record::timefmt::now()],
        )?;
        Ok(())
    }

    /// Creates the project if it is missing; returns whether it was created.
    pub fn ensure_project(&self, id: &str) -> Result<bool> {
        if self.project(id)?.is_some() {
            return Ok(false);
        }
        self.create_project(id, "", "")?;
        Ok(true)
    }

    pub fn update_project(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<()> {
        let p = self.require_project(id)?;
        self.exec(
            "UPDATE projects SET name = ?2, description = ?3 WHERE id = ?1",
            args![
                id,
                name.unwrap_or(&p.name),
                description.unwrap_or(&p.description)
            ],
        )?;
        Ok(())
    }

    /// Inserts or updates a project (loaddata); returns whether anything changed.
    pub fn upsert_project(&self, p: &Project) -> Result<bool> {
        valid_id(&p.id)?;
        match self.project(&p.id)? {
            Some(old) if old == *p => Ok(false),
            Some(_) => {
                self.update_project(&p.id, Some(&p.name), Some(&p.description))?;
                Ok(true)
            }
            None => {
                self.create_project(&p.id, &p.name, &p.description)?;
                Ok(true)
            }
        }
    }

    /// Projects with counts and access, newest activity first. With
    /// `visible_to`, only those the anonymous user or that user can read.
    pub fn list_projects(&self, visible_to: Option<Option<i64>>) -> Result<Vec<ProjectSummary>> {
        let sql = "SELECT p.id, p.name, p.description,
                    (SELECT count(*) FROM records r WHERE r.project_id = p.id),
                    (SELECT max(timestamp) FROM records r WHERE r.project_id = p.id)
               FROM projects p
              WHERE ?1 = 0 OR p.id IN (
                    SELECT project_id FROM permissions pe JOIN users u ON u.id = pe.user_id
                     WHERE u.username = 'anonymous' OR u.id = ?2)";
        let (filter, uid): (i64, Option<i64>) = match visible_to {
            None => (0, None),
            Some(uid) => (1, uid),
        };
        let mut out = self.all(sql, args![filter, uid], |r| {
            Ok(ProjectSummary {
                project: project_of(r)?,
                record_count: r.int(3)?,
                last_updated: r.text_opt(4)?.map(String::from),
                access: Vec::new(),
            })
        })?;
        for p in &mut out {
            p.access = self.access(&p.project.id)?;
        }
        out.sort_by(|a, b| {
            b.last_updated
                .cmp(&a.last_updated)
                .then_with(|| a.project.id.cmp(&b.project.id))
        });
        Ok(out)
    }

    /// Who has access to a project, in the order access was granted.
    pub fn access(&self, project: &str) -> Result<Vec<AccessEntry>> {
        self.all(
            "SELECT u.username, pe.level FROM permissions pe JOIN users u ON u.id = pe.user_id
              WHERE pe.project_id = ?1 ORDER BY pe.id",
            args![project],
            |r| {
                Ok(AccessEntry {
                    username: r.string(0)?,
                    level: Level::parse(r.text(1)?)?,
                })
            },
        )
    }

    /// The level a user (by id) holds on a project, if any.
    pub fn level(&self, project: &str, user_id: i64) -> Result<Option<Level>> {
        let level = self.one(
            "SELECT level FROM permissions WHERE project_id = ?1 AND user_id = ?2",
            args![project, user_id],
            |r| r.string(0),
        )?;
        level.map(|l| Level::parse(&l)).transpose()
    }

    /// Grants (or changes) a user's level; the anonymous user gets read only.
    /// Returns whether anything changed.
    pub fn grant(&self, username: &str, project: &str, level: Level) -> Result<bool> {
        let user = self.require_user(username)?;
        self.require_project(project)?;
        let level = if username == ANONYMOUS {
            Level::Read
        } else {
            level
        };
        if self.level(project, user.id)? == Some(level) {
            return Ok(false);
        }
        self.exec(
            "INSERT INTO permissions (project_id, user_id, level) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, user_id) DO UPDATE SET level = excluded.level",
            args![project, user.id, level.as_str()],
        )?;
        Ok(true)
    }

    /// The projects whose only admin is `username`: removing or lowering
    /// that user leaves them without one.
    pub fn sole_admin_of(&self, username: &str) -> Result<Vec<String>> {
        self.all(
            "SELECT pe.project_id FROM permissions pe JOIN users u ON u.id = pe.user_id
              WHERE u.username = ?1 AND pe.level = 'admin'
                AND NOT EXISTS (SELECT 1 FROM permissions o
                                 WHERE o.project_id = pe.project_id AND o.level = 'admin'
                                   AND o.user_id <> pe.user_id)
              ORDER BY pe.project_id",
            args![username],
            |r| r.string(0),
        )
    }

    /// Takes a user's access to a project away, and with it their tokens
    /// for the project (SPEC 11.1: a revoked permission ends the token, and
    /// access given back later does not revive it); the ids of the tokens
    /// ended, for the history.
    pub fn revoke(&self, username: &str, project: &str) -> Result<Vec<i64>> {
        let user = self.require_user(username)?;
        self.require_project(project)?;
        let n = self.exec(
            "DELETE FROM permissions WHERE project_id = ?1 AND user_id = ?2",
            args![project, user.id],
        )?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "{username:?} has no access to project {project:?}"
            )));
        }
        let mut ended = self.all(
            "DELETE FROM tokens WHERE user_id = ?1 AND project_id = ?2 RETURNING id",
            args![user.id, project],
            |r| r.int(0),
        )?;
        ended.sort_unstable();
        Ok(ended)
    }
}

fn project_of(r: &dyn Row) -> Result<Project> {
    Ok(Project {
        id: r.string(0)?,
        name: r.string(1)?,
        description: r.string(2)?,
    })
}
