//! The data `loaddata` applies, whatever file it came from, and the JSON
//! that `export` writes and `loaddata` reads back (SPEC 5).
//!
//! Two shapes, both loadable:
//!
//! * **Records**: a JSON array of records in the API's form (SPEC 2.3, with
//!   `project_id`), oldest first, one record a line. This is what `smt export`
//!   writes (plus `project_id`), so `smt import` reads it too.
//! * **Document**: everything needed to rebuild projects in an empty database:
//!
//! ```text
//! {"sumatra_server_export": 1,
//!  "users": [{"username", "password", "email", "created"}, ...],      (--with-users only)
//!  "projects": [
//!   {"id", "name", "description",
//!    "access": [{"user", "level"}, ...],                              (--with-users only)
//!    "records": [RECORD, ...],
//!    "trash": [TRASHED, ...]}, ...],                                  (--with-trash)
//!  "deleted_projects": [                                              (--with-trash, all projects)
//!   {"id", "name", "description", "access", "created",
//!    "deleted_at", "deleted_by", "trash": [TRASHED, ...]}, ...],
//!  "tokens": [                                                        (--with-users, all projects)
//!   {"id", "user", "project", "level", "name", "digest", "created", "expires",
//!    "last_used", "last_address"}, ...],
//!  "history": [                                                       (--with-users, all projects)
//!   {"at", "actor", "address", "project", "action", "target", "detail"}, ...]}
//! ```
//!
//! `TRASHED` is `{"deleted_at", "deleted_by", "how", "record": RECORD}`, the
//! record as it was stored. A whole-store export (`--with-users`) carries
//! the trash, the tokens (their SHA-256, never a token) and the history too
//! (SPEC 10.3), so a move between backends loses none of them.
//!
//! Users are sorted by name (the built-in `anonymous` is never written),
//! projects by id, access in the order it was granted, records oldest first,
//! the trash in the order it was filled, the history oldest first:
//! exporting what was loaded from an export into an empty database gives
//! the same bytes.
//!
//! Both shapes are read as a stream ([`stream`]): each project and record
//! goes to a [`Sink`] as soon as it is read, so memory stays flat whatever
//! the number of records. Keys may come in any order; users and access are
//! kept for the end of the file (grants need their users). Only records
//! that come before their project's `id` wait for the project's end.

use crate::error::{Error, Result};
use crate::record::{self, Record};
use crate::store::{KeptEntry, KeptProject, KeptRecord, Level, Project, TokenRow, Tx, UserRecord};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Display};
use std::io::Write;

/// The key that marks an export document, and its value (the format version).
pub const FORMAT_KEY: &str = "sumatra_server_export";
pub const FORMAT_VERSION: u64 = 1;

/// How a grant read from a file meets a level already held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    /// Set exactly this level (export documents say what the level was).
    Exact,
    /// Raise to this level, never lower (Django dumps have no levels).
    AtLeast,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub project: String,
    pub user: String,
    pub level: Level,
    pub mode: GrantMode,
}

/// What one load applies, in this order: users, projects, grants, records
/// (a Django dump; a streamed file of ours leaves only users and grants here).
#[derive(Debug, Default)]
pub struct Fixture {
    pub users: Vec<UserRecord>,
    pub projects: Vec<Project>,
    pub grants: Vec<Grant>,
    /// Records with their project id.
    pub records: Vec<(String, Record)>,
    /// Projects that records or grants name and that may be created empty
    /// when missing (a list of records says no more about its projects).
    pub implied_projects: Vec<String>,
    /// Things the operator should know (skipped objects, unusable hashes).
    pub notes: Vec<String>,
    pub trash: Vec<KeptRecord>,
    pub deleted_projects: Vec<KeptProject>,
    pub history: Vec<KeptEntry>,
    /// Tokens (digests), applied after users and projects.
    pub tokens: Vec<TokenRow>,
}

/// Prefixes a bad-input error with where it happened.
pub fn located(e: Error, at: impl Display) -> Error {
    match e {
        Error::BadRequest(m) => Error::BadRequest(format!("{at}: {m}")),
        other => other,
    }
}

fn bad(at: impl Display, msg: impl Display) -> Error {
    Error::BadRequest(format!("{at}: {msg}"))
}

// ---------------------------------------------------------------- reading

/// Receives what one of our files holds as it is read: `loaddata` applies
/// each part at once, so memory stays flat whatever the number of records.
pub trait Sink {
    /// A project of a document, before its records, as read so far.
    fn open_project(&mut self, p: &Project) -> Result<()>;
    /// The same project when its object ends, as it finally reads (name or
    /// description differ from the opening only when they follow the records).
    fn close_project(&mut self, p: &Project) -> Result<()>;
    /// A project that a list of records names, the first time it does.
    fn implied_project(&mut self, id: &str) -> Result<()>;
    /// One record of a project already opened or implied.
    fn record(&mut self, project: &str, record: Record) -> Result<()>;
    /// A record of the trash (of a project of the document, live or deleted).
    fn trashed(&mut self, record: KeptRecord) -> Result<()>;
    /// A deleted project, after its trash.
    fn deleted_project(&mut self, project: KeptProject) -> Result<()>;
    /// The file carries a history (its entries follow).
    fn history_begins(&mut self) {}
    /// An entry of the history, oldest first.
    fn history(&mut self, entry: KeptEntry) -> Result<()>;
}

