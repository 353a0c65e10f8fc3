//! Reads the original server's data: Django `dumpdata` JSON, a list of
//! `{"model", "pk", "fields"}` objects (SPEC 5), into a [`Fixture`].
//!
//! All Django files of one `loaddata` form one pool, as Django's own
//! `loaddata haggling permissions` does: a foreign key may point into
//! another file of the same load. Objects may come in any order. A foreign
//! key to a project may also name a project already in the database; every
//! other foreign key must point inside the pool.
//!
//! Mapping, besides the obvious:
//! * `auth.user`: the password hash is kept as it is (Django's
//!   `pbkdf2_sha256$...` verifies here); an inactive user is loaded with the
//!   hash disabled (`!` prefix), as Django would refuse the login. The user
//!   `anonymous` is our built-in anonymous user.
//! * `sumatra_server.projectpermission` has no level: `write`, and `read` for
//!   `anonymous` (a public project). A level already held is never lowered.
//! * A record's tags are its own `tags` field (django-tagging's
//!   space-or-comma string) together with the tagged items (`tagging.*` or
//!   the newer `django_store.tag`/`taggeditem`) whose `object_id` is its pk.
//! * Launch mode and datastore `parameters` and data key `metadata` stored as
//!   Python literals are read as data, never evaluated.
//! * Dependencies are ordered by name and data keys by path, as the
//!   original's models order them; platforms keep the dump's order.
//! * Objects of Django's own bookkeeping models (content types, sessions,
//!   admin log, auth permissions and groups, sites) are skipped and counted;
//!   any other unknown model is an error unless `ignore_unknown`.

use super::dump::{located, Fixture, Grant, GrantMode};
use crate::error::{Error, Result};
use crate::record;
use crate::store::{Level, Project, UserRecord, ANONYMOUS};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// One Django dump file, parsed as JSON.
pub struct Source {
    pub name: String,
    pub objects: Vec<Value>,
}

/// What the database already holds, for foreign keys that leave the pool.
pub trait Lookup {
    fn has_project(&self, id: &str) -> Result<bool>;
    fn has_user(&self, username: &str) -> Result<bool>;
}

/// Models whose objects we skip without being asked: Django's bookkeeping.
const BOOKKEEPING: [&str; 7] = [
    "contenttypes.contenttype",
    "sessions.session",
    "admin.logentry",
    "auth.permission",
    "auth.group",
    "sites.site",
    "django_migrations.migration",
];

const USER: &str = "auth.user";
const PERMISSION: &str = "sumatra_server.projectpermission";
const PROJECT: &str = "django_store.project";
const RECORD: &str = "django_store.record";
const EXECUTABLE: &str = "django_store.executable";
const DEPENDENCY: &str = "django_store.dependency";
const REPOSITORY: &str = "django_store.repository";
const PARAMETERSET: &str = "django_store.parameterset";
const LAUNCHMODE: &str = "django_store.launchmode";
const DATASTORE: &str = "django_store.datastore";
const DATAKEY: &str = "django_store.datakey";
const PLATFORM: &str = "django_store.platforminformation";
const CONTENTTYPE: &str = "contenttypes.contenttype";
/// (tag model, tagged item model) pairs: django-tagging, then Sumatra's own copy.
const TAGGING: [(&str, &str); 2] = [
    ("tagging.tag", "tagging.taggeditem"),
    ("django_store.tag", "django_store.taggeditem"),
];

const KNOWN: [&str; 12] = [
    USER,
    PERMISSION,
    PROJECT,
    RECORD,
    EXECUTABLE,
    DEPENDENCY,
    REPOSITORY,
    PARAMETERSET,
    LAUNCHMODE,
    DATASTORE,
    DATAKEY,
    PLATFORM,
];

fn is_known(model: &str) -> bool {
    KNOWN.contains(&model) || TAGGING.iter().any(|(t, i)| *t == model || *i == model)
}

/// A primary key: integers sort before strings, each in their own order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pk {
    Int(i64),
    Str(String),
}

