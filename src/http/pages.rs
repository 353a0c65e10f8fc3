//! What the HTML pages show: the project page with its query, parameter
//! columns and plot, and the side-by-side comparison of two records
//! (`P<project>/?compare=L1,L2`), as Sumatra's own local web view offers.
//! Every value goes through handlebars' escaping (`templates/*.hbs`); the
//! plot is SVG made by `super::plot`, which escapes its own text.

use super::api::Query;
use super::auth::Caller;
use super::html::{human_duration, shown};
use super::{encode_segment, App};
use crate::error::{Error, Result};
use crate::query::Field;
use crate::record::{DataKey, Platform, Record};
use crate::results::{self, Search};
use crate::store::{Level, Project, ProjectSummary, Tx, ANONYMOUS};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Reads one field of a platform.
type PlatformField = fn(&Platform) -> &Option<String>;

/// One compared item: a value per record, `None` where the record has no
/// such item at all.
struct Row {
    name: String,
    values: Vec<Option<String>>,
    /// Shown as preformatted text (diffs, stdout, whole parameter files).
    pre: bool,
}

impl Row {
    fn new(name: impl Into<String>, values: impl IntoIterator<Item = String>) -> Row {
        Row {
            name: name.into(),
            values: values.into_iter().map(Some).collect(),
            pre: false,
        }
    }
    fn pre(mut self) -> Row {
        self.pre = true;
        self
    }
    fn differs(&self) -> bool {
        self.values.iter().any(|v| *v != self.values[0])
    }
}

/// Most records compared at once (SPEC 7.3).
pub const MAX_COMPARED: usize = 10;

/// Letters naming the compared records' columns (A, B, ...).
const SIDES: [&str; MAX_COMPARED] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn component(kind: &Option<String>, params: &Map<String, Value>) -> String {
    let mut out = text(kind);
    for (k, v) in params {
        out.push_str(&format!("\n{k} = {}", shown(v)));
    }
    out
}

/// `key = value` pairs of a record's parameters, read by their type
/// (SPEC 7.1); `None` when they cannot be read.
fn parameter_pairs(r: &Record) -> Option<Vec<(String, String)>> {
    crate::store::read_params(r).ok().map(|keys| {
        keys.into_iter()
            .map(|(k, v)| (k, crate::record::params::display(&v)))
            .collect()
    })
}

/// Rows keyed by name: the names of the first record in its order, then
/// those only later ones have. Repeated names get a counter so that each
/// occurrence pairs up. Linear in the number of items (SPEC 2.7: a page
/// costs no more than linear time).
fn keyed_rows(lists: Vec<Vec<(String, String)>>) -> Vec<Row> {
    fn numbered(items: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
        items
            .into_iter()
            .map(|(k, v)| {
                let n = seen.entry(k.clone()).or_insert(0);
                *n += 1;
                (if *n > 1 { format!("{k} ({n})") } else { k }, v)
            })
            .collect()
    }
    let n = lists.len();
    let mut order: Vec<String> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    for (i, list) in lists.into_iter().enumerate() {
        for (k, v) in numbered(list) {
            let row = *at.entry(k.clone()).or_insert_with(|| {
                order.push(k);
                rows.push(vec![None; n]);
                rows.len() - 1
            });
            if rows[row][i].is_none() {
                rows[row][i] = Some(v);
            }
        }
    }
    order
        .into_iter()
        .zip(rows)
        .map(|(name, values)| Row {
            name,
            values,
            pre: false,
        })
        .collect()
}

fn files(keys: &[DataKey]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            let digest = k.digest.as_deref().unwrap_or("");
            (k.path.clone(), digest.chars().take(12).collect())
        })
        .collect()
}

/// Rows of one section shown at most: a larger section shows only its
/// differences (up to this many), so that a page of two huge records costs
/// what its differences cost, not what its size does.
const MAX_ROWS_SHOWN: usize = 2000;