/// Collecting everything: a whole file at once (tests, small files).
impl Sink for Fixture {
    fn open_project(&mut self, _: &Project) -> Result<()> {
        Ok(())
    }
    fn close_project(&mut self, p: &Project) -> Result<()> {
        self.projects.push(p.clone());
        Ok(())
    }
    fn implied_project(&mut self, id: &str) -> Result<()> {
        self.implied_projects.push(id.to_string());
        Ok(())
    }
    fn record(&mut self, project: &str, record: Record) -> Result<()> {
        self.records.push((project.to_string(), record));
        Ok(())
    }
    fn trashed(&mut self, record: KeptRecord) -> Result<()> {
        self.trash.push(record);
        Ok(())
    }
    fn deleted_project(&mut self, project: KeptProject) -> Result<()> {
        self.deleted_projects.push(project);
        Ok(())
    }
    fn history(&mut self, entry: KeptEntry) -> Result<()> {
        self.history.push(entry);
        Ok(())
    }
}

/// What a file holds, judged from its start.
#[derive(Debug)]
pub enum Shape {
    /// A Django dump, read whole: its objects refer to each other in any order.
    Django(Vec<Value>),
    /// One of ours (a list of records or an export document): to be streamed.
    Ours,
}

/// The error for a file that is neither a Django dump nor one of ours.
pub fn neither(src: &str) -> Error {
    bad(
        src,
        "neither a Django dump (a list of objects with model, pk and fields) \
         nor a file written by `sumatra-server export`",
    )
}

/// Tells a Django dump (read whole) from one of our files, reading no
/// further than the first element of a list.
pub fn shape<'de, R: serde_json::de::Read<'de>>(
    src: &str,
    mut de: serde_json::Deserializer<R>,
) -> Result<Shape> {
    let mut ours = false;
    let read = (&mut de).deserialize_any(Sniff(&mut ours));
    if ours {
        return Ok(Shape::Ours);
    }
    read.and_then(|shape| de.end().map(|()| shape))
        .map_err(|e| json_error(src, &Place::default(), e))?
        .ok_or_else(|| neither(src))
}

/// Reads one of our files (either shape), handing projects and records to
/// `sink` as they come; returns what has to wait for the end of the file
/// (users and access: grants need their users, which may come last).
pub fn stream<'de, R: serde_json::de::Read<'de>>(
    src: &str,
    mut de: serde_json::Deserializer<R>,
    sink: &mut dyn Sink,
) -> Result<Fixture> {
    let mut st = Stream {
        src,
        sink,
        rest: Fixture::default(),
        failed: None,
        place: Place::default(),
        ids: HashSet::new(),
    };
    let read = (&mut de)
        .deserialize_any(Top(&mut st))
        .and_then(|()| de.end());
    match read {
        Ok(()) => Ok(st.rest),
        Err(e) => Err(st
            .failed
            .take()
            .unwrap_or_else(|| json_error(src, &st.place, e))),
    }
}

type De<T, E> = std::result::Result<T, E>;

/// Where the reader is (`projects[2] (project "P"): records[7]`), for
/// errors in the JSON itself.
#[derive(Debug, Default)]
struct Place {
    at: String,
    index: Option<usize>,
}

impl Place {
    fn new(at: impl Into<String>) -> Place {
        Place {
            at: at.into(),
            index: None,
        }
    }
}

impl Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.at)?;
        match self.index {
            Some(i) => write!(f, "[{i}]"),
            None => Ok(()),
        }
    }
}

fn json_error(src: &str, place: &Place, e: serde_json::Error) -> Error {
    use serde_json::error::Category;
    let at = match place.at.is_empty() {
        true => String::new(),
        false => format!(": {place}"),
    };
    Error::BadRequest(match e.classify() {
        Category::Io => format!("cannot read {src}{at}: {e}"),
        Category::Data => format!("{src}{at}: {e}"),
        Category::Syntax | Category::Eof => format!("{src}{at}: not valid JSON ({e})"),
    })
}

/// Looks at the first element of a list (reading the rest only for a
/// Django dump); sets the flag when the file is one of ours, and stops.
struct Sniff<'a>(&'a mut bool);