impl Pk {
    fn from_value(v: &Value) -> Option<Pk> {
        match v {
            Value::Number(n) => n.as_i64().map(Pk::Int),
            Value::String(s) => Some(Pk::Str(s.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for Pk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pk::Int(i) => write!(f, "{i}"),
            Pk::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One object of the dump, with where it came from.
struct Obj {
    src: usize,
    index: usize,
    model: String,
    pk: Option<Pk>,
    fields: Map<String, Value>,
}

/// Where an object is, for error messages: `file: objects[3] (model pk 5)`.
struct At<'a> {
    names: &'a [String],
    obj: &'a Obj,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.obj;
        let name = self.names.get(o.src).map_or("?", String::as_str);
        write!(f, "{name}: objects[{}] ({}", o.index, o.model)?;
        match &o.pk {
            Some(pk) => write!(f, " pk {pk})"),
            None => write!(f, ")"),
        }
    }
}

/// The pool of every Django object of a load, by model and pk.
struct Pool {
    names: Vec<String>,
    by_model: HashMap<String, BTreeMap<Pk, Obj>>,
    /// Objects without a pk (natural primary keys): users only matter.
    unkeyed_users: Vec<Obj>,
    skipped: BTreeMap<String, usize>,
    /// Objects of models we do not know: how many, and where the first is.
    unknown: BTreeMap<String, (usize, String)>,
}

impl Pool {
    fn at<'a>(&'a self, obj: &'a Obj) -> At<'a> {
        At {
            names: &self.names,
            obj,
        }
    }

    fn err(&self, obj: &Obj, msg: impl fmt::Display) -> Error {
        Error::BadRequest(format!("{}: {msg}", self.at(obj)))
    }

    fn objects(&self, model: &str) -> impl Iterator<Item = &Obj> {
        self.by_model
            .get(model)
            .into_iter()
            .flat_map(|m| m.values())
    }

    fn get(&self, model: &str, pk: &Pk) -> Option<&Obj> {
        self.by_model.get(model).and_then(|m| m.get(pk))
    }
}

/// Reads the Django files of one load into what to apply.
pub fn read(sources: Vec<Source>, lookup: &dyn Lookup, ignore_unknown: bool) -> Result<Fixture> {
    let pool = build_pool(sources)?;
    if let Some((model, (n, first))) = pool.unknown.iter().next().filter(|_| !ignore_unknown) {
        return Err(Error::BadRequest(format!(
            "{first}: {model:?} is not a model sumatra-server knows ({n} object(s) of it); \
             use --ignore-unknown to skip such objects"
        )));
    }
    let mut fx = Fixture::default();
    let users = read_users(&pool, &mut fx)?;
    read_projects(&pool, &mut fx)?;
    read_permissions(&pool, &users, lookup, &mut fx)?;
    let (tags, orphans) = read_tags(&pool)?;
    if orphans > 0 {
        // Django's tagged items are generic relations: deleting a record
        // leaves its tagged items behind (SPEC 5).
        fx.notes.push(format!(
            "skipped {orphans} tagged item(s) of records that are not in the data \
             (left behind by records deleted in the original server)"
        ));
    }
    read_records(&pool, &tags, lookup, &mut fx)?;
    report_skipped(&pool, &mut fx);
    Ok(fx)
}

fn report_skipped(pool: &Pool, fx: &mut Fixture) {
    let list = |m: &mut dyn Iterator<Item = (&String, usize)>| {
        m.map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !pool.skipped.is_empty() {
        let skipped = list(&mut pool.skipped.iter().map(|(k, n)| (k, *n)));
        fx.notes
            .push(format!("skipped Django's own objects: {skipped}"));
    }
    if !pool.unknown.is_empty() {
        let unknown = list(&mut pool.unknown.iter().map(|(k, (n, _))| (k, *n)));
        fx.notes
            .push(format!("skipped objects of unknown models: {unknown}"));
    }
}

// ------------------------------------------------------------ the pool

fn build_pool(sources: Vec<Source>) -> Result<Pool> {
    let mut pool = Pool {
        names: sources.iter().map(|s| s.name.clone()).collect(),
        by_model: HashMap::new(),
        unkeyed_users: Vec::new(),
        skipped: BTreeMap::new(),
        unknown: BTreeMap::new(),
    };
    for (src, source) in sources.into_iter().enumerate() {
        for (index, item) in source.objects.into_iter().enumerate() {
            add_object(&mut pool, src, &source.name, index, item)?;
        }
    }
    Ok(pool)
}

fn add_object(pool: &mut Pool, src: usize, name: &str, index: usize, item: Value) -> Result<()> {
    let at = format!("{name}: objects[{index}]");
    let Value::Object(mut m) = item else {
        return Err(Error::BadRequest(format!(
            "{at}: expected an object with model, pk and fields"
        )));
    };
    let model = match m.remove("model") {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        _ => {
            return Err(Error::BadRequest(format!(
                "{at}: model: expected a string such as \"django_store.record\""
            )))
        }
    };
    let fields = match m.remove("fields") {
        Some(Value::Object(f)) => f,
        _ => {
            return Err(Error::BadRequest(format!(
                "{at} ({model}): fields: expected an object"
            )))
        }
    };
    let pk = match m.get("pk") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Pk::from_value(v).ok_or_else(|| {
            Error::BadRequest(format!(
                "{at} ({model}): pk: expected an integer or a string, got {v}"
            ))
        })?),
    };
    let is_bookkeeping = BOOKKEEPING.contains(&model.as_str());
    if is_bookkeeping {
        *pool.skipped.entry(model.clone()).or_default() += 1;
        if model != CONTENTTYPE {
            return Ok(());
        }
    } else if !is_known(&model) {
        pool.unknown.entry(model).or_insert_with(|| (0, at)).0 += 1;
        return Ok(());
    }
    let obj = Obj {
        src,
        index,
        model: model.clone(),
        pk: pk.clone(),
        fields,
    };
    let Some(pk) = pk else {
        if model == USER {
            pool.unkeyed_users.push(obj);
            return Ok(());
        }
        if is_bookkeeping {
            return Ok(());
        }
        return Err(Error::BadRequest(format!("{at} ({model}): pk: missing")));
    };
    let same = pool.by_model.entry(model).or_default();
    if let Some(old) = same.get(&pk) {
        if old.src == src {
            let first = old.index;
            return Err(Error::BadRequest(format!(
                "{at} ({} pk {pk}): the same pk as objects[{first}]",
                obj.model
            )));
        }
    }
    // A later file replaces an object of an earlier one, as Django's loaddata does.
    same.insert(pk, obj);
    Ok(())
}

// ------------------------------------------------------------ fields

impl Pool {
    /// A string field: `None` when missing or null.
    fn opt_str(&self, o: &Obj, field: &str) -> Result<Option<String>> {
        match o.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(o, format!("field {field}: expected a string, got {v}"))),
        }
    }