fn section(title: &str, rows: Vec<Row>, only_differences: bool) -> Value {
    let differences = rows.iter().filter(|r| r.differs()).count();
    let only_differences = only_differences || rows.len() > MAX_ROWS_SHOWN;
    let candidates = if only_differences {
        differences
    } else {
        rows.len()
    };
    let shown: Vec<Value> = rows
        .iter()
        .filter(|r| !only_differences || r.differs())
        .take(MAX_ROWS_SHOWN)
        .map(|r| {
            let values: Vec<Value> = r
                .values
                .iter()
                .zip(SIDES)
                .map(|(v, side)| json!({"value": v, "missing": v.is_none(), "side": side}))
                .collect();
            json!({"name": r.name, "values": values, "pre": r.pre, "differs": r.differs()})
        })
        .collect();
    let not_shown = rows.len() - shown.len();
    let note = match (candidates > MAX_ROWS_SHOWN, not_shown) {
        (_, 0) => None,
        (true, n) => Some(format!(
            "{n} more rows not shown (only the first {MAX_ROWS_SHOWN} differences are)"
        )),
        (false, n) if rows.len() > MAX_ROWS_SHOWN => Some(format!(
            "{n} equal rows not shown (the section has {} rows)",
            rows.len()
        )),
        (false, _) => None,
    };
    json!({"title": title, "rows": shown, "differences": differences, "total": rows.len(), "note": note})
}

/// The sections of a comparison of records, one column each.
pub fn compare_sections(records: &[Record], only_differences: bool) -> Vec<Value> {
    let each = |f: &dyn Fn(&Record) -> String| -> Vec<String> { records.iter().map(f).collect() };
    let row = |name: &str, f: &dyn Fn(&Record) -> String| Row::new(name, each(f));
    let tags = |r: &Record| r.tags.join(", ");
    let exe = |r: &Record| {
        format!(
            "{} {}",
            text(&r.executable.name),
            text(&r.executable.version)
        )
        .trim()
        .to_string()
    };
    let modified = |r: &Record| {
        if text(&r.diff).is_empty() {
            "no".to_string()
        } else {
            "yes (uncommitted changes)".to_string()
        }
    };
    let repo = |r: &Record| {
        let mut s = format!("{} ({})", text(&r.repository.url), text(&r.repository.kind));
        if let Some(u) = r.repository.upstream.as_deref().filter(|u| !u.is_empty()) {
            s.push_str(&format!(", upstream {u}"));
        }
        s
    };
    let summary = vec![
        row("Date/time (UTC)", &|r| r.timestamp.clone()),
        row("Reason", &|r| r.reason().to_string()),
        row("Outcome", &|r| r.outcome().to_string()),
        row("Duration", &|r| human_duration(r.duration)),
        row("Tags", &tags),
        row("User", &|r| text(&r.user)),
        row("Launch mode", &|r| {
            component(&r.launch_mode.kind, &r.launch_mode.parameters)
        }),
        row("Repeats", &|r| text(&r.repeats)),
    ];
    let mut code = vec![
        row("Executable", &exe),
        row("Executable path", &|r| text(&r.executable.path)),
        row("Repository", &repo),
        row("Version", &|r| text(&r.version)),
        row("Modified", &modified),
        row("Main file", &|r| text(&r.main_file)),
        row("Arguments", &|r| text(&r.script_arguments)),
    ];
    if records.iter().any(|r| !text(&r.diff).is_empty()) {
        code.push(row("Diff", &|r| text(&r.diff)).pre());
    }
    let mut parameters = vec![row("Type", &|r| text(&r.parameters.kind))];
    let pairs: Option<Vec<Vec<(String, String)>>> = records.iter().map(parameter_pairs).collect();
    match pairs {
        Some(lists) => parameters.extend(keyed_rows(lists)),
        None => parameters.push(row("Content", &|r| text(&r.parameters.content)).pre()),
    }
    let deps = |r: &Record| -> Vec<(String, String)> {
        r.dependencies
            .iter()
            .map(|d| {
                let mut v = text(&d.version);
                if !text(&d.diff).is_empty() {
                    v.push_str(" (modified)");
                }
                (text(&d.name), v)
            })
            .collect()
    };
    let dependencies = keyed_rows(records.iter().map(deps).collect());
    let mut platform = Vec::new();
    let most = records.iter().map(|r| r.platforms.len()).max().unwrap_or(0);
    for i in 0..most {
        let n = if i == 0 {
            String::new()
        } else {
            format!(" #{}", i + 1)
        };
        let fields: [(&str, PlatformField); 9] = [
            ("Network name", |p| &p.network_name),
            ("IP address", |p| &p.ip_addr),
            ("System", |p| &p.system_name),
            ("Release", |p| &p.release),
            ("Version", |p| &p.version),
            ("Machine", |p| &p.machine),
            ("Processor", |p| &p.processor),
            ("Architecture bits", |p| &p.architecture_bits),
            ("Linkage", |p| &p.architecture_linkage),
        ];
        for (name, f) in fields {
            platform.push(Row {
                name: format!("{name}{n}"),
                values: records
                    .iter()
                    .map(|r| r.platforms.get(i).map(|p: &Platform| text(f(p))))
                    .collect(),
                pre: false,
            });
        }
    }
    let mut inputs = vec![row("Input data store", &|r| {
        component(&r.input_datastore.kind, &r.input_datastore.parameters)
    })];
    inputs.extend(keyed_rows(
        records.iter().map(|r| files(&r.input_data)).collect(),
    ));
    let mut outputs = vec![row("Data store", &|r| {
        component(&r.datastore.kind, &r.datastore.parameters)
    })];
    outputs.extend(keyed_rows(
        records.iter().map(|r| files(&r.output_data)).collect(),
    ));
    outputs.push(row("stdout/stderr", &|r| text(&r.stdout_stderr)).pre());
    vec![
        section("Summary", summary, only_differences),
        section("Code", code, only_differences),
        section("Parameters", parameters, only_differences),
        section("Dependencies", dependencies, only_differences),
        section("Platform", platform, only_differences),
        section("Input data", inputs, only_differences),
        section("Output data", outputs, only_differences),
    ]
}