impl<'de> Visitor<'de> for Sniff<'_> {
    type Value = Option<Shape>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> De<Self::Value, A::Error> {
        *self.0 = true;
        Err(de::Error::custom("an export document"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> De<Self::Value, A::Error> {
        let Some(first) = seq.next_element::<Value>()? else {
            return Ok(Some(Shape::Django(Vec::new())));
        };
        if first.get("model").is_none() {
            *self.0 = true;
            return Err(de::Error::custom("a list of records"));
        }
        let mut objects = vec![first];
        while let Some(o) = seq.next_element()? {
            objects.push(o);
        }
        Ok(Some(Shape::Django(objects)))
    }

    fn visit_bool<E>(self, _: bool) -> De<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> De<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> De<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> De<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> De<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> De<Self::Value, E> {
        Ok(None)
    }
}

/// The state of one streamed file, shared by the visitors below.
struct Stream<'a> {
    src: &'a str,
    sink: &'a mut dyn Sink,
    /// What waits for the end of the file: users and access.
    rest: Fixture,
    /// Our own error, carried out through serde's (which only says "stopped").
    failed: Option<Error>,
    place: Place,
    /// The ids of the document's projects so far.
    ids: HashSet<String>,
}

impl Stream<'_> {
    /// Our result, turned into serde's: an error is kept to be returned as it is.
    fn check<T, E: de::Error>(&mut self, r: Result<T>) -> De<T, E> {
        r.map_err(|e| {
            self.failed = Some(e);
            E::custom("stopped")
        })
    }

    /// One element of a list of records.
    fn list_record(
        &mut self,
        i: usize,
        item: Value,
        labels: &mut HashMap<String, HashSet<String>>,
    ) -> Result<()> {
        let at = RecordAt {
            src: self.src,
            project: None,
            index: i,
        };
        let project = match item.get("project_id") {
            Some(Value::String(p)) => p.clone(),
            Some(_) => return Err(bad(&at, "project_id: expected a string")),
            None => {
                return Err(bad(
                    &at,
                    "no project_id: each record of a list must name its project \
                     (`sumatra-server export PROJECT` writes it; `smt export` does not)",
                ))
            }
        };
        crate::record::check_project_id(&project)
            .map_err(|e| bad(&at, format!("project_id: {e}")))?;
        let record = read_record(&at, item)?;
        if !labels.contains_key(&project) {
            self.sink
                .implied_project(&project)
                .map_err(|e| located(e, &at))?;
            labels.insert(project.clone(), HashSet::new());
        }
        let seen = labels.get_mut(&project).expect("inserted above");
        if !seen.insert(record.label.clone()) {
            return Err(bad(
                &at,
                format!(
                    "record {:?} appears twice in project {project:?}",
                    record.label
                ),
            ));
        }
        self.sink
            .record(&project, record)
            .map_err(|e| located(e, &at))
    }

    /// The project's id has just been read: check it.
    fn named(&mut self, p: &mut ProjectRead) -> Result<()> {
        let at = format!("{}: {}", self.src, p.at);
        if p.id.is_some() {
            return Err(bad(&at, "id: given twice"));
        }
        let id = str_field(&at, &p.head, "id")?.ok_or_else(|| bad(&at, "id: missing"))?;
        crate::record::check_project_id(&id).map_err(|e| bad(&at, format!("id: {e}")))?;
        if !self.ids.insert(id.clone()) {
            return Err(bad(&at, format!("project {id:?} appears twice")));
        }
        p.at = format!("{} (project {id:?})", p.at);
        self.place = Place::new(p.at.clone());
        p.id = Some(id);
        Ok(())
    }

    /// The project as read so far.
    fn project(&self, p: &ProjectRead) -> Result<Project> {
        let at = format!("{}: {}", self.src, p.at);
        Ok(Project {
            id: p.id.clone().ok_or_else(|| bad(&at, "id: missing"))?,
            name: str_field(&at, &p.head, "name")?.unwrap_or_default(),
            description: str_field(&at, &p.head, "description")?.unwrap_or_default(),
        })
    }

    /// Hands the project to the sink, before its records.
    fn open(&mut self, p: &mut ProjectRead) -> Result<()> {
        let project = self.project(p)?;
        self.sink
            .open_project(&project)
            .map_err(|e| located(e, format!("{}: {}", self.src, p.at)))?;
        p.opened = Some(project);
        Ok(())
    }

    /// Record `j` of an opened project.
    fn doc_record(&mut self, p: &mut ProjectRead, j: usize, r: Value) -> Result<()> {
        let id = &p.opened.as_ref().expect("the project is opened").id;
        let rat = RecordAt {
            src: self.src,
            project: Some(&p.at),
            index: j,
        };
        match r.get("project_id") {
            None => {}
            Some(Value::String(pid)) if pid == id => {}
            Some(other) => {
                return Err(bad(
                    &rat,
                    format!("project_id {other} differs from the project {id:?}"),
                ))
            }
        }
        let record = read_record(&rat, r)?;
        if !p.labels.insert(record.label.clone()) {
            return Err(bad(
                &rat,
                format!("record {:?} appears twice in project {id:?}", record.label),
            ));
        }
        self.sink.record(id, record).map_err(|e| located(e, &rat))
    }

    /// The project's object has ended.
    fn finish(&mut self, mut p: ProjectRead) -> Result<()> {
        let project = self.project(&p)?;
        if p.opened.is_none() {
            self.open(&mut p)?;
        }
        for (j, r) in std::mem::take(&mut p.waiting) {
            self.doc_record(&mut p, j, r)?;
        }
        let at = format!("{}: {}", self.src, p.at);
        self.sink
            .close_project(&project)
            .map_err(|e| located(e, &at))?;
        if let Some(access) = p.head.remove("access") {
            read_access(&at, &project.id, access, &mut self.rest)?;
        }
        match p.head.remove("trash") {
            None => {}
            Some(Value::Array(trash)) => {
                for (i, v) in trash.into_iter().enumerate() {
                    let here = format!("{at}: trash[{i}]");
                    let k = read_trashed(&here, &project.id, v)?;
                    self.sink.trashed(k).map_err(|e| located(e, &here))?;
                }
            }
            Some(_) => return Err(bad(&at, "trash: expected a list")),
        }
        Ok(())
    }
}

/// Where a record is (`file: projects[0] (project "P"): records[7]`), put
/// into words only for an error.
struct RecordAt<'a> {
    src: &'a str,
    project: Option<&'a str>,
    index: usize,
}