    fn req_str(&self, o: &Obj, field: &str) -> Result<String> {
        self.opt_str(o, field)?
            .ok_or_else(|| self.err(o, format!("field {field}: missing")))
    }

    /// Copies string fields (null when missing) into a JSON object.
    fn strings(&self, o: &Obj, fields: &[&str]) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        for f in fields {
            m.insert(
                (*f).to_string(),
                self.opt_str(o, f)?.map_or(Value::Null, Value::String),
            );
        }
        Ok(m)
    }

    /// A foreign key to `target`, resolved in the pool.
    fn fk(&self, o: &Obj, field: &str, target: &str) -> Result<Option<&Obj>> {
        match o.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.resolve(o, field, v, target).map(Some),
        }
    }

    fn req_fk(&self, o: &Obj, field: &str, target: &str) -> Result<&Obj> {
        self.fk(o, field, target)?
            .ok_or_else(|| self.err(o, format!("field {field}: missing")))
    }

    fn resolve(&self, o: &Obj, field: &str, v: &Value, target: &str) -> Result<&Obj> {
        let pk = Pk::from_value(v).ok_or_else(|| {
            self.err(
                o,
                format!("field {field}: expected the pk of a {target}, got {v}"),
            )
        })?;
        self.get(target, &pk).ok_or_else(|| {
            self.err(
                o,
                format!("field {field}: no {target} with pk {pk} in the data loaded"),
            )
        })
    }

    /// A many-to-many field: a list of pks of `target`.
    fn m2m(&self, o: &Obj, field: &str, target: &str) -> Result<Vec<&Obj>> {
        match o.fields.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| self.resolve(o, field, v, target))
                .collect(),
            Some(v) => Err(self.err(o, format!("field {field}: expected a list of pks, got {v}"))),
        }
    }

    /// Python-literal (or JSON) parameters/metadata as a JSON object.
    fn literal_object(&self, o: &Obj, field: &str) -> Result<Value> {
        match o.fields.get(field) {
            None | Some(Value::Null) => Ok(Value::Object(Map::new())),
            Some(Value::Object(m)) => Ok(Value::Object(m.clone())),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(Value::Object(Map::new())),
            Some(Value::String(s)) => match crate::record::pyliteral::parse(s) {
                Ok(v @ Value::Object(_)) => Ok(v),
                Ok(_) => Err(self.err(
                    o,
                    format!("field {field}: expected a dict literal, got {s:?}"),
                )),
                Err(e) => Err(self.err(o, format!("field {field}: {e}"))),
            },
            Some(v) => Err(self.err(
                o,
                format!("field {field}: expected a dict literal, got {v}"),
            )),
        }
    }

    fn timestamp(&self, o: &Obj, field: &str) -> Result<Option<String>> {
        self.opt_str(o, field)?
            .map(|t| {
                crate::record::timefmt::normalise(&t)
                    .map_err(|e| self.err(o, format!("field {field}: {e}")))
            })
            .transpose()
    }
}

// ------------------------------------------------------------ users, projects, permissions

