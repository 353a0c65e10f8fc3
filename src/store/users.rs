use super::{Tx, ANONYMOUS};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

/// What authentication needs to know about a user.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    pub created: String,
    /// `project (level)` for each project the user can access.
    pub projects: Vec<String>,
    pub can_log_in: bool,
}

/// Django's rule for user names: 1 to 150 of letters, digits and `@.+-_`.
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 150
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "{name:?} is not a valid user name (1 to 150 letters, digits and @ . + - _)"
        )))
    }
}

impl Tx<'_> {
    pub fn add_user(&self, username: &str, password_hash: &str) -> Result<()> {
        check_username(username)?;
        if username == ANONYMOUS {
            return Err(Error::bad(
                "\"anonymous\" is reserved: grant it read access to make a project public",
            ));
        }
        if self.user(username)?.is_some() {
            return Err(Error::Conflict(format!("user {username:?} exists already")));
        }
        self.conn().execute(
            "INSERT INTO users (username, password, created) VALUES (?1, ?2, ?3)",
            params![username, password_hash, crate::record::timefmt::now()],
        )?;
        Ok(())
    }

    /// Inserts or updates a user with a known id (loaddata); returns whether anything changed.
    pub fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        email: &str,
        created: &str,
    ) -> Result<bool> {
        check_username(username)?;
        match self.user(username)? {
            Some(_) if username == ANONYMOUS => Ok(false),
            Some(u) => {
                let n = self.conn().execute(
                    "UPDATE users SET password = ?2, email = ?3 WHERE id = ?1 AND (password != ?2 OR email != ?3)",
                    params![u.id, password_hash, email],
                )?;
                Ok(n > 0)
            }
            None => {
                self.conn().execute(
                    "INSERT INTO users (username, password, email, created) VALUES (?1, ?2, ?3, ?4)",
                    params![username, password_hash, email, created],
                )?;
                Ok(true)
            }
        }
    }

    pub fn user(&self, username: &str) -> Result<Option<UserAuth>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT id, username, password FROM users WHERE username = ?1")?
            .query_row([username], |r| {
                Ok(UserAuth {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                })
            })
            .optional()?)
    }

    pub fn require_user(&self, username: &str) -> Result<UserAuth> {
        self.user(username)?
            .ok_or_else(|| Error::not_found(format!("no user {username:?}")))
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<UserAuth>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT id, username, password FROM users WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(UserAuth {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                })
            })
            .optional()?)
    }

    pub fn set_password(&self, username: &str, password_hash: &str) -> Result<()> {
        if username == ANONYMOUS {
            return Err(Error::bad("\"anonymous\" cannot have a password"));
        }
        let user = self.require_user(username)?;
        self.conn().execute(
            "UPDATE users SET password = ?2 WHERE id = ?1",
            params![user.id, password_hash],
        )?;
        Ok(())
    }

    /// Removes a user and their permissions; their records stay.
    pub fn delete_user(&self, username: &str) -> Result<()> {
        if username == ANONYMOUS {
            return Err(Error::bad(
                "\"anonymous\" is built in; revoke its access to make a project private",
            ));
        }
        let user = self.require_user(username)?;
        self.conn()
            .execute("DELETE FROM users WHERE id = ?1", [user.id])?;
        Ok(())
    }

    pub fn list_users(&self) -> Result<Vec<UserSummary>> {
        let mut stmt = self.conn().prepare(
            "SELECT u.username, u.created, u.password,
                    (SELECT group_concat(p.project_id || ' (' || p.level || ')', ', ')
                       FROM (SELECT * FROM permissions WHERE user_id = u.id ORDER BY project_id) p)
               FROM users u ORDER BY u.username",
        )?;
        let rows = stmt.query_map([], |r| {
            let hash: String = r.get(2)?;
            let projects: Option<String> = r.get(3)?;
            Ok(UserSummary {
                username: r.get(0)?,
                created: r.get(1)?,
                can_log_in: !hash.is_empty(),
                projects: projects
                    .map(|p| p.split(", ").map(String::from).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
