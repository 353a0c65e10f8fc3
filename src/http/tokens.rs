//! A user's own tokens on a project's page (SPEC 11.1): `?view=tokens`
//! lists them (every project's), makes one for this project (shown once,
//! with the ready `smt init --store` line) and revokes them. Only with the
//! password: a token never makes or ends tokens.

use super::api::{actor, authorize, base_url, Query};
use super::auth::Caller;
use super::{encode_segment, App};
use crate::error::{Error, Result};
use crate::store::{Level, NewToken, Project, Store};
use rouille::{Request, Response};
use serde_json::{json, Value};

/// What the page offers for `expires`.
const EXPIRIES: [(&str, &str); 4] = [
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("365d", "a year"),
    ("never", "never"),
];

fn signed_in_with_password(who: &Caller) -> Result<()> {
    match who {
        Caller::User(_) => Ok(()),
        Caller::Token(..) => Err(Error::Forbidden(
            "a token cannot see, make or end tokens: log in with the password".into(),
        )),
        Caller::Anonymous { .. } => Err(Error::Unauthorized),
    }
}

/// `P<project>/?view=tokens` (HTML): the caller's tokens.
pub fn tokens_view(app: &App, req: &Request, project: &str) -> Result<Response> {
    app.with_store(|store| {
        let (p, who, level) = authorize(app, store, req, project, Level::Read)?;
        signed_in_with_password(&who)?;
        page(app, store, req, &p, &who, level, None)
    })
}

/// POST `P<project>/` with `action=token-create` or `token-revoke`.
pub fn token_post(
    app: &App,
    req: &Request,
    store: &mut Store,
    p: &Project,
    who: &Caller,
    level: Level,
    f: &Query,
) -> Result<Response> {
    signed_in_with_password(who)?;
    let user = who.user().expect("signed in");
    let by = actor(who, req);
    match f.get("action") {
        Some("token-create") => {
            let wanted = match f.get("level").unwrap_or("write") {
                "read" => Level::Read,
                "write" => Level::Write,
                other => return Err(Error::bad(format!("level: read or write, not {other:?}"))),
            };
            let expires = crate::token::expiry(f.get("expires").unwrap_or("90d"))?;
            let name = f.get("name").unwrap_or("").trim().to_string();
            let token = crate::token::generate()?;
            let digest = crate::token::digest(&token);
            let id = store.write(|tx| {
                tx.create_token(
                    &NewToken {
                        user: &user.username,
                        project: &p.id,
                        level: wanted,
                        name: &name,
                        expires: expires.as_deref(),
                        digest: &digest,
                    },
                    &by,
                )
            })?;
            page(app, store, req, p, who, level, Some((id, token)))
        }
        Some("token-revoke") => {
            let id: i64 = f
                .get("id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Error::bad("id: the number of the token to revoke"))?;
            store.write(|tx| {
                let t = tx
                    .token(id)?
                    .filter(|t| t.user_id == user.id)
                    .ok_or_else(|| {
                        Error::not_found(format!("{} has no token {id}", user.username))
                    })?;
                tx.revoke_token(&t, &by)
            })?;
            Ok(Response::redirect_303(format!(
                "{}{}/?view=tokens",
                app.cfg.prefix,
                encode_segment(&p.id)
            )))
        }
        other => Err(Error::bad(format!(
            "action: token-create or token-revoke, not {other:?}"
        ))),
    }
}

fn page(
    app: &App,
    store: &Store,
    req: &Request,
    p: &Project,
    who: &Caller,
    level: Level,
    new: Option<(i64, String)>,
) -> Result<Response> {
    let user = who.user().expect("signed in");
    let tokens: Vec<Value> = store
        .read()
        .tokens(Some(&user.username))?
        .iter()
        .map(|t| {
            let mut j = t.to_json();
            j["project_url"] = json!(format!("{}{}/", app.cfg.prefix, encode_segment(&t.project)));
            j
        })
        .collect();
    let url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    // The store URL with the token as its password, for `smt init --store`.
    let base = base_url(app, req);
    let new = new.map(|(id, token)| {
        let store_url = match base.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}:{token}@{rest}", user.username),
            None => base.clone(),
        };
        json!({"id": id, "token": token, "smt_init": format!("smt init --store {store_url} {}", p.id)})
    });
    let status = if new.is_some() { 201 } else { 200 };
    let html = app.pages.render(
        "tokens",
        &json!({"title": format!("{} / tokens", p.display_name()), "prefix": app.cfg.prefix,
                "user": user.username, "project": {"id": p.id, "name": p.display_name(), "url": url},
                "tokens": tokens, "new": new, "can_make": level >= Level::Write,
                "expiries": EXPIRIES.iter().map(|(v, t)| json!({"value": v, "text": t, "default": *v == "90d"})).collect::<Vec<_>>()}),
    )?;
    // The new token is never cached: every answer carries `no-store`.
    Ok(Response::html(html).with_status_code(status))
}