/// Reads users; returns the user name of every user pk.
fn read_users(pool: &Pool, fx: &mut Fixture) -> Result<HashMap<Pk, String>> {
    let mut names = HashMap::new();
    let mut seen = BTreeSet::new();
    for o in pool.objects(USER).chain(pool.unkeyed_users.iter()) {
        let username = pool.req_str(o, "username")?;
        crate::store::check_username(&username).map_err(|e| located(e, pool.at(o)))?;
        if !seen.insert(username.clone()) {
            return Err(pool.err(o, format!("user {username:?} appears twice")));
        }
        if let Some(pk) = &o.pk {
            names.insert(pk.clone(), username.clone());
        }
        if username == ANONYMOUS {
            continue;
        }
        let mut password = pool.opt_str(o, "password")?.unwrap_or_default();
        if !crate::password::is_known_format(&password) {
            fx.notes.push(format!(
                "user {username} has a password hash this server cannot check; set one with `passwd {username}`"
            ));
        }
        if o.fields.get("is_active") == Some(&Value::Bool(false)) && !password.starts_with('!') {
            password.insert(0, '!');
            fx.notes.push(format!(
                "user {username} is inactive in the dump: loaded unable to log in"
            ));
        }
        fx.users.push(UserRecord {
            username,
            password,
            email: pool.opt_str(o, "email")?.unwrap_or_default(),
            created: pool
                .timestamp(o, "date_joined")?
                .unwrap_or_else(crate::record::timefmt::now),
        });
    }
    Ok(names)
}

fn read_projects(pool: &Pool, fx: &mut Fixture) -> Result<()> {
    for o in pool.objects(PROJECT) {
        let Some(Pk::Str(id)) = &o.pk else {
            return Err(pool.err(o, "a project's pk is its id, a string"));
        };
        crate::record::check_project_id(id).map_err(|e| pool.err(o, e))?;
        fx.projects.push(Project {
            id: id.clone(),
            name: pool.opt_str(o, "name")?.unwrap_or_default(),
            description: pool.opt_str(o, "description")?.unwrap_or_default(),
        });
    }
    Ok(())
}

/// A project foreign key: a project of the pool, or one already in the database.
fn project_ref(pool: &Pool, o: &Obj, field: &str, lookup: &dyn Lookup) -> Result<Option<String>> {
    let id = match o.fields.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) => id.clone(),
        Some(Value::Array(key)) if key.len() == 1 && key[0].is_string() => {
            key[0].as_str().unwrap_or_default().to_string()
        }
        Some(v) => {
            return Err(pool.err(o, format!("field {field}: expected a project id, got {v}")))
        }
    };
    if pool.get(PROJECT, &Pk::Str(id.clone())).is_some() || lookup.has_project(&id)? {
        Ok(Some(id))
    } else {
        Err(pool.err(
            o,
            format!("field {field}: no project {id:?} in the data loaded or in the database"),
        ))
    }
}

/// A user foreign key: a pk of the pool, or a natural key `["name"]`.
fn user_ref(
    pool: &Pool,
    o: &Obj,
    users: &HashMap<Pk, String>,
    lookup: &dyn Lookup,
) -> Result<String> {
    let v = o
        .fields
        .get("user")
        .ok_or_else(|| pool.err(o, "field user: missing"))?;
    if let Some(name) = v.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
        let known = users.values().any(|u| u == name) || lookup.has_user(name)?;
        return if known {
            Ok(name.to_string())
        } else {
            Err(pool.err(
                o,
                format!("field user: no user {name:?} in the data loaded or in the database"),
            ))
        };
    }
    let pk = Pk::from_value(v)
        .ok_or_else(|| pool.err(o, format!("field user: expected a user pk, got {v}")))?;
    users.get(&pk).cloned().ok_or_else(|| {
        pool.err(
            o,
            format!("field user: no auth.user with pk {pk} in the data loaded"),
        )
    })
}

fn read_permissions(
    pool: &Pool,
    users: &HashMap<Pk, String>,
    lookup: &dyn Lookup,
    fx: &mut Fixture,
) -> Result<()> {
    for o in pool.objects(PERMISSION) {
        let project = project_ref(pool, o, "project", lookup)?
            .ok_or_else(|| pool.err(o, "field project: missing"))?;
        let user = user_ref(pool, o, users, lookup)?;
        let (level, mode) = match pool.opt_str(o, "level")? {
            Some(l) => (
                Level::parse(&l).map_err(|e| located(e, pool.at(o)))?,
                GrantMode::Exact,
            ),
            None if user == ANONYMOUS => (Level::Read, GrantMode::AtLeast),
            None => (Level::Write, GrantMode::AtLeast),
        };
        fx.grants.push(Grant {
            project,
            user,
            level,
            mode,
        });
    }
    Ok(())
}

