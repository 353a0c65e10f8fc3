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
use crate::store::{Level, Project, Tx};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Reads one field of a platform.
type PlatformField = fn(&Platform) -> &Option<String>;

/// One compared value: `None` when the record has no such item at all.
struct Row {
    name: String,
    a: Option<String>,
    b: Option<String>,
    /// Shown as preformatted text (diffs, stdout, whole parameter files).
    pre: bool,
}

impl Row {
    fn new(name: impl Into<String>, a: impl Into<String>, b: impl Into<String>) -> Row {
        Row {
            name: name.into(),
            a: Some(a.into()),
            b: Some(b.into()),
            pre: false,
        }
    }
    fn pre(mut self) -> Row {
        self.pre = true;
        self
    }
    fn differs(&self) -> bool {
        self.a != self.b
    }
}

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

/// `key = value` pairs of a parameter file: a JSON object (flattened with
/// dots), or lines of `key = value` / `key: value` (Sumatra's simple,
/// config and YAML-like formats), comments after `#` dropped. `None` when
/// the content has lines that fit neither.
pub fn parameter_pairs(content: &str) -> Option<Vec<(String, String)>> {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(content) {
        let mut out = Vec::new();
        flatten("", &Value::Object(m), &mut out);
        return Some(out);
    }
    let mut out = Vec::new();
    let mut section = String::new();
    for line in content.lines() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = format!("{}.", line[1..line.len() - 1].trim());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .filter(|(k, _)| !k.trim().is_empty() && !k.trim().contains(char::is_whitespace))?;
        out.push((format!("{section}{}", k.trim()), v.trim().to_string()));
    }
    (!out.is_empty()).then_some(out)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The line up to a `#` outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Rows keyed by name, in the order of `a` then the names only `b` has.