impl Display for RecordAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.src)?;
        if let Some(p) = self.project {
            write!(f, ": {p}")?;
        }
        write!(f, ": records[{}]", self.index)
    }
}

/// A project of a document while its object is read.
struct ProjectRead {
    /// `projects[2]`, then `projects[2] (project "P")` once the id is known.
    at: String,
    /// Everything but the records.
    head: Map<String, Value>,
    id: Option<String>,
    /// The project as handed to the sink before its records.
    opened: Option<Project>,
    /// Records that came before the id, applied when the object ends.
    waiting: Vec<(usize, Value)>,
    labels: HashSet<String>,
    /// The index of the next record.
    next: usize,
}

/// The whole file: a list of records, or an export document.
struct Top<'s, 'a>(&'s mut Stream<'a>);

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of records or an export document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> De<(), A::Error> {
        let st = self.0;
        let mut labels = HashMap::new();
        st.place = Place::new("records");
        let mut i = 0;
        while let Some(item) = {
            st.place.index = Some(i);
            seq.next_element::<Value>()?
        } {
            let r = st.list_record(i, item, &mut labels);
            st.check(r)?;
            i += 1;
        }
        st.place = Place::default();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> De<(), A::Error> {
        let st = self.0;
        let (mut version, mut projects) = (false, false);
        while let Some(key) = map.next_key::<String>()? {
            st.place = Place::new(key.as_str());
            match key.as_str() {
                FORMAT_KEY => {
                    let v: Value = map.next_value()?;
                    let r = check_version(st.src, &v);
                    st.check(r)?;
                    version = true;
                }
                "users" => {
                    let v: Value = map.next_value()?;
                    let r = read_users(st.src, v);
                    let users = st.check(r)?;
                    st.rest.users.extend(users);
                }
                "projects" => {
                    map.next_value_seed(Projects(&mut *st))?;
                    projects = true;
                }
                "deleted_projects" => {
                    map.next_value_seed(Each {
                        st: &mut *st,
                        at: "deleted_projects".into(),
                        one: One::DeletedProject,
                    })?;
                }
                "tokens" => {
                    let v: Value = map.next_value()?;
                    let r = read_tokens(st.src, v);
                    let tokens = st.check(r)?;
                    st.rest.tokens.extend(tokens);
                }
                "history" => {
                    st.sink.history_begins();
                    map.next_value_seed(Each {
                        st: &mut *st,
                        at: "history".into(),
                        one: One::Entry,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            st.place = Place::default();
        }
        let r = match (version, projects) {
            (false, _) => Err(neither(st.src)),
            (true, false) => Err(bad(st.src, "projects: expected a list")),
            (true, true) => Ok(()),
        };
        st.check(r)
    }
}

fn check_version(src: &str, v: &Value) -> Result<()> {
    match v.as_u64() {
        Some(FORMAT_VERSION) => Ok(()),
        Some(v) if v > FORMAT_VERSION => Err(bad(
            src,
            format!("written by a newer sumatra-server (format {v}); use a newer one"),
        )),
        _ => Err(bad(src, format!("{FORMAT_KEY}: expected {FORMAT_VERSION}"))),
    }
}

/// The document's list of projects.
struct Projects<'s, 'a>(&'s mut Stream<'a>);

impl<'de> DeserializeSeed<'de> for Projects<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> De<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Projects<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of projects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> De<(), A::Error> {
        let st = self.0;
        let mut i = 0;
        while let Some(()) = {
            st.place = Place {
                at: "projects".into(),
                index: Some(i),
            };
            seq.next_element_seed(OneProject { st: &mut *st, i })?
        } {
            i += 1;
        }
        Ok(())
    }
}

/// One project of the document.
struct OneProject<'s, 'a> {
    st: &'s mut Stream<'a>,
    i: usize,
}

impl<'de> DeserializeSeed<'de> for OneProject<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> De<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OneProject<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a project (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> De<(), A::Error> {
        let OneProject { st, i } = self;
        let mut p = ProjectRead {
            at: format!("projects[{i}]"),
            head: Map::new(),
            id: None,
            opened: None,
            waiting: Vec::new(),
            labels: HashSet::new(),
            next: 0,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" | "name" | "description" | "access" => {
                    let v: Value = map.next_value()?;
                    let is_id = key == "id";
                    p.head.insert(key, v);
                    if is_id {
                        let r = st.named(&mut p);
                        st.check(r)?;
                    }
                }
                "trash" if p.id.is_none() => {
                    // Kept whole until the id comes (not so in our files).
                    let v: Value = map.next_value()?;
                    p.head.insert(key, v);
                }
                "trash" => {
                    let id = p.id.clone().expect("matched above");
                    if p.opened.is_none() {
                        let r = st.open(&mut p);
                        st.check(r)?;
                    }
                    map.next_value_seed(Each {
                        at: format!("{}: trash", p.at),
                        st: &mut *st,
                        one: One::Trashed(id),
                    })?;
                    st.place = Place::new(p.at.clone());
                }
                "records" => {
                    if p.opened.is_none() && p.id.is_some() {
                        let r = st.open(&mut p);
                        st.check(r)?;
                    }
                    st.place = Place::new(format!("{}: records", p.at));
                    map.next_value_seed(Records {
                        st: &mut *st,
                        p: &mut p,
                    })?;
                    st.place = Place::new(p.at.clone());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let r = st.finish(p);
        st.check(r)
    }
}

/// The records of one project of the document.
struct Records<'s, 'a, 'p> {
    st: &'s mut Stream<'a>,
    p: &'p mut ProjectRead,
}

impl<'de> DeserializeSeed<'de> for Records<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> De<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> De<(), A::Error> {
        let Records { st, p } = self;
        while let Some(r) = {
            st.place.index = Some(p.next);
            seq.next_element::<Value>()?
        } {
            let j = p.next;
            p.next += 1;
            if p.opened.is_some() {
                let res = st.doc_record(p, j, r);
                st.check(res)?;
            } else {
                p.waiting.push((j, r));
            }
        }
        st.place.index = None;
        Ok(())
    }
}

/// What a list of [`Each`] holds.
enum One {
    /// Records of this project's trash.
    Trashed(String),
    /// Deleted projects, each with its trash.
    DeletedProject,
    /// Entries of the history.
    Entry,
}

/// A list read one element at a time, each handed to the sink as it comes.
struct Each<'s, 'a> {
    st: &'s mut Stream<'a>,
    /// Where the list is, for errors: `history`, `projects[0] (project "P"): trash`.
    at: String,
    one: One,
}

impl<'de> DeserializeSeed<'de> for Each<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> De<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Each<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list ({})", self.at)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> De<(), A::Error> {
        let Each { st, at, one } = self;
        let mut i = 0;
        loop {
            st.place = Place {
                at: at.clone(),
                index: Some(i),
            };
            let here = format!("{}: {at}[{i}]", st.src);
            let done = match &one {
                One::Trashed(project) => match seq.next_element::<Value>()? {
                    None => true,
                    Some(v) => {
                        let r = read_trashed(&here, project, v)
                            .and_then(|k| st.sink.trashed(k).map_err(|e| located(e, &here)));
                        st.check(r)?;
                        false
                    }
                },
                One::DeletedProject => seq
                    .next_element_seed(Deleted {
                        st: &mut *st,
                        at: format!("{at}[{i}]"),
                    })?
                    .is_none(),
                One::Entry => match seq.next_element::<Value>()? {
                    None => true,
                    Some(v) => {
                        let r = read_entry(&here, v)
                            .and_then(|e| st.sink.history(e).map_err(|e| located(e, &here)));
                        st.check(r)?;
                        false
                    }
                },
            };
            if done {
                break;
            }
            i += 1;
        }
        st.place = Place::default();
        Ok(())
    }
}