// ------------------------------------------------------------ tags

/// Tags by record pk, from the tagged items of either tagging app, and how
/// many tagged items name a record that is not in the data (skipped).
fn read_tags(pool: &Pool) -> Result<(HashMap<Pk, BTreeSet<String>>, usize)> {
    let mut out: HashMap<Pk, BTreeSet<String>> = HashMap::new();
    let mut orphans = 0;
    for (tag_model, item_model) in TAGGING {
        for item in pool.objects(item_model) {
            if !tags_a_record(pool, item)? {
                continue;
            }
            let tag = pool.req_fk(item, "tag", tag_model)?;
            let name = pool.req_str(tag, "name")?;
            let object = item
                .fields
                .get("object_id")
                .ok_or_else(|| pool.err(item, "field object_id: missing"))?;
            let pk = match object {
                Value::String(s) => s.trim().parse().ok().map(Pk::Int),
                v => Pk::from_value(v),
            }
            .ok_or_else(|| {
                pool.err(
                    item,
                    format!("field object_id: expected a record pk, got {object}"),
                )
            })?;
            if pool.get(RECORD, &pk).is_none() {
                orphans += 1;
                continue;
            }
            out.entry(pk).or_default().insert(name);
        }
    }
    Ok((out, orphans))
}

/// Does a tagged item's content type name the record model? Without the
/// content types in the dump, it is taken to (Sumatra tags records only).
fn tags_a_record(pool: &Pool, item: &Obj) -> Result<bool> {
    let is_record =
        |app: &str, model: &str| app == "django_store" && model.eq_ignore_ascii_case("record");
    match item.fields.get("content_type") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Array(key)) => {
            let app = key.first().and_then(Value::as_str).unwrap_or_default();
            let model = key.get(1).and_then(Value::as_str).unwrap_or_default();
            Ok(is_record(app, model))
        }
        Some(v) => {
            let pk = Pk::from_value(v)
                .ok_or_else(|| pool.err(item, format!("field content_type: got {v}")))?;
            match pool.get(CONTENTTYPE, &pk) {
                None => Ok(true),
                Some(ct) => Ok(is_record(
                    &pool.opt_str(ct, "app_label")?.unwrap_or_default(),
                    &pool.opt_str(ct, "model")?.unwrap_or_default(),
                )),
            }
        }
    }
}