/// The project list (SPEC 3).
pub fn projects_page(app: &App, who: &Caller, projects: &[ProjectSummary]) -> Result<String> {
    let rows: Vec<Value> = projects
        .iter()
        .map(|p| {
            json!({
                "id": p.project.id, "url": format!("{}{}/", app.cfg.prefix, encode_segment(&p.project.id)),
                "name": p.project.display_name(), "description": p.project.description,
                "records": p.record_count, "last_updated": p.last_updated,
                "public": p.access.iter().any(|a| a.username == ANONYMOUS),
            })
        })
        .collect();
    app.pages.render(
        "projects",
        &json!({
            "title": "Projects", "prefix": app.cfg.prefix, "user": who.user().map(|u| &u.username),
            "projects": rows,
        }),
    )
}

/// Who has access to a project, with the grant form for admins.
pub fn permissions_page(
    app: &App,
    p: &Project,
    who: &Caller,
    level: Level,
    doc: &Value,
) -> Result<String> {
    app.pages.render("permissions", &json!({
        "title": format!("Access to {}", p.display_name()), "prefix": app.cfg.prefix,
        "user": who.user().map(|u| &u.username),
        "project": {"id": p.id, "name": p.display_name(), "url": format!("{}{}/", app.cfg.prefix, encode_segment(&p.id))},
        "permissions": doc["permissions"], "is_admin": level >= Level::Admin,
    }))
}

/// One record's page, from its stored JSON.
#[allow(clippy::too_many_arguments)]
pub fn record_page(
    app: &App,
    tx: &Tx<'_>,
    p: &Project,
    who: &Caller,
    label: &str,
    body: &str,
    provenance: Value,
    level: Level,
) -> Result<String> {
    let record: Record = serde_json::from_str(body)
        .map_err(|e| Error::Database(format!("stored record {label:?} is unreadable: {e}")))?;
    let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    // Suggestions for the "compare with" field: the newest labels.
    let recent: Vec<String> = tx
        .labels(&p.id, &[], Some(30), 0)?
        .into_iter()
        .filter(|l| l != label)
        .collect();
    app.pages.render(
        "record",
        &json!({
            "title": format!("{} / {}", p.display_name(), label), "prefix": app.cfg.prefix,
            "user": who.user().map(|u| &u.username),
            "project": {"id": p.id, "name": p.display_name(), "url": project_url},
            "record": super::html::record_detail(&project_url, &record),
            "recent": recent,
            "parameters_unreadable": tx.params_readable(&p.id, label)? == Some(false),
            "provenance": provenance,
            "can_write": level >= Level::Write && who.user().is_some(),
            "tags_text": record.tags.join(", "),
            "files_not_indexed": (record.input_data.len() + record.output_data.len())
                .saturating_sub(crate::store::MAX_FILES_PER_RECORD),
        }),
    )
}