/// One deleted project: its head, then its trash streamed.
struct Deleted<'s, 'a> {
    st: &'s mut Stream<'a>,
    at: String,
}

impl<'de> DeserializeSeed<'de> for Deleted<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> De<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Deleted<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a deleted project (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> De<(), A::Error> {
        let Deleted { st, at } = self;
        let here = format!("{}: {at}", st.src);
        let mut head = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "trash" {
                let r = str_field(&here, &head, "id")
                    .and_then(|id| id.ok_or_else(|| bad(&here, "trash: comes before the id")));
                let id = st.check(r)?;
                map.next_value_seed(Each {
                    at: format!("{at}: trash"),
                    st: &mut *st,
                    one: One::Trashed(id),
                })?;
            } else {
                let v: Value = map.next_value()?;
                head.insert(key, v);
            }
        }
        let r = read_deleted_project(&here, &head)
            .and_then(|p| st.sink.deleted_project(p).map_err(|e| located(e, &here)));
        st.check(r)
    }
}

/// A string field that must be there.
fn required(at: &str, obj: &Map<String, Value>, key: &str) -> Result<String> {
    str_field(at, obj, key)?.ok_or_else(|| bad(at, format!("{key}: missing")))
}

/// A time field, normalised (`YYYY-MM-DD HH:MM:SS`, UTC).
fn time_field(at: &str, obj: &Map<String, Value>, key: &str) -> Result<String> {
    crate::record::timefmt::normalise(&required(at, obj, key)?)
        .map_err(|e| bad(at, format!("{key}: {e}")))
}

fn read_trashed(at: &str, project: &str, v: Value) -> Result<KeptRecord> {
    let Value::Object(mut o) = v else {
        return Err(bad(at, "expected an object"));
    };
    let body = o
        .remove("record")
        .ok_or_else(|| bad(at, "record: missing"))?;
    let record = read_record(&format!("{at}: record"), body)?;
    Ok(KeptRecord {
        project: project.to_string(),
        label: record.label.clone(),
        timestamp: record.timestamp.clone(),
        body: serde_json::to_string(&record).expect("a record serialises"),
        deleted_at: time_field(at, &o, "deleted_at")?,
        deleted_by: required(at, &o, "deleted_by")?,
        how: str_field(at, &o, "how")?.unwrap_or_else(|| "record".into()),
    })
}