/// django-tagging's `parse_tag_input`: split on commas when there are any
/// (outside double quotes), else on spaces; double quotes group words.
pub fn parse_tag_input(input: &str) -> Vec<String> {
    if !input.contains([',', '"']) {
        return sorted(
            input
                .split(' ')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    let mut words = Vec::new();
    let mut to_split = Vec::new();
    let mut buffer = String::new();
    let mut loose_comma = false;
    let mut open_quote = false;
    let mut chars = input.chars();
    'input: while let Some(c) = chars.next() {
        if c != '"' {
            loose_comma |= c == ',';
            buffer.push(c);
            continue;
        }
        if !buffer.is_empty() {
            to_split.push(std::mem::take(&mut buffer));
        }
        open_quote = true;
        loop {
            match chars.next() {
                None => break 'input,
                Some('"') => break,
                Some(q) => buffer.push(q),
            }
        }
        let word = buffer.trim();
        if !word.is_empty() {
            words.push(word.to_string());
        }
        buffer.clear();
        open_quote = false;
    }
    if !buffer.is_empty() {
        loose_comma |= open_quote && buffer.contains(',');
        to_split.push(buffer);
    }
    let delimiter = if loose_comma { ',' } else { ' ' };
    for chunk in &to_split {
        words.extend(
            chunk
                .split(delimiter)
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from),
        );
    }
    sorted(words)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

// ------------------------------------------------------------ records

fn read_records(
    pool: &Pool,
    tags: &HashMap<Pk, BTreeSet<String>>,
    lookup: &dyn Lookup,
    fx: &mut Fixture,
) -> Result<()> {
    let outputs = outputs_by_record(pool)?;
    let mut labels: HashMap<(String, String), &Obj> = HashMap::new();
    for o in pool.objects(RECORD) {
        let project = project_ref(pool, o, "project", lookup)?.ok_or_else(|| {
            pool.err(
                o,
                "field project: missing (a record must belong to a project)",
            )
        })?;
        let pk = o.pk.clone().ok_or_else(|| pool.err(o, "pk: missing"))?;
        let mut value = record_value(pool, o)?;
        let mut all_tags: BTreeSet<String> =
            parse_tag_input(&pool.opt_str(o, "tags")?.unwrap_or_default())
                .into_iter()
                .collect();
        all_tags.extend(tags.get(&pk).into_iter().flatten().cloned());
        value.insert(
            "tags".into(),
            all_tags.into_iter().map(Value::String).collect(),
        );
        let mut keys: Vec<&Obj> = outputs.get(&pk).cloned().unwrap_or_default();
        value.insert("output_data".into(), datakeys(pool, &mut keys)?);
        let record =
            record::decode_value(Value::Object(value)).map_err(|e| located(e, pool.at(o)))?;
        if let Some(first) = labels.insert((project.clone(), record.label.clone()), o) {
            return Err(pool.err(
                o,
                format!(
                    "record {:?} appears twice in project {project:?} (also {})",
                    record.label,
                    pool.at(first)
                ),
            ));
        }
        fx.records.push((project, record));
    }
    Ok(())
}

/// Data keys by the pk of the record they are output of.
fn outputs_by_record(pool: &Pool) -> Result<HashMap<Pk, Vec<&Obj>>> {
    let mut out: HashMap<Pk, Vec<&Obj>> = HashMap::new();
    for key in pool.objects(DATAKEY) {
        if let Some(r) = pool.fk(key, "output_from_record", RECORD)? {
            if let Some(pk) = &r.pk {
                out.entry(pk.clone()).or_default().push(key);
            }
        }
    }
    Ok(out)
}

/// The record's own fields and the objects its foreign keys point to, in
/// the API's shape (tags and output data are added by the caller).
fn record_value(pool: &Pool, o: &Obj) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    m.insert("label".into(), Value::String(pool.req_str(o, "label")?));
    let ts = pool
        .timestamp(o, "timestamp")?
        .ok_or_else(|| pool.err(o, "field timestamp: missing"))?;
    m.insert("timestamp".into(), Value::String(ts));
    for f in [
        "reason",
        "main_file",
        "version",
        "script_arguments",
        "outcome",
        "stdout_stderr",
        "diff",
        "user",
        "repeats",
    ] {
        if o.fields.contains_key(f) {
            m.insert(
                f.into(),
                pool.opt_str(o, f)?.map_or(Value::Null, Value::String),
            );
        }
    }
    match o.fields.get("duration") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Number(_)) => {
            m.insert("duration".into(), v.clone());
        }
        Some(v) => return Err(pool.err(o, format!("field duration: expected a number, got {v}"))),
    }
    let exe = pool.fk(o, "executable", EXECUTABLE)?;
    m.insert(
        "executable".into(),
        optional_strings(pool, exe, &["path", "version", "name", "options"])?,
    );
    let repo = pool.fk(o, "repository", REPOSITORY)?;
    m.insert(
        "repository".into(),
        optional_strings(pool, repo, &["url", "type", "upstream"])?,
    );
    let params = pool.req_fk(o, "parameters", PARAMETERSET)?;
    m.insert(
        "parameters".into(),
        Value::Object(pool.strings(params, &["content", "type"])?),
    );
    m.insert(
        "launch_mode".into(),
        component(pool, pool.req_fk(o, "launch_mode", LAUNCHMODE)?)?,
    );
    m.insert(
        "datastore".into(),
        component(pool, pool.req_fk(o, "datastore", DATASTORE)?)?,
    );
    if let Some(ds) = pool.fk(o, "input_datastore", DATASTORE)? {
        m.insert("input_datastore".into(), component(pool, ds)?);
    }
    let mut inputs = pool.m2m(o, "input_data", DATAKEY)?;
    m.insert("input_data".into(), datakeys(pool, &mut inputs)?);
    let mut deps = pool.m2m(o, "dependencies", DEPENDENCY)?;
    deps.sort_by(|a, b| {
        name_of(a, "name")
            .cmp(name_of(b, "name"))
            .then_with(|| a.pk.cmp(&b.pk))
    });
    let deps: Vec<Value> = deps
        .into_iter()
        .map(|d| {
            pool.strings(d, &["name", "path", "version", "module", "diff", "source"])
                .map(Value::Object)
        })
        .collect::<Result<_>>()?;
    m.insert("dependencies".into(), Value::Array(deps));
    let platform_fields = [
        "system_name",
        "ip_addr",
        "architecture_bits",
        "machine",
        "architecture_linkage",
        "version",
        "release",
        "network_name",
        "processor",
    ];
    let platforms: Vec<Value> = pool
        .m2m(o, "platforms", PLATFORM)?
        .into_iter()
        .map(|p| pool.strings(p, &platform_fields).map(Value::Object))
        .collect::<Result<_>>()?;
    m.insert("platforms".into(), Value::Array(platforms));
    Ok(m)
}