/// Repeated names get a counter so that each occurrence pairs up. Linear in
/// the number of items (SPEC 2.7: a page costs no more than linear time).
fn keyed_rows(a: Vec<(String, String)>, b: Vec<(String, String)>) -> Vec<Row> {
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
    let a = numbered(a);
    let mut b_values: HashMap<String, Option<String>> = HashMap::with_capacity(b.len());
    let b = numbered(b);
    for (k, v) in &b {
        b_values.entry(k.clone()).or_insert_with(|| Some(v.clone()));
    }
    let mut rows: Vec<Row> = Vec::with_capacity(a.len() + b.len());
    for (k, v) in a {
        // Taken, so that the names only `b` has are what is left.
        let other = b_values.get_mut(&k).and_then(Option::take);
        rows.push(Row {
            name: k,
            a: Some(v),
            b: other,
            pre: false,
        });
    }
    for (k, v) in b {
        if b_values.get_mut(&k).and_then(Option::take).is_some() {
            rows.push(Row {
                name: k,
                a: None,
                b: Some(v),
                pre: false,
            });
        }
    }
    rows
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
            json!({
                "name": r.name, "a": r.a, "b": r.b, "pre": r.pre,
                "differs": r.differs(),
                "a_missing": r.a.is_none(), "b_missing": r.b.is_none(),
            })
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

/// The sections of a comparison of two records.
pub fn compare_sections(a: &Record, b: &Record, only_differences: bool) -> Vec<Value> {
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
            "no"
        } else {
            "yes (uncommitted changes)"
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
        Row::new("Date/time (UTC)", a.timestamp.clone(), b.timestamp.clone()),
        Row::new("Reason", a.reason(), b.reason()),
        Row::new("Outcome", a.outcome(), b.outcome()),
        Row::new(
            "Duration",
            human_duration(a.duration),
            human_duration(b.duration),
        ),
        Row::new("Tags", tags(a), tags(b)),
        Row::new("User", text(&a.user), text(&b.user)),
        Row::new(
            "Launch mode",
            component(&a.launch_mode.kind, &a.launch_mode.parameters),
            component(&b.launch_mode.kind, &b.launch_mode.parameters),
        ),
        Row::new("Repeats", text(&a.repeats), text(&b.repeats)),
    ];
    let mut code = vec![
        Row::new("Executable", exe(a), exe(b)),
        Row::new(
            "Executable path",
            text(&a.executable.path),
            text(&b.executable.path),
        ),
        Row::new("Repository", repo(a), repo(b)),
        Row::new("Version", text(&a.version), text(&b.version)),
        Row::new("Modified", modified(a), modified(b)),
        Row::new("Main file", text(&a.main_file), text(&b.main_file)),
        Row::new(
            "Arguments",
            text(&a.script_arguments),
            text(&b.script_arguments),
        ),
    ];
    if !text(&a.diff).is_empty() || !text(&b.diff).is_empty() {
        code.push(Row::new("Diff", text(&a.diff), text(&b.diff)).pre());
    }
    let (pa, pb) = (text(&a.parameters.content), text(&b.parameters.content));
    let mut parameters = vec![Row::new(
        "Type",
        text(&a.parameters.kind),
        text(&b.parameters.kind),
    )];
    match (parameter_pairs(&pa), parameter_pairs(&pb)) {
        (Some(x), Some(y)) => parameters.extend(keyed_rows(x, y)),
        _ => parameters.push(Row::new("Content", pa, pb).pre()),
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
    let dependencies = keyed_rows(deps(a), deps(b));
    let mut platform = Vec::new();
    for i in 0..a.platforms.len().max(b.platforms.len()) {
        let (pa, pb) = (a.platforms.get(i), b.platforms.get(i));
        let field = |p: Option<&Platform>, f: PlatformField| p.map(|p| text(f(p)));
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
                a: field(pa, f),
                b: field(pb, f),
                pre: false,
            });
        }
    }
    let mut inputs = vec![Row::new(
        "Input data store",
        component(&a.input_datastore.kind, &a.input_datastore.parameters),
        component(&b.input_datastore.kind, &b.input_datastore.parameters),
    )];
    inputs.extend(keyed_rows(files(&a.input_data), files(&b.input_data)));
    let mut outputs = vec![Row::new(
        "Data store",
        component(&a.datastore.kind, &a.datastore.parameters),
        component(&b.datastore.kind, &b.datastore.parameters),
    )];
    outputs.extend(keyed_rows(files(&a.output_data), files(&b.output_data)));
    outputs.push(
        Row::new(
            "stdout/stderr",
            text(&a.stdout_stderr),
            text(&b.stdout_stderr),
        )
        .pre(),
    );
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
    let compare: Vec<String> =
        q.0.iter()
            .filter(|(k, _)| k == "compare")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
    if compare.len() == 2 {
        let only = q.get("only") == Some("differences");
        return Ok((200, compare_page(app, tx, p, who, &compare, only)?));
    }
    let notice = (q.has("compare")).then(|| {
        format!(
            "To compare records, tick exactly two of them (you ticked {}).",
            compare.len()
        )
    });
    let text_search = q.get("search").map(str::trim).filter(|s| !s.is_empty());
    let (search, error) = match Search::parse(|k| q.get(k)) {
        Ok(s) => (s, None),
        Err(Error::BadRequest(message)) => (Search::default(), Some(message)),
        Err(e) => return Err(e),
    };
    let query_text = q.get("q").map(str::trim).filter(|t| !t.is_empty());
    let sel = search.selection(tags, text_search);
    let total = match error {
        Some(_) => 0,
        None => tx.select_count(&p.id, &sel)?.max(0) as u64,
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = q.number("page")?.unwrap_or(1).clamp(1, pages);
    let offset = (page - 1) * PAGE_SIZE;
    let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    // Parameter columns: those asked for, or the most common keys.
    let param_columns: Vec<Field> = match &search.columns {
        Some(cols) => cols
            .iter()
            .filter(|f| matches!(f, Field::Param(_) | Field::Dep(_)))
            .cloned()
            .collect(),
        None if error.is_none() => tx
            .param_keys(&p.id, &sel, Some(results::PAGE_KEY_SAMPLE))?
            .into_iter()
            .take(results::PAGE_PARAM_COLUMNS)
            .map(|(k, _)| Field::Param(k))
            .collect(),
        None => Vec::new(),
    };
    let mut records: Vec<Value> = Vec::new();
    if error.is_none() {
        tx.for_each_selected(&p.id, &sel, Some(PAGE_SIZE), offset, true, |s| {
            let row = results::Row::read(&s)?;
            let record: Record = serde_json::from_value(row.record.clone()).map_err(|e| {
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
    let access: Vec<Value> = match who.user() {
        None => Vec::new(),
        Some(_) => tx
            .access(&p.id)?
            .into_iter()
            .map(|a| json!({"user": a.username, "level": a.level.as_str()}))
            .collect(),
    };
    let tag_filter = (!tags.is_empty()).then(|| tags.join(","));
    let columns_text = q.get("columns").map(str::trim).filter(|c| !c.is_empty());
    let plot_text = q.get("plot").map(str::trim).filter(|c| !c.is_empty());
    let link = |sort: Option<&str>, page: Option<&str>, format: Option<&str>| {
        format!(
            "{project_url}{}",
            query_string(&[
                ("tags", tag_filter.as_deref()),
                ("search", text_search),
                ("q", query_text),
                ("sort", sort),
                ("columns", columns_text),
                ("plot", plot_text),
                ("page", page),
                ("format", format),
            ])
        )
    };
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
        json!({"name": name, "url": link(Some(&next), None, None), "sorted": state})
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
        "project": {"id": p.id, "name": p.display_name(), "description": p.description, "url": project_url},
        "records": records, "total": total,
        "filtered": filtered, "filter": tags.join(", "),
        "tag_filter": tag_filter, "search": text_search, "notice": notice,
        "q": query_text, "query_error": error, "sort": sort_text, "columns": columns_text, "plot_fields": plot_text,
        "sorts": sorts, "param_headers": param_headers, "plot": plot,
        "csv_url": link(sort_text, None, Some("csv")),
        "table_url": link(sort_text, None, Some("table+json")),
        "tags": tag_counts, "access": access, "is_admin": level >= Level::Admin,
        "page": page, "pages": pages, "paged": pages > 1,
        "first_shown": if total == 0 { 0 } else { offset + 1 }, "last_shown": offset + records.len() as u64,
        "first": (page > 1).then(|| nav(1)), "last": (page < pages).then(|| nav(pages)),
        "prev": (page > 1).then(|| nav(page - 1)), "next": (page < pages).then(|| nav(page + 1)),
    }))?;
    Ok((if error.is_some() { 400 } else { 200 }, html))
}

/// The comparison page of two records of a project.
pub fn compare_page(
    app: &App,
    tx: &Tx<'_>,
    p: &Project,
    who: &Caller,
    labels: &[String],
    only_differences: bool,
) -> Result<String> {
    let [la, lb] = labels else {
        return Err(Error::bad(format!(
            "pick two records to compare, not {}",
            labels.len()
        )));
    };
    for l in labels {
        crate::record::check_label(l).map_err(Error::BadRequest)?;
    }
    let get = |l: &String| {
        tx.record(&p.id, l)?
            .ok_or_else(|| Error::not_found(format!("no record {l:?} in project {:?}", p.id)))
    };
    let (a, b) = (get(la)?, get(lb)?);
    let project_url = format!("{}{}/", app.cfg.prefix, encode_segment(&p.id));
    let sections = compare_sections(&a, &b, only_differences);
    let differences: u64 = sections
        .iter()
        .map(|s| s["differences"].as_u64().unwrap_or(0))
        .sum();
    let side = |r: &Record| {
        json!({
            "label": r.label, "url": format!("{project_url}{}/", encode_segment(&r.label)),
            "timestamp": r.timestamp,
        })
    };
    let base = format!(
        "{project_url}?compare={},{}",
        encode_segment(la),
        encode_segment(lb)
    );
    app.pages.render(
        "compare",
        &json!({
            "title": format!("{} / {} vs {}", p.display_name(), la, lb),
            "prefix": app.cfg.prefix, "user": who.user().map(|u| &u.username),
            "project": {"id": p.id, "name": p.display_name(), "url": project_url},
            "a": side(&a), "b": side(&b), "sections": sections, "differences": differences,
            "only_differences": only_differences,
            "all_url": base, "diff_url": format!("{base}&only=differences"),
            "swap_url": format!("{project_url}?compare={},{}{}", encode_segment(lb), encode_segment(la),
                if only_differences { "&only=differences" } else { "" }),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_parameter_pairs() {
        let simple = "n = 50 # number\nseed = 34326\ndistr = \"normal\" # which";
        assert_eq!(
            parameter_pairs(simple).unwrap(),
            vec![
                ("n".to_string(), "50".to_string()),
                ("seed".into(), "34326".into()),
                ("distr".into(), "\"normal\"".into())
            ]
        );
        assert_eq!(
            parameter_pairs("{\"a\": {\"b\": 1}, \"c\": \"x#y\"}").unwrap(),
            vec![
                ("a.b".to_string(), "1".to_string()),
                ("c".into(), "x#y".into())
            ]
        );
        assert_eq!(
            parameter_pairs("[sim]\ndt = 0.1\n").unwrap(),
            vec![("sim.dt".to_string(), "0.1".to_string())]
        );
        assert!(parameter_pairs("just some text here").is_none());
        assert_eq!(strip_comment("a = '#x' # c"), "a = '#x' ");
    }

    #[test]
    fn html_keyed_rows_pair_up_and_mark_differences() {
        let rows = keyed_rows(
            vec![
                ("x".into(), "1".into()),
                ("f".into(), "a".into()),
                ("f".into(), "b".into()),
            ],
            vec![("f".into(), "a".into()), ("y".into(), "2".into())],
        );
        let got: Vec<(String, Option<String>, Option<String>, bool)> = rows
            .iter()
            .map(|r| (r.name.clone(), r.a.clone(), r.b.clone(), r.differs()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("x".into(), Some("1".into()), None, true),
                ("f".into(), Some("a".into()), Some("a".into()), false),
                ("f (2)".into(), Some("b".into()), None, true),
                ("y".into(), None, Some("2".into()), true),
            ]
        );
    }
}