fn read_deleted_project(at: &str, o: &Map<String, Value>) -> Result<KeptProject> {
    let id = required(at, o, "id")?;
    crate::record::check_project_id(&id).map_err(|e| bad(at, format!("id: {e}")))?;
    let access = match o.get("access") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(a @ Value::Array(items)) => {
            for (k, item) in items.iter().enumerate() {
                let aat = format!("{at}: access[{k}]");
                let item = as_object(&aat, item)?;
                required(&aat, item, "user")?;
                Level::parse(&required(&aat, item, "level")?).map_err(|e| located(e, &aat))?;
            }
            a.clone()
        }
        Some(_) => return Err(bad(at, "access: expected a list")),
    };
    Ok(KeptProject {
        id,
        name: str_field(at, o, "name")?.unwrap_or_default(),
        description: str_field(at, o, "description")?.unwrap_or_default(),
        access: access.to_string(),
        created: time_field(at, o, "created")?,
        deleted_at: time_field(at, o, "deleted_at")?,
        deleted_by: required(at, o, "deleted_by")?,
    })
}

fn read_tokens(src: &str, v: Value) -> Result<Vec<TokenRow>> {
    let Value::Array(items) = v else {
        return Err(bad(src, "tokens: expected a list"));
    };
    let mut out = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let at = format!("{src}: tokens[{i}]");
        let o = as_object(&at, t)?;
        let digest = required(&at, o, "digest")?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                &at,
                "digest: the hex SHA-256 of a token (64 characters)",
            ));
        }
        let level = Level::parse(&required(&at, o, "level")?).map_err(|e| located(e, &at))?;
        if level == Level::Admin {
            return Err(bad(&at, "level: read or write"));
        }
        let time = |k: &str| -> Result<Option<String>> {
            match str_field(&at, o, k)? {
                None => Ok(None),
                Some(t) => crate::record::timefmt::normalise(&t)
                    .map(Some)
                    .map_err(|e| bad(&at, format!("{k}: {e}"))),
            }
        };
        // Its id, as the history names it (none in older exports).
        let id = match o.get("id") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .filter(|id| *id > 0)
                .ok_or_else(|| bad(&at, "id: a positive whole number"))?,
        };
        out.push(TokenRow {
            id,
            user_id: 0,
            username: required(&at, o, "user")?,
            project: required(&at, o, "project")?,
            level,
            name: str_field(&at, o, "name")?.unwrap_or_default(),
            digest: digest.to_ascii_lowercase(),
            created: time("created")?.ok_or_else(|| bad(&at, "created: missing"))?,
            expires: time("expires")?,
            last_used: time("last_used")?,
            last_address: str_field(&at, o, "last_address")?,
        });
    }
    Ok(out)
}

fn read_entry(at: &str, v: Value) -> Result<KeptEntry> {
    let o = as_object(at, &v)?;
    let detail = match o.get("detail") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(d) => d.to_string(),
    };
    let project = str_field(at, o, "project")?;
    if let Some(p) = &project {
        crate::record::check_project_id(p).map_err(|e| bad(at, format!("project: {e}")))?;
    }
    Ok(KeptEntry {
        at: time_field(at, o, "at")?,
        actor: required(at, o, "actor")?,
        address: str_field(at, o, "address")?,
        project,
        action: required(at, o, "action")?,
        target: str_field(at, o, "target")?.unwrap_or_default(),
        detail,
    })
}

fn read_record(at: &dyn Display, item: Value) -> Result<Record> {
    let label = item
        .get("label")
        .and_then(Value::as_str)
        .map(str::to_string);
    record::decode_value(item).map_err(|e| match label {
        Some(l) => located(e, format!("{at} (label {l:?})")),
        None => located(e, at),
    })
}

fn read_users(src: &str, users: Value) -> Result<Vec<UserRecord>> {
    let Value::Array(users) = users else {
        return Err(bad(src, "users: expected a list"));
    };
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let at = format!("{src}: users[{i}]");
        let u = as_object(&at, u)?;
        let username =
            str_field(&at, u, "username")?.ok_or_else(|| bad(&at, "username: missing"))?;
        crate::store::check_username(&username).map_err(|e| located(e, &at))?;
        if !names.insert(username.clone()) {
            return Err(bad(&at, format!("user {username:?} appears twice")));
        }
        let created = match str_field(&at, u, "created")? {
            Some(c) => crate::record::timefmt::normalise(&c)
                .map_err(|e| bad(&at, format!("created: {e}")))?,
            None => crate::record::timefmt::now(),
        };
        out.push(UserRecord {
            username,
            password: str_field(&at, u, "password")?.unwrap_or_default(),
            email: str_field(&at, u, "email")?.unwrap_or_default(),
            created,
        });
    }
    Ok(out)
}

fn read_access(at: &str, project: &str, access: Value, fx: &mut Fixture) -> Result<()> {
    let Value::Array(access) = access else {
        return Err(bad(at, "access: expected a list"));
    };
    for (k, a) in access.iter().enumerate() {
        let aat = format!("{at}: access[{k}]");
        let a = as_object(&aat, a)?;
        let user = str_field(&aat, a, "user")?.ok_or_else(|| bad(&aat, "user: missing"))?;
        let level = str_field(&aat, a, "level")?.ok_or_else(|| bad(&aat, "level: missing"))?;
        let level = Level::parse(&level).map_err(|e| located(e, &aat))?;
        fx.grants.push(Grant {
            project: project.to_string(),
            user,
            level,
            mode: GrantMode::Exact,
        });
    }
    Ok(())
}

fn as_object<'v>(at: &str, v: &'v Value) -> Result<&'v Map<String, Value>> {
    v.as_object().ok_or_else(|| bad(at, "expected an object"))
}