fn name_of<'a>(o: &'a Obj, field: &str) -> &'a str {
    o.fields
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The string fields of an optional related object (all null without one).
fn optional_strings(pool: &Pool, o: Option<&Obj>, fields: &[&str]) -> Result<Value> {
    match o {
        Some(o) => pool.strings(o, fields).map(Value::Object),
        None => Ok(Value::Object(
            fields
                .iter()
                .map(|f| ((*f).to_string(), Value::Null))
                .collect(),
        )),
    }
}

fn component(pool: &Pool, o: &Obj) -> Result<Value> {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        pool.opt_str(o, "type")?.map_or(Value::Null, Value::String),
    );
    m.insert("parameters".into(), pool.literal_object(o, "parameters")?);
    Ok(Value::Object(m))
}

/// Data keys in the original's order (by path), as JSON.
fn datakeys(pool: &Pool, keys: &mut [&Obj]) -> Result<Value> {
    keys.sort_by(|a, b| {
        name_of(a, "path")
            .cmp(name_of(b, "path"))
            .then_with(|| a.pk.cmp(&b.pk))
    });
    let out: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut m = Map::new();
            m.insert("path".into(), Value::String(pool.req_str(k, "path")?));
            m.insert(
                "digest".into(),
                pool.opt_str(k, "digest")?
                    .map_or(Value::Null, Value::String),
            );
            m.insert(
                "creation".into(),
                pool.timestamp(k, "creation")?
                    .map_or(Value::Null, Value::String),
            );
            m.insert("metadata".into(), pool.literal_object(k, "metadata")?);
            Ok(Value::Object(m))
        })
        .collect::<Result<_>>()?;
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Empty;
    impl Lookup for Empty {
        fn has_project(&self, _: &str) -> Result<bool> {
            Ok(false)
        }
        fn has_user(&self, _: &str) -> Result<bool> {
            Ok(false)
        }
    }

    fn fixture(name: &str, text: &str) -> Source {
        let Value::Array(objects) = serde_json::from_str(text).unwrap() else {
            panic!("a list")
        };
        Source {
            name: name.into(),
            objects,
        }
    }

    fn both() -> Vec<Source> {
        vec![
            fixture("haggling", include_str!("../../fixtures/haggling.json")),
            fixture(
                "permissions",
                include_str!("../../fixtures/permissions.json"),
            ),
        ]
    }

    #[test]
    fn tag_strings_as_django_tagging_reads_them() {
        assert_eq!(parse_tag_input(""), Vec::<String>::new());
        assert_eq!(parse_tag_input("foobar"), vec!["foobar"]);
        assert_eq!(parse_tag_input("b a  b"), vec!["a", "b"]);
        assert_eq!(parse_tag_input("one two, three"), vec!["one two", "three"]);
        assert_eq!(parse_tag_input("\"a, b\" c d"), vec!["a, b", "c", "d"]);
        assert_eq!(parse_tag_input("\"open, quote"), vec!["open", "quote"]);
    }

    #[test]
    fn the_fixtures_read_as_the_original_serves_them() {
        let fx = read(both(), &Empty, false).unwrap();
        assert_eq!(fx.users.len(), 1);
        assert_eq!(fx.users[0].username, "testuser");
        assert!(fx.users[0].password.starts_with("pbkdf2_sha256$150000$"));
        assert_eq!(fx.projects.len(), 2);
        let grants: Vec<(&str, &str, Level)> = fx
            .grants
            .iter()
            .map(|g| (g.project.as_str(), g.user.as_str(), g.level))
            .collect();
        assert_eq!(
            grants,
            vec![
                ("TestProject", "testuser", Level::Write),
                ("TestProject2", "anonymous", Level::Read),
                ("TestProject2", "testuser", Level::Write)
            ]
        );
        assert_eq!(fx.records.len(), 5);
        let (project, h) = fx
            .records
            .iter()
            .find(|(_, r)| r.label == "haggling")
            .unwrap();
        assert_eq!(project, "TestProject");
        assert_eq!(h.tags, vec!["foobar"]);
        assert_eq!(h.output_data.len(), 2);
        assert_eq!(h.output_data[0].metadata["size"], 2500);
        assert!(h.output_data[0].metadata["mimetype"].is_null());
        assert_eq!(
            h.datastore.parameters["root"],
            "/Users/andrew/tmp/SumatraExample/Data"
        );
        assert_eq!(h.input_datastore.parameters["root"], "/");
        assert!(h.launch_mode.parameters.is_empty());
        assert_eq!(h.repository.upstream, None);
        let names: Vec<&str> = h
            .dependencies
            .iter()
            .map(|d| d.name.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            vec![
                "Carbon",
                "Finder",
                "StdSuites",
                "_builtinSuites",
                "numpy",
                "scipy"
            ]
        );
        assert!(h.dependencies.iter().all(|d| d.source.is_none()));
        assert_eq!(h.platforms[0].system_name.as_deref(), Some("Darwin"));
        assert_eq!(h.timestamp, "2011-10-13 17:25:07");
    }

    #[test]
    fn order_of_objects_does_not_matter() {
        let forward = read(both(), &Empty, false).unwrap();
        let mut reversed = both();
        reversed.reverse();
        for s in &mut reversed {
            s.objects.reverse();
        }
        let backward = read(reversed, &Empty, false).unwrap();
        assert_eq!(forward.records, backward.records);
        assert_eq!(forward.grants, backward.grants);
        assert_eq!(forward.users, backward.users);
    }

    #[test]
    fn errors_say_where() {
        let mut s = both();
        s[0].objects[0] =
            json!({"model": "django_store.project", "pk": "Other", "fields": {"name": "x"}});
        let e = read(s, &Empty, false).unwrap_err().to_string();
        assert!(
            e.contains("objects[") && e.contains("field project: no project \"TestProject\""),
            "{e}"
        );

        let mut s = both();
        let i = s[0]
            .objects
            .iter()
            .position(|o| o["model"] == "django_store.datastore")
            .unwrap();
        s[0].objects[i]["fields"]["parameters"] = json!("{'root': __import__('os')}");
        let e = read(s, &Empty, false).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "haggling: objects[{i}] (django_store.datastore pk 1): field parameters:"
            )),
            "{e}"
        );

        let mut s = both();
        s[1].objects
            .push(json!({"model": "blog.post", "pk": 1, "fields": {}}));
        let e = read(s, &Empty, false).unwrap_err().to_string();
        assert!(
            e.contains("\"blog.post\"") && e.contains("--ignore-unknown"),
            "{e}"
        );
        let mut s = both();
        s[1].objects
            .push(json!({"model": "blog.post", "pk": 1, "fields": {}}));
        s[1].objects
            .push(json!({"model": "sessions.session", "pk": "x", "fields": {}}));
        let fx = read(s, &Empty, true).unwrap();
        assert!(
            fx.notes.iter().any(|n| n.contains("1 blog.post")),
            "{:?}",
            fx.notes
        );
        assert!(
            fx.notes.iter().any(|n| n.contains("1 sessions.session")),
            "{:?}",
            fx.notes
        );

        let mut s = both();
        let i = s[0]
            .objects
            .iter()
            .position(|o| o["model"] == "django_store.record")
            .unwrap();
        s[0].objects[i]["fields"]["dependencies"] = json!([99]);
        let e = read(s, &Empty, false).unwrap_err().to_string();
        assert!(
            e.contains("field dependencies: no django_store.dependency with pk 99"),
            "{e}"
        );

        let mut s = both();
        let mut dup = s[0].objects[i].clone();
        dup["pk"] = json!(100);
        s[0].objects.push(dup);
        let e = read(s, &Empty, false).unwrap_err().to_string();
        assert!(e.contains("appears twice in project"), "{e}");
    }

    #[test]
    fn newer_tag_models_and_natural_keys() {
        let mut s = both();
        s[0].objects
            .retain(|o| !o["model"].as_str().unwrap().starts_with("tagging."));
        s[0].objects
            .push(json!({"model": "django_store.tag", "pk": 7, "fields": {"name": "new tag"}}));
        s[0].objects.push(json!({"model": "contenttypes.contenttype", "pk": 3, "fields": {"app_label": "django_store", "model": "record"}}));
        s[0].objects.push(
            json!({"model": "contenttypes.contenttype", "pk": 4, "fields": {"app_label": "auth", "model": "user"}}),
        );
        s[0].objects.push(json!({"model": "django_store.taggeditem", "pk": 1, "fields": {"tag": 7, "object_id": 2, "content_type": 3}}));
        s[0].objects.push(json!({"model": "django_store.taggeditem", "pk": 2, "fields": {"tag": 7, "object_id": 4, "content_type": 4}}));
        s[1].objects[2]["fields"]["user"] = json!(["testuser"]);
        let fx = read(s, &Empty, false).unwrap();
        let tagged: Vec<(&str, &Vec<String>)> = fx
            .records
            .iter()
            .filter(|(_, r)| !r.tags.is_empty())
            .map(|(_, r)| (r.label.as_str(), &r.tags))
            .collect();
        assert_eq!(tagged.len(), 2, "{tagged:?}");
        assert!(tagged.contains(&("20111013-172503", &vec!["new tag".to_string()])));
        assert!(tagged.contains(&("haggling", &vec!["foobar".to_string()])));
        assert_eq!(fx.grants[0].user, "testuser");
    }
}