/// The pager's words for the order of the pages (SPEC 10.4: it said
/// newer and older whatever the sort).
fn pager_words(sort: &[crate::query::SortKey]) -> Value {
    match sort.first() {
        None => json!({"first": "newest", "prev": "newer", "next": "older", "last": "oldest"}),
        Some(k) if k.field == Field::Timestamp && !k.descending => {
            json!({"first": "oldest", "prev": "older", "next": "newer", "last": "newest"})
        }
        Some(k) if k.field == Field::Timestamp => {
            json!({"first": "newest", "prev": "newer", "next": "older", "last": "oldest"})
        }
        Some(_) => json!({"first": "first", "prev": "previous", "next": "next", "last": "last"}),
    }
}

/// Records per HTML page.
const PAGE_SIZE: u64 = 50;

/// `?k=v&...` of the pairs with a value, each percent-encoded.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode_segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The project page (SPEC 3, 7.3): records matching the tag filter, the
/// text search and the query, sorted, paged, with parameter columns, sort
/// links, a CSV link and the plot. A malformed query is answered 400 with
/// its sentence beside the query box, the query kept there for mending.
pub fn project_page(
    app: &App,
    tx: &Tx<'_>,
    p: &Project,
    who: &Caller,
    level: Level,
    tags: &[String],
    q: &Query,
) -> Result<(u16, String)> {
    // `?compare=L1,L2` or `?compare=L1&compare=L2` (the table's checkboxes).
    // Each record once (SPEC 7.6: ten times one large record took 1.45 GB).
    let mut compare: Vec<String> = Vec::new();
    for l in
        q.0.iter()
            .filter(|(k, _)| k == "compare")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
    {
        if !compare.iter().any(|c| c == l) {
            compare.push(l.to_string());
        }
    }
    if compare.len() > MAX_COMPARED {
        return Err(Error::bad(format!(
            "compare: at most {MAX_COMPARED} different records at once, not {}",
            compare.len()
        )));
    }
    if compare.len() >= 2 {
        let only = q.get("only") == Some("differences");
        return Ok((200, compare_page(app, tx, p, who, &compare, only)?));
    }
    let notice = (q.has("compare")).then(|| {
        format!(
            "To compare records, tick two to {MAX_COMPARED} different ones (you ticked {}).",
            compare.len()
        )
    });
    let text_search = q.get("search").map(str::trim).filter(|s| !s.is_empty());
    // The column chooser's ticks (`col=params.a&col=params.b`) stand for
    // `columns=params.a,params.b`.
    let ticked: Vec<&str> =
        q.0.iter()
            .filter(|(k, v)| k == "col" && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect();
    let ticked = (!ticked.is_empty()).then(|| ticked.join(","));
    let chosen_columns = ticked
        .as_deref()
        .or_else(|| q.get("columns"))
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let (search, error) = match Search::parse(|k| match k {
        "columns" => chosen_columns,
        _ => q.get(k),
    }) {
        Ok(s) => (s, None),
        Err(Error::BadRequest(message)) => (Search::default(), Some(message)),
        Err(e) => return Err(e),
    };
    let query_text = q.get("q").map(str::trim).filter(|t| !t.is_empty());
    let readable = if search.asks_lineage() {
        who.readable_projects(tx)?
    } else {
        Vec::new()
    };
    let sel = search.selection(tags, text_search).reading(Some(&readable));
    let total = match error {
        Some(_) => 0,
        None => tx.select_count(&p.id, &sel)?.max(0) as u64,
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = q.number("page")?.unwrap_or(1).clamp(1, pages);
    let offset = (page - 1) * PAGE_SIZE;
    let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    // Parameter columns: those asked for, or the most common keys; the
    // chooser offers the common keys and those asked for.
    let common: Vec<String> = match error {
        None => tx
            .param_keys(&p.id, &sel, Some(results::PAGE_KEY_SAMPLE))?
            .into_iter()
            .take(results::PAGE_PARAM_CHOICES)
            .map(|(k, _)| k)
            .collect(),
        Some(_) => Vec::new(),
    };
    let param_columns: Vec<Field> = match &search.columns {
        Some(cols) => cols
            .iter()
            .filter(|f| matches!(f, Field::Param(_) | Field::Dep(_)))
            .cloned()
            .collect(),
        None => common
            .iter()
            .take(results::PAGE_PARAM_COLUMNS)
            .map(|k| Field::Param(k.clone()))
            .collect(),
    };
    let mut choices: Vec<Value> = param_columns
        .iter()
        .map(|f| json!({"name": f.name(), "shown": true}))
        .collect();
    for k in &common {
        let f = Field::Param(k.clone());
        if !param_columns.contains(&f) {
            choices.push(json!({"name": f.name(), "shown": false}));
        }
    }
    let mut records: Vec<Value> = Vec::new();
    if error.is_none() {
        tx.for_each_selected(&p.id, &sel, Some(PAGE_SIZE), offset, true, |s| {
            let row = results::Row::read(&s)?;
            let record: Record = serde_json::from_str(s.body).map_err(|e| {
                Error::Database(format!("stored record {:?} is unreadable: {e}", row.label))
            })?;
            let mut v = super::html::record_row(&project_url, &record);
            v["params"] = Value::Array(
                param_columns
                    .iter()
                    .map(|f| json!(row.cell(f).text()))
                    .collect(),
            );
            records.push(v);
            Ok(())
        })?;
    }
    let tag_counts: Vec<Value> = tx
        .tag_counts(&p.id)?
        .into_iter()
        .map(|(t, n)| json!({"tag": t, "count": n, "url": format!("{project_url}tagged/{}/", encode_segment(&t)), "active": tags.contains(&t)}))
        .collect();
    // Anonymous visitors see no user names (SPEC 2.7).
    let access: Vec<Value> = match who.named_on(&p.id) {
        false => Vec::new(),
        true => tx
            .access(&p.id)?
            .into_iter()
            .map(|a| json!({"user": a.username, "level": a.level.as_str()}))
            .collect(),
    };
    let tag_filter = (!tags.is_empty()).then(|| tags.join(","));
    let columns_text = chosen_columns;
    let plot_text = q.get("plot").map(str::trim).filter(|c| !c.is_empty());
    // The code columns (executable, version, main file, arguments) are
    // shown on request: the table fits the window without them (SPEC 10.4).
    let show_code = q.get("code") == Some("1");
    let href = |sort: Option<&str>, page: Option<&str>, format: Option<&str>, code: bool| {
        format!(
            "{project_url}{}",
            query_string(&[
                ("tags", tag_filter.as_deref()),
                ("search", text_search),
                ("q", query_text),
                ("sort", sort),
                ("columns", columns_text),
                ("plot", plot_text),
                ("code", code.then_some("1")),
                ("page", page),
                ("format", format),
            ])
        )
    };
    // The page's links keep its choice of columns (a download has its own).
    let link = |sort: Option<&str>, page: Option<&str>, format: Option<&str>| {
        href(sort, page, format, show_code && format.is_none())
    };
    let code_link = |code: bool| href(search.sort_text.as_deref(), None, None, code);
    let sort_text = search.sort_text.as_deref();
    // A header sorts by its field; clicked again (sorted by it), descending.
    let sort_link = |f: &Field| -> Value {
        let name = f.name();
        let first = search.sort.first();
        let (next, state) = match first {
            Some(k) if k.field == *f && !k.descending => (format!("-{name}"), "asc"),
            Some(k) if k.field == *f => (name.clone(), "desc"),
            _ => (name.clone(), ""),
        };
        // A parameter's header is its key (narrower; the full name is its title).
        let short = name.strip_prefix("params.").unwrap_or(&name).to_string();
        json!({"name": name, "short": short, "url": link(Some(&next), None, None), "sorted": state})
    };
    let sorts: Map<String, Value> = [
        Field::Label,
        Field::Timestamp,
        Field::Reason,
        Field::Outcome,
        Field::Duration,
        Field::Executable,
        Field::Version,
        Field::MainFile,
        Field::ScriptArguments,
    ]
    .iter()
    .map(|f| (f.name(), sort_link(f)))
    .collect();
    let param_headers: Vec<Value> = param_columns.iter().map(sort_link).collect();
    let plot = match (&search.plot, error.is_none()) {
        (Some((x, y)), true) => {
            let (points, missing) = results::plot_points(tx, &p.id, &sel, (x, y), |l| {
                format!("{project_url}{}/", encode_segment(l))
            })?;
            let svg = crate::results::plot::svg(&crate::results::plot::Plot {
                x_name: &x.name(),
                y_name: &y.name(),
                points: &points,
                title: None,
            });
            Some(json!({
                "svg": svg, "shown": points.len(), "missing": missing,
                "capped": points.len() >= results::MAX_PLOT_POINTS,
                "svg_url": link(sort_text, None, Some("svg")),
            }))
        }
        _ => None,
    };
    let nav = |n: u64| link(sort_text, Some(&n.to_string()), None);
    let filtered = !tags.is_empty() || text_search.is_some() || query_text.is_some();
    let html = app.pages.render("project", &json!({
        "title": p.display_name(), "prefix": app.cfg.prefix, "user": who.user().map(|u| &u.username),
        "project": {"id": p.id, "name": p.display_name(), "raw_name": p.name, "description": p.description, "url": project_url},
        "records": records, "total": total,
        "filtered": filtered, "filter": tags.join(", "),
        "tag_filter": tag_filter, "search": text_search, "notice": notice,
        "q": query_text, "query_error": error, "sort": sort_text, "columns": columns_text, "plot_fields": plot_text,
        "sorts": sorts, "param_headers": param_headers, "plot": plot,
        "csv_url": link(sort_text, None, Some("csv")),
        "table_url": link(sort_text, None, Some("table+json")),
        "crate_url": link(sort_text, None, Some("ro-crate")),
        "prov_url": link(sort_text, None, Some("prov")),
        "exportable": total <= crate::lineage::runs::MAX_EXPORT_RECORDS as u64,
        "files_url": format!("{project_url}?view=files"),
        "tags": tag_counts, "access": access, "is_admin": level >= Level::Admin && who.user().is_some(),
        "can_write": level >= Level::Write && who.user().is_some(),
        "pager_words": pager_words(&search.sort),
        "show_code": show_code, "code_url": code_link(!show_code),
        "columns_offered": choices.len(), "column_choices": choices, "columns_shown": param_columns.len(),
        "default_columns_url": format!("{project_url}{}", query_string(&[
            ("tags", tag_filter.as_deref()), ("search", text_search), ("q", query_text),
            ("sort", sort_text), ("plot", plot_text), ("code", show_code.then_some("1")),
        ])),
        "code": show_code.then_some("1"),
        "filter_one": (tags.len() == 1).then(|| &tags[0]),
        "page": page, "pages": pages, "paged": pages > 1,
        "first_shown": if total == 0 { 0 } else { offset + 1 }, "last_shown": offset + records.len() as u64,
        "first": (page > 1).then(|| nav(1)), "last": (page < pages).then(|| nav(pages)),
        "prev": (page > 1).then(|| nav(page - 1)), "next": (page < pages).then(|| nav(page + 1)),
    }))?;
    Ok((if error.is_some() { 400 } else { 200 }, html))
}

/// Characters of one text a comparison shows; the rest is a link away (the
/// record's own page).
const COMPARED_TEXT: usize = 10_000;

/// Cuts the long texts of a compared record (output, diffs, reason,
/// outcome, arguments) to [`COMPARED_TEXT`] characters, ending with how
/// much was cut and a digest of the whole, so that two texts that differ
/// only past the cut still show as different.
fn cut_long_texts(r: &mut Record) {
    fn cut(text: &mut Option<String>) {
        let Some(t) = text else { return };
        let Some((at, _)) = t.char_indices().nth(COMPARED_TEXT) else {
            return;
        };
        use sha2::Digest;
        let digest = sha2::Sha256::digest(t.as_bytes());
        let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let rest = t[at..].chars().count();
        // A new string: truncating would keep the whole text's allocation.
        *t = format!(
            "{}\n[... {rest} more characters: the record's page shows the whole text (digest {short})]",
            &t[..at]
        );
    }
    for text in [
        &mut r.stdout_stderr,
        &mut r.diff,
        &mut r.reason,
        &mut r.outcome,
        &mut r.script_arguments,
    ] {
        cut(text);
    }
    for d in &mut r.dependencies {
        cut(&mut d.diff);
    }
    // A sweep may list a hundred thousand files: the comparison shows as
    // many as the record page does.
    r.input_data.truncate(1000);
    r.output_data.truncate(1000);
}

/// The comparison page of two to ten records of a project.
pub fn compare_page(
    app: &App,
    tx: &Tx<'_>,
    p: &Project,
    who: &Caller,
    labels: &[String],
    only_differences: bool,
) -> Result<String> {
    if !(2..=MAX_COMPARED).contains(&labels.len()) {
        return Err(Error::bad(format!(
            "pick two to {MAX_COMPARED} records to compare, not {}",
            labels.len()
        )));
    }
    for l in labels {
        crate::record::check_label(l).map_err(Error::BadRequest)?;
    }
    // Read one at a time, each cut down before the next is read: the page
    // holds a few tens of kilobytes of each, whatever their size.
    let records: Vec<Record> = labels
        .iter()
        .map(|l| {
            let mut r = tx.record(&p.id, l)?.ok_or_else(|| {
                Error::not_found(format!("no record {l:?} in project {:?}", p.id))
            })?;
            cut_long_texts(&mut r);
            Ok(r)
        })
        .collect::<Result<_>>()?;
    let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    let sections = compare_sections(&records, only_differences);
    let differences: u64 = sections
        .iter()
        .map(|s| s["differences"].as_u64().unwrap_or(0))
        .sum();
    let sides: Vec<Value> = records
        .iter()
        .zip(SIDES)
        .map(|(r, side)| {
            json!({
                "label": r.label, "url": format!("{project_url}{}/", encode_segment(&r.label)),
                "timestamp": r.timestamp, "side": side, "letter": side.to_ascii_uppercase(),
            })
        })
        .collect();
    let list = |ls: &[&String]| {
        ls.iter()
            .map(|l| encode_segment(l))
            .collect::<Vec<_>>()
            .join(",")
    };
    let all: Vec<&String> = labels.iter().collect();
    let base = format!("{project_url}?compare={}", list(&all));
    let only = if only_differences {
        "&only=differences"
    } else {
        ""
    };
    let swap_url = (labels.len() == 2).then(|| {
        format!(
            "{project_url}?compare={}{only}",
            list(&[&labels[1], &labels[0]])
        )
    });
    app.pages.render(
        "compare",
        &json!({
            "title": format!("{} / {}", p.display_name(), labels.join(" vs ")),
            "prefix": app.cfg.prefix, "user": who.user().map(|u| &u.username),
            "project": {"id": p.id, "name": p.display_name(), "url": project_url},
            "sides": sides, "count": labels.len(), "two": labels.len() == 2,
            "sections": sections, "differences": differences,
            "only_differences": only_differences,
            "all_url": base, "diff_url": format!("{base}&only=differences"),
            "swap_url": swap_url,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keyed_rows_pair_up_and_mark_differences() {
        let rows = keyed_rows(vec![
            vec![
                ("x".into(), "1".into()),
                ("f".into(), "a".into()),
                ("f".into(), "b".into()),
            ],
            vec![("f".into(), "a".into()), ("y".into(), "2".into())],
            vec![("y".into(), "2".into()), ("f".into(), "a".into())],
        ]);
        let got: Vec<(String, Vec<Option<String>>, bool)> = rows
            .iter()
            .map(|r| (r.name.clone(), r.values.clone(), r.differs()))
            .collect();
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            got,
            vec![
                ("x".into(), vec![v("1"), None, None], true),
                ("f".into(), vec![v("a"), v("a"), v("a")], false),
                ("f (2)".into(), vec![v("b"), None, None], true),
                ("y".into(), vec![None, v("2"), v("2")], true),
            ]
        );
    }
}