/// A string field of an object: `None` when missing or null.
fn str_field(at: &str, obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(at, format!("{key}: expected a string"))),
    }
}

// ---------------------------------------------------------------- writing

/// Writes one project's records as a JSON array, one record a line;
/// `tick` is called after each record.
pub fn write_records(
    tx: &Tx<'_>,
    project: &str,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    out.write_all(b"[")?;
    write_record_lines(tx, project, out, tick)?;
    out.write_all(b"]\n")?;
    Ok(())
}

/// The records of a project, each on its own line, separated by commas.
fn write_record_lines(
    tx: &Tx<'_>,
    project: &str,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let mut first = true;
    tx.for_each_api_record(project, |json| {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        out.write_all(json.as_bytes())?;
        first = false;
        tick();
        Ok(())
    })?;
    if !first {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// What an export document carries beside projects and their records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Carry {
    /// Users with their hashes, and each project's access.
    pub users: bool,
    /// Each project's trash.
    pub trash: bool,
    /// The deleted projects with their trash (an export of every project).
    pub deleted_projects: bool,
    /// The whole history (an export of every project).
    pub history: bool,
}

/// Writes the export document for `projects` (in the order given).
pub fn write_document(
    tx: &Tx<'_>,
    projects: &[Project],
    carry: Carry,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    write!(out, "{{{}: {FORMAT_VERSION}", json!(FORMAT_KEY))?;
    if carry.users {
        out.write_all(b",\n\"users\": [")?;
        for (i, u) in tx.users_with_hashes()?.iter().enumerate() {
            let sep: &[u8] = if i == 0 { b"\n" } else { b",\n" };
            out.write_all(sep)?;
            let v = json!({"username": u.username, "password": u.password, "email": u.email, "created": u.created});
            out.write_all(v.to_string().as_bytes())?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b",\n\"projects\": [")?;
    for (i, p) in projects.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        write_project(tx, p, carry, out, tick)?;
    }
    out.write_all(b"]")?;
    if carry.deleted_projects {
        out.write_all(b",\n\"deleted_projects\": [")?;
        for (i, p) in tx.deleted_projects()?.iter().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            // Who had access, by name: only beside the users it names.
            let access: Value = match carry.users {
                true => serde_json::from_str(&p.access).unwrap_or(json!([])),
                false => json!([]),
            };
            let head = json!({"id": p.id, "name": p.name, "description": p.description,
                "access": access, "created": p.created, "deleted_at": p.deleted_at,
                "deleted_by": p.deleted_by})
            .to_string();
            out.write_all(&head.as_bytes()[..head.len() - 1])?;
            write_trash(tx, &p.id, out)?;
            out.write_all(b"}")?;
        }
        out.write_all(b"]")?;
    }
    if carry.history {
        out.write_all(b",\n\"tokens\": [")?;
        for (i, t) in tx.tokens(None)?.iter().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            let v = json!({"id": t.id, "user": t.username, "project": t.project, "level": t.level.as_str(),
                "name": t.name, "digest": t.digest, "created": t.created, "expires": t.expires,
                "last_used": t.last_used, "last_address": t.last_address});
            out.write_all(v.to_string().as_bytes())?;
        }
        out.write_all(b"]")?;
        out.write_all(b",\n\"history\": [")?;
        let mut first = true;
        tx.for_each_history(|e| {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
            let v = json!({"at": e.at, "actor": e.actor, "address": e.address,
                "project": e.project, "action": e.action, "target": e.target, "detail": detail});
            out.write_all(v.to_string().as_bytes())?;
            Ok(())
        })?;
        out.write_all(b"]")?;
    }
    out.write_all(b"}\n")?;
    Ok(())
}

/// `, "trash": [...]`: a project's trash, one record a line.
fn write_trash(tx: &Tx<'_>, project: &str, out: &mut dyn Write) -> Result<()> {
    out.write_all(b", \"trash\": [")?;
    let mut first = true;
    tx.for_each_trashed(project, |k| {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        let head = json!({"deleted_at": k.deleted_at, "deleted_by": k.deleted_by, "how": k.how})
            .to_string();
        out.write_all(&head.as_bytes()[..head.len() - 1])?;
        out.write_all(b", \"record\": ")?;
        out.write_all(k.body.as_bytes())?;
        out.write_all(b"}")?;
        Ok(())
    })?;
    if !first {
        out.write_all(b"\n")?;
    }
    out.write_all(b"]")?;
    Ok(())
}

