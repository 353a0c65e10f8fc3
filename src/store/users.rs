use super::sql::{args, Dialect, Row};
use super::{Tx, ANONYMOUS};
use crate::error::{Error, Result};

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
        self.exec(
            "INSERT INTO users (username, password, created) VALUES (?1, ?2, ?3)",
            args![username, password_hash, crate::record::timefmt::now()],
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
                let n = self.exec(
                    "UPDATE users SET password = ?2, email = ?3 WHERE id = ?1 AND (password <> ?2 OR email <> ?3)",
                    args![u.id, password_hash, email],
                )?;
                Ok(n > 0)
            }
            None => {
                self.exec(
                    "INSERT INTO users (username, password, email, created) VALUES (?1, ?2, ?3, ?4)",
                    args![username, password_hash, email, created],
                )?;
                Ok(true)
            }
        }
    }

    pub fn user(&self, username: &str) -> Result<Option<UserAuth>> {
        self.one(
            "SELECT id, username, password FROM users WHERE username = ?1",
            args![username],
            user_auth,
        )
    }

    pub fn require_user(&self, username: &str) -> Result<UserAuth> {
        self.user(username)?
            .ok_or_else(|| Error::not_found(format!("no user {username:?}")))
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<UserAuth>> {
        self.one(
            "SELECT id, username, password FROM users WHERE id = ?1",
            args![id],
            user_auth,
        )
    }

    pub fn set_password(&self, username: &str, password_hash: &str) -> Result<()> {
        if username == ANONYMOUS {
            return Err(Error::bad("\"anonymous\" cannot have a password"));
        }
        let user = self.require_user(username)?;
        self.exec(
            "UPDATE users SET password = ?2 WHERE id = ?1",
            args![user.id, password_hash],
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
        self.exec("DELETE FROM users WHERE id = ?1", args![user.id])?;
        // Nor does a deleted project give it back to a user made later
        // under the same name.
        self.forget_access_in_trash(username)
    }

    /// The projects a user has access to, by id.
    pub fn projects_of_user(&self, username: &str) -> Result<Vec<String>> {
        self.all(
            "SELECT pe.project_id FROM permissions pe JOIN users u ON u.id = pe.user_id
              WHERE u.username = ?1 ORDER BY pe.project_id",
            args![username],
            |r| r.string(0),
        )
    }

    pub fn list_users(&self) -> Result<Vec<UserSummary>> {
        let grants = match self.dialect() {
            Dialect::Sqlite => {
                "(SELECT group_concat(p.project_id || ' (' || p.level || ')', ', ')
                    FROM (SELECT * FROM permissions WHERE user_id = u.id ORDER BY project_id) p)"
            }
            Dialect::Postgres => {
                "(SELECT string_agg(p.project_id || ' (' || p.level || ')', ', ' ORDER BY p.project_id)
                    FROM permissions p WHERE p.user_id = u.id)"
            }
        };
        let sql = format!(
            "SELECT u.username, u.created, u.password, {grants} FROM users u ORDER BY u.username"
        );
        self.all(&sql, args![], |r| {
            Ok(UserSummary {
                username: r.string(0)?,
                created: r.string(1)?,
                can_log_in: !r.text(2)?.is_empty(),
                projects: r
                    .text_opt(3)?
                    .map(|p| p.split(", ").map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
    }
}

fn user_auth(r: &dyn Row) -> Result<UserAuth> {
    Ok(UserAuth {
        id: r.int(0)?,
        username: r.string(1)?,
        password_hash: r.string(2)?,
    })
}