fn write_project(
    tx: &Tx<'_>,
    p: &Project,
    carry: Carry,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let with_access = carry.users;
    let mut head = Map::new();
    head.insert("id".into(), Value::String(p.id.clone()));
    head.insert("name".into(), Value::String(p.name.clone()));
    head.insert("description".into(), Value::String(p.description.clone()));
    if with_access {
        let access: Vec<Value> = tx
            .access(&p.id)?
            .into_iter()
            .map(|a| json!({"user": a.username, "level": a.level.as_str()}))
            .collect();
        head.insert("access".into(), Value::Array(access));
    }
    let head = Value::Object(head).to_string();
    // The object without its closing brace, then the records.
    out.write_all(&head.as_bytes()[..head.len() - 1])?;
    out.write_all(b", \"records\": [")?;
    write_record_lines(tx, &p.id, out, tick)?;
    out.write_all(b"]")?;
    if carry.trash {
        write_trash(tx, &p.id, out)?;
    }
    out.write_all(b"}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(label: &str) -> Value {
        json!({
            "label": label, "timestamp": "2026-11-26 05:07:39",
            "executable": {"path": "/usr/bin/python", "version": "3.11", "name": "Python", "options": ""},
            "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
            "main_file": "main.py", "version": "abc",
            "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
            "launch_mode": {"type": "SerialLaunchMode", "parameters": {}},
            "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        })
    }

    /// Streams `v` into one fixture, users and access included.
    fn read(src: &str, v: &Value) -> Result<Fixture> {
        let text = v.to_string();
        let mut fx = Fixture::default();
        let rest = stream(src, serde_json::Deserializer::from_str(&text), &mut fx)?;
        fx.users = rest.users;
        fx.grants = rest.grants;
        Ok(fx)
    }

    fn with_pid(mut v: Value, p: &str) -> Value {
        v["project_id"] = json!(p);
        v
    }

    #[test]
    fn records_need_a_project_and_distinct_labels() {
        let fx = read(
            "f",
            &json!([with_pid(rec("a"), "P"), with_pid(rec("b"), "Q")]),
        )
        .unwrap();
        assert_eq!(fx.records.len(), 2);
        assert_eq!(fx.implied_projects, vec!["P", "Q"]);
        let e = read("f", &json!([rec("a")])).unwrap_err().to_string();
        assert!(e.starts_with("f: records[0]: no project_id"), "{e}");
        let e = read(
            "f",
            &json!([with_pid(rec("a"), "P"), with_pid(rec("a"), "P")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("records[1]: record \"a\" appears twice"),
            "{e}"
        );
        let mut broken = with_pid(rec("a"), "P");
        broken["timestamp"] = json!("soon");
        let e = read("f", &json!([broken])).unwrap_err().to_string();
        assert!(
            e.starts_with("f: records[0] (label \"a\"): timestamp:"),
            "{e}"
        );
    }

    #[test]
    fn documents_are_checked() {
        let doc = json!({FORMAT_KEY: 1, "users": [{"username": "bob", "password": "x", "email": "", "created": "2020-01-01 00:00:00"}],
            "projects": [{"id": "P", "name": "n", "description": "d", "access": [{"user": "bob", "level": "admin"}],
                          "records": [with_pid(rec("a"), "P")]}]});
        let fx = read("f", &doc).unwrap();
        assert_eq!(fx.users[0].username, "bob");
        assert_eq!(fx.grants[0].level, Level::Admin);
        assert_eq!(fx.records[0].0, "P");

        let mut newer = doc.clone();
        newer[FORMAT_KEY] = json!(2);
        assert!(read("f", &newer).unwrap_err().to_string().contains("newer"));
        let mut wrong = doc.clone();
        wrong["projects"][0]["records"][0]["project_id"] = json!("Q");
        let e = read("f", &wrong).unwrap_err().to_string();
        assert!(
            e.contains("projects[0] (project \"P\"): records[0]: project_id"),
            "{e}"
        );
        let mut level = doc;
        level["projects"][0]["access"][0]["level"] = json!("god");
        assert!(read("f", &level)
            .unwrap_err()
            .to_string()
            .contains("access[0]"));
    }

    #[test]
    fn trash_deleted_projects_and_history_are_read_and_checked() {
        let trashed = json!({"deleted_at": "2026-12-01 10:00:00", "deleted_by": "alice", "how": "record",
                             "record": rec("a")});
        let doc = json!({FORMAT_KEY: 1,
            "projects": [{"id": "P", "records": [], "trash": [trashed]}],
            "deleted_projects": [{"id": "Q", "name": "q", "description": "", "access": [{"user": "bob", "level": "write"}],
                                  "created": "2026-01-01 00:00:00", "deleted_at": "2026-12-02 00:00:00",
                                  "deleted_by": "shell (root)", "trash": [trashed]}],
            "history": [{"at": "2026-12-01 10:00:00", "actor": "alice", "address": "127.0.0.1", "project": "P",
                         "action": "record.delete", "target": "a", "detail": {"how": "record"}}]});
        let fx = read("f", &doc).unwrap();
        assert_eq!(fx.trash.len(), 2);
        assert_eq!(
            (fx.trash[0].project.as_str(), fx.trash[1].project.as_str()),
            ("P", "Q")
        );
        assert_eq!(fx.trash[0].label, "a");
        assert_eq!(
            fx.deleted_projects[0].access,
            r#"[{"user":"bob","level":"write"}]"#
        );
        assert_eq!(fx.history[0].detail, r#"{"how":"record"}"#);

        // Before the id (a file edited by hand): read once the project ends.
        let mut early = doc.clone();
        early["projects"][0] = json!({"trash": [trashed], "id": "P"});
        assert_eq!(read("f", &early).unwrap().trash.len(), 2);
        let mut when = doc.clone();
        when["history"][0]["at"] = json!("yesterday");
        let e = read("f", &when).unwrap_err().to_string();
        assert!(e.starts_with("f: history[0]: at:"), "{e}");
        let mut broken = doc;
        broken["deleted_projects"][0]["trash"][0]["record"]["timestamp"] = json!("soon");
        let e = read("f", &broken).unwrap_err().to_string();
        assert!(e.contains("deleted_projects[0]: trash[0]: record"), "{e}");
    }
}
