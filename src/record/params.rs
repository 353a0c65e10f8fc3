//! Parameter readers (SPEC 7.1): a record's `parameters: {"type", "content"}`
//! read into flat keys with typed values.
//!
//! `content` is what Sumatra stored: `str(parameter_set)`, i.e. the set's
//! `pretty()` text. Each reader follows what Sumatra's own class would read
//! from that text (sumatra/parameters.py and NeuroTools' `parameters`), and
//! never evaluates anything:
//!
//! - `SimpleParameterSet`: `name = value  # comment` lines; a value is a Python
//!   literal, anything else (`hello`, `1+2`) is kept as its text.
//! - `JSONParameterSet`: a JSON object (also `NaN`/`Infinity`, which Python's
//!   `json` writes).
//! - `YAMLParameterSet`: a YAML mapping, scalars resolved as PyYAML does
//!   (YAML 1.1: `yes` is true, `1e5` is text, `0o7` is text, `017` is 15),
//!   anchors, aliases and `<<` merge keys; `!!python/...` tags are read as the
//!   plain node under them (a tuple is a list).
//! - `NTParameterSet` (and `dict`): a Python dict literal.
//! - `ConfigParserParameterSet`: INI read like Python's `configparser`
//!   (keys lowercased, `DEFAULT` merged into every section, `%(name)s`
//!   interpolation); values that read as numbers are numbers.
//!
//! Nested dicts flatten with `.`; an empty dict gives no key (as NeuroTools'
//! `flat()`); lists are kept whole as their compact JSON text. A repeated key
//! keeps its first place and its last value, as a Python dict does.
//! Non-finite floats are `Text("nan" | "inf" | "-inf")` (Python's spelling),
//! so a `Number` is always finite; integers past 2^53 lose precision.
//! Hostile input is bounded: content length, key count, nesting depth, total
//! output bytes and (YAML aliases, INI interpolation) expansion work; every
//! reader runs in linear time and bounded recursion.

use super::pyliteral;
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

/// Longest content read.
pub const MAX_CONTENT: usize = 16 << 20;
/// Most keys one parameter set may give.
pub const MAX_KEYS: usize = 100_000;
/// Deepest nesting of dicts and lists.
pub const MAX_DEPTH: usize = 64;
/// Most bytes of keys, values and list texts produced in all.
const MAX_OUTPUT: usize = 32 << 20;
/// Units of work (about a byte or a node each) that reading YAML aliases or
/// INI interpolations may spend: linear in the content.
fn work_budget(content: &str) -> usize {
    (1 << 20) + 4 * content.len()
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Always finite.
    Number(f64),
    Text(String),
    Bool(bool),
    None,
    /// A list (or tuple), as compact JSON text.
    List(String),
}

/// Reads `content` by the parameter set class `kind` (`SimpleParameterSet`,
/// or with a module path, `sumatra.parameters.SimpleParameterSet`).
///
/// A missing or unknown kind: empty content or `None` (what Sumatra stores
/// for a record without parameters) gives no keys; content starting with `{`
/// is tried as JSON, then as a Python dict literal; anything else is read as
/// a SimpleParameterSet.
pub fn read(kind: Option<&str>, content: &str) -> Result<Vec<(String, ParamValue)>, String> {
    if content.len() > MAX_CONTENT {
        return Err(format!(
            "parameters are {} bytes, more than the {MAX_CONTENT} read",
            content.len()
        ));
    }
    let class = kind
        .map(|k| k.trim().rsplit('.').next().unwrap_or(""))
        .unwrap_or("");
    let mut out = Out::default();
    match class {
        "SimpleParameterSet" => simple(content, &mut out)?,
        "JSONParameterSet" => json(content, &mut out)?,
        "YAMLParameterSet" => yaml(content, &mut out)?,
        "NTParameterSet" | "dict" => python_dict(content, &mut out)?,
        "ConfigParserParameterSet" => ini(content, &mut out)?,
        _ => {
            let t = content.trim();
            if t.is_empty() || t == "None" {
            } else if t.starts_with('{') {
                if json(content, &mut out).is_err() {
                    out = Out::default();
                    python_dict(content, &mut out)?;
                }
            } else {
                simple(content, &mut out)?;
            }
        }
    }
    Ok(out.keys)
}

/// The text to show for a value: numbers as Python prints a float but with
/// no `.0` on integers (`3`, `0.5`, `1e-07`, `1.5e+16`), `True`/`False`/`None`,
/// lists as their JSON text.
pub fn display(v: &ParamValue) -> String {
    match v {
        ParamValue::Number(f) => number_text(*f),
        ParamValue::Text(s) | ParamValue::List(s) => s.clone(),
        ParamValue::Bool(true) => "True".into(),
        ParamValue::Bool(false) => "False".into(),
        ParamValue::None => "None".into(),
    }
}

fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return nonfinite_text(f).into();
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

fn nonfinite_text(f: f64) -> &'static str {
    if f.is_nan() {
        "nan"
    } else if f > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// The keys read so far, each once, with the byte budget.
#[derive(Default)]
struct Out {
    keys: Vec<(String, ParamValue)>,
    index: HashMap<String, usize>,
    bytes: usize,
}

impl Out {
    fn spend(&mut self, n: usize) -> Result<(), String> {
        self.bytes += n;
        if self.bytes > MAX_OUTPUT {
            return Err(format!("parameters expand past {MAX_OUTPUT} bytes"));
        }
        Ok(())
    }

    fn push(&mut self, key: String, v: ParamValue) -> Result<(), String> {
        let len = match &v {
            ParamValue::Text(s) | ParamValue::List(s) => s.len(),
            _ => 8,
        };
        self.spend(key.len() + len)?;
        if let Some(&i) = self.index.get(&key) {
            self.keys[i].1 = v;
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} parameters"));
        }
        self.index.insert(key.clone(), self.keys.len());
        self.keys.push((key, v));
        Ok(())
    }

    /// `prefix.key`, refused before it is built if it would not fit.
    fn join(&self, prefix: &str, key: &str) -> Result<String, String> {
        if self.bytes + prefix.len() + key.len() + 1 > MAX_OUTPUT {
            return Err(format!("parameters expand past {MAX_OUTPUT} bytes"));
        }
        Ok(if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        })
    }
}

// ---------------------------------------------------------------- JSON values

fn scalar_value(v: Value) -> ParamValue {
    match v {
        Value::Null => ParamValue::None,
        Value::Bool(b) => ParamValue::Bool(b),
        Value::Number(n) => ParamValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => ParamValue::Text(s),
        Value::Array(_) | Value::Object(_) => ParamValue::List(v.to_string()),
    }
}

/// Refuses a value nested deeper than `MAX_DEPTH` (the parsers below already
/// stop at 64 or 128 levels, so this recursion is bounded).
fn check_depth(v: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("parameters nested deeper than {MAX_DEPTH}"));
    }
    match v {
        Value::Array(a) => a.iter().try_for_each(|v| check_depth(v, depth + 1)),
        Value::Object(m) => m.values().try_for_each(|v| check_depth(v, depth + 1)),
        _ => Ok(()),
    }
}

fn flatten(out: &mut Out, prefix: &str, v: Value) -> Result<(), String> {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = out.join(prefix, &k)?;
                flatten(out, &key, v)?;
            }
            Ok(())
        }
        Value::Array(_) => {
            let text = v.to_string();
            out.push(prefix.to_string(), ParamValue::List(text))
        }
        other => out.push(prefix.to_string(), scalar_value(other)),
    }
}

fn flatten_top(out: &mut Out, v: Value, what: &str) -> Result<(), String> {
    if !v.is_object() {
        return Err(format!("{what} parameters are not a mapping"));
    }
    check_depth(&v, 0)?;
    flatten(out, "", v)
}

// ----------------------------------------------------------------------- JSON

fn json(content: &str, out: &mut Out) -> Result<(), String> {
    if content.trim().is_empty() {
        return Ok(());
    }
    let v: Value = match serde_json::from_str(content) {
        Ok(v) => v,
        Err(e) => {
            // Python's json writes NaN, Infinity and -Infinity; read them as text.
            let fixed = json_nonfinite(content).ok_or_else(|| format!("not JSON: {e}"))?;
            serde_json::from_str(&fixed).map_err(|_| format!("not JSON: {e}"))?
        }
    };
    flatten_top(out, v, "JSON")
}

/// `content` with the bare words `NaN`, `Infinity`, `-Infinity` outside
/// strings replaced by the strings `"nan"`, `"inf"`, `"-inf"`; `None` if it
/// has none.
fn json_nonfinite(content: &str) -> Option<String> {
    let b = content.as_bytes();
    let mut out = String::with_capacity(content.len() + 16);
    let (mut i, mut last, mut changed, mut in_str) = (0, 0, false, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let word = [
            ("NaN", "\"nan\""),
            ("-Infinity", "\"-inf\""),
            ("Infinity", "\"inf\""),
        ]
        .into_iter()
        .find(|(w, _)| b[i..].starts_with(w.as_bytes()));
        if let Some((w, with)) = word {
            out.push_str(&content[last..i]);
            out.push_str(with);
            i += w.len();
            last = i;
            changed = true;
            continue;
        }
        if c == b'"' {
            in_str = true;
        }
        i += 1;
    }
    out.push_str(&content[last..]);
    changed.then_some(out)
}

// --------------------------------------------------------- Python dict (NT)

fn python_dict(content: &str, out: &mut Out) -> Result<(), String> {
    if content.trim().is_empty() {
        return Ok(());
    }
    let v = pyliteral::parse(content)?;
    flatten_top(out, v, "NTParameterSet")
}

// --------------------------------------------------------- SimpleParameterSet

fn simple(content: &str, out: &mut Out) -> Result<(), String> {
    if content.contains('\0') {
        return Err("not a simple parameter file: a NUL byte".into());
    }
    // Built as a dict first, so that a repeated name replaces its value whole.
    let mut map = Map::new();
    for (n, line) in content.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once('=') else {
            let shown: String = line.chars().take(80).collect();
            return Err(format!(
                "not a simple parameter file: line {} has no '=': {shown:?}",
                n + 1
            ));
        };
        map.insert(
            name.trim().to_string(),
            simple_value(strip_comment(rest).trim()),
        );
    }
    let v = Value::Object(map);
    check_depth(&v, 0)?;
    flatten(out, "", v)
}

/// The text before a `#` that is outside quotes.
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '#' => return &s[..i],
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    s
}

fn simple_value(text: &str) -> Value {
    if let Ok(v) = pyliteral::parse(text) {
        return v;
    }
    python_int(text).unwrap_or_else(|| Value::String(text.to_string()))
}

/// Python's `0x1f`, `0o17`, `0b101` integer literals (`pyliteral` reads
/// decimal ones).
fn python_int(text: &str) -> Option<Value> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let radix = match body.get(..2)? {
        "0x" | "0X" => 16,
        "0o" | "0O" => 8,
        "0b" | "0B" => 2,
        _ => return None,
    };
    let digits = body[2..].strip_prefix('_').unwrap_or(&body[2..]);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    radix_value(&digits.replace('_', ""), radix, neg)
}

/// Digits in `radix` as a JSON number: an i64 when it fits, else an f64.
fn radix_value(digits: &str, radix: u32, neg: bool) -> Option<Value> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let signed = if neg {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    if let Ok(i) = i64::from_str_radix(&signed, radix) {
        return Some(Value::from(i));
    }
    let f = if radix == 10 {
        digits.parse::<f64>().ok()?
    } else {
        digits.chars().fold(0.0f64, |acc, c| {
            acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
        })
    };
    Some(float_value(if neg { -f } else { f }))
}

/// A float as a JSON value; a non-finite one as Python's text for it.
fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or_else(|| Value::String(nonfinite_text(f).into()), Value::Number)
}

// --------------------------------------------------- ConfigParserParameterSet

#[derive(Default)]
struct IniSection {
    name: String,
    /// Each option with its value lines, in file order.
    opts: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
}

impl IniSection {
    fn set(&mut self, key: String, value: String) -> usize {
        if let Some(&i) = self.index.get(&key) {
            self.opts[i].1 = vec![value];
            i
        } else {
            self.index.insert(key.clone(), self.opts.len());
            self.opts.push((key, vec![value]));
            self.opts.len() - 1
        }
    }
}

/// Python's `configparser.ConfigParser()` as Sumatra builds it: `=` or `:`,
/// `#`/`;` full-line comments, indented continuation lines, keys lowercased,
/// section names as written, `[DEFAULT]` inherited by every section (and
/// giving no keys of its own), BasicInterpolation.
fn ini(content: &str, out: &mut Out) -> Result<(), String> {
    let mut defaults = IniSection::default();
    let mut sections: Vec<IniSection> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    // None: no section yet; Some(None): DEFAULT; Some(Some(i)): sections[i].
    let mut cur: Option<Option<usize>> = None;
    let mut opt: Option<usize> = None;
    let mut indent_level = 0usize;
    for (n, line) in content.split('\n').enumerate() {
        let stripped = line.trim();
        let comment = stripped.starts_with('#') || stripped.starts_with(';');
        let value = if comment { "" } else { stripped };
        let section = match cur {
            Some(Some(i)) => Some(&mut sections[i]),
            Some(None) => Some(&mut defaults),
            None => None,
        };
        if value.is_empty() {
            // A blank line may belong to a multi-line value.
            if let (false, Some(s), Some(o)) = (comment, section, opt) {
                s.opts[o].1.push(String::new());
            }
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if let (Some(s), Some(o)) = (section, opt) {
            if indent > indent_level {
                s.opts[o].1.push(value.to_string());
                continue;
            }
        }
        indent_level = indent;
        if let Some(header) = ini_header(value) {
            cur = Some(if header == "DEFAULT" {
                None
            } else {
                Some(*by_name.entry(header.to_string()).or_insert_with(|| {
                    sections.push(IniSection {
                        name: header.to_string(),
                        ..IniSection::default()
                    });
                    sections.len() - 1
                }))
            });
            opt = None;
            continue;
        }
        let shown = || -> String { line.chars().take(80).collect() };
        let section = match cur {
            Some(Some(i)) => &mut sections[i],
            Some(None) => &mut defaults,
            None => {
                return Err(format!(
                    "not an INI file: line {} comes before any [section]: {:?}",
                    n + 1,
                    shown()
                ))
            }
        };
        let delim = value.find(['=', ':']);
        let name = delim.map(|p| value[..p].trim_end()).unwrap_or("");
        let Some(p) = delim.filter(|_| !name.is_empty()) else {
            return Err(format!(
                "not an INI file: line {} is not `key = value`: {:?}",
                n + 1,
                shown()
            ));
        };
        opt = Some(section.set(name.to_lowercase(), value[p + 1..].trim().to_string()));
    }
    let work = Cell::new(work_budget(content));
    for s in &sections {
        let raw = |k: &str| -> Option<String> {
            let lines = s
                .index
                .get(k)
                .map(|&i| &s.opts[i].1)
                .or_else(|| defaults.index.get(k).map(|&i| &defaults.opts[i].1))?;
            Some(lines.join("\n").trim_end().to_string())
        };
        let keys = defaults.opts.iter().map(|(k, _)| k).chain(
            s.opts
                .iter()
                .map(|(k, _)| k)
                .filter(|k| !defaults.index.contains_key(*k)),
        );
        for k in keys {
            let value = raw(k).unwrap_or_default();
            let value = if value.contains('%') {
                let mut acc = String::new();
                match interpolate(&value, &raw, &mut acc, 1, &work) {
                    Ok(()) => acc,
                    Err(Interp::Budget) => {
                        return Err("INI interpolation expands too far".into());
                    }
                    // Python raises here; the value is kept as written.
                    Err(Interp::Bad) => value,
                }
            } else {
                value
            };
            let key = out.join(&s.name, k)?;
            out.push(key, ini_value(value))?;
        }
    }
    Ok(())
}

/// `[name]` → `name` (Python's `\[(?P<header>.+)\]`, matched at the start).
fn ini_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

enum Interp {
    Bad,
    Budget,
}

/// Python's `BasicInterpolation`: `%%` is `%`, `%(name)s` is that option's
/// value, expanded in turn up to 10 levels.
fn interpolate(
    mut rest: &str,
    raw: &dyn Fn(&str) -> Option<String>,
    acc: &mut String,
    depth: usize,
    work: &Cell<usize>,
) -> Result<(), Interp> {
    if depth > 10 {
        return Err(Interp::Bad);
    }
    // Each step pays 1, plus the bytes it copies.
    let spend = |n: usize| -> Result<(), Interp> {
        let left = work.get();
        if left < n + 1 {
            return Err(Interp::Budget);
        }
        work.set(left - n - 1);
        Ok(())
    };
    while !rest.is_empty() {
        if acc.len() > MAX_OUTPUT {
            return Err(Interp::Budget);
        }
        let Some(p) = rest.find('%') else {
            spend(rest.len())?;
            acc.push_str(rest);
            return Ok(());
        };
        spend(p)?;
        acc.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(r) = rest.strip_prefix("%%") {
            acc.push('%');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("%(") {
            let close = r.find(')').filter(|&c| c > 0).ok_or(Interp::Bad)?;
            if !r[close + 1..].starts_with('s') {
                return Err(Interp::Bad);
            }
            let v = raw(&r[..close].to_lowercase()).ok_or(Interp::Bad)?;
            spend(v.len())?;
            rest = &r[close + 2..];
            if v.contains('%') {
                interpolate(&v, raw, acc, depth + 1, work)?;
            } else {
                acc.push_str(&v);
            }
        } else {
            return Err(Interp::Bad);
        }
    }
    Ok(())
}

/// A number if Python's `float()` reads it (but `inf`, `nan` and `1_000`
/// stay text); any other value is text.
fn ini_value(s: String) -> ParamValue {
    let numeric = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    match s.parse::<f64>() {
        Ok(f) if numeric && f.is_finite() => ParamValue::Number(f),
        _ => ParamValue::Text(s),
    }
}

// ----------------------------------------------------------------------- YAML

enum Node {
    Scalar(Value),
    /// A plain `<<` key.
    Merge,
    Seq(Vec<usize>),
    Map(Vec<(usize, usize)>),
    /// A collection whose end has not been read yet.
    Open,
}

struct Frame {
    node: usize,
    map: bool,
    items: Vec<usize>,
}

struct Yaml {
    nodes: Vec<Node>,
    work: Cell<usize>,
    /// Nodes with an anchor, and the JSON text of those already written.
    anchored: HashSet<usize>,
    memo: RefCell<HashMap<usize, String>>,
}

fn yaml(content: &str, out: &mut Out) -> Result<(), String> {
    let doc = Yaml {
        nodes: Vec::new(),
        work: Cell::new(work_budget(content)),
        anchored: HashSet::new(),
        memo: RefCell::new(HashMap::new()),
    };
    let Some((doc, root)) = doc.load(content)? else {
        return Ok(());
    };
    if !matches!(doc.nodes[root], Node::Map(_)) {
        return Err("YAML parameters are not a mapping".into());
    }
    doc.walk(root, "", 0, out)
}

impl Yaml {
    /// Builds the node graph from the parser's events, without recursion; an
    /// alias is a second reference to its anchor's node, never a copy.
    fn load(mut self, content: &str) -> Result<Option<(Yaml, usize)>, String> {
        let mut anchors: HashMap<usize, usize> = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut root = None;
        let mut docs = 0;
        for item in Parser::new_from_str(content) {
            let (event, _) = item.map_err(|e| format!("not YAML: {e}"))?;
            let (idx, anchor) = match event {
                Event::DocumentStart(_) => {
                    docs += 1;
                    if docs > 1 {
                        return Err("YAML parameters hold more than one document".into());
                    }
                    continue;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let node = if tag.is_none() && style == ScalarStyle::Plain && text == "<<" {
                        Node::Merge
                    } else {
                        Node::Scalar(yaml_scalar(&text, style, tag.as_deref()))
                    };
                    self.nodes.push(node);
                    (self.nodes.len() - 1, anchor)
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("YAML parameters nested deeper than {MAX_DEPTH}"));
                    }
                    self.nodes.push(Node::Open);
                    let node = self.nodes.len() - 1;
                    if anchor > 0 {
                        anchors.insert(anchor, node);
                        self.anchored.insert(node);
                    }
                    let map = matches!(event, Event::MappingStart(..));
                    stack.push(Frame {
                        node,
                        map,
                        items: Vec::new(),
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let f = stack.pop().ok_or("unbalanced YAML events")?;
                    self.nodes[f.node] = if f.map {
                        Node::Map(f.items.chunks(2).map(|p| (p[0], p[p.len() - 1])).collect())
                    } else {
                        Node::Seq(f.items)
                    };
                    (f.node, 0)
                }
                Event::Alias(id) => {
                    let &idx = anchors.get(&id).ok_or("YAML alias to an unknown anchor")?;
                    if matches!(self.nodes[idx], Node::Open) {
                        return Err("YAML parameters refer to themselves".into());
                    }
                    (idx, 0)
                }
                _ => continue,
            };
            if anchor > 0 {
                anchors.insert(anchor, idx);
                self.anchored.insert(idx);
            }
            match stack.last_mut() {
                Some(f) => f.items.push(idx),
                None => root = Some(idx),
            }
        }
        Ok(root.map(|r| (self, r)))
    }

    fn spend(&self, n: usize) -> Result<(), String> {
        let left = self.work.get();
        if left < n {
            return Err("YAML aliases expand too far".into());
        }
        self.work.set(left - n);
        Ok(())
    }

    /// A mapping's pairs with `<<` merges applied and repeated keys resolved,
    /// as PyYAML builds the dict: merged pairs first (an earlier source wins),
    /// then the mapping's own; a later key replaces an earlier one in place.
    fn pairs(&self, idx: usize, depth: usize) -> Result<Vec<(String, usize)>, String> {
        let mut merged = Vec::new();
        self.merged_pairs(idx, depth, &mut merged)?;
        let mut keyed: Vec<(String, usize)> = Vec::with_capacity(merged.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (k, v) in merged {
            let text = self.key_text(k, depth)?;
            self.spend(1 + text.len())?;
            if let Some(&i) = seen.get(&text) {
                keyed[i].1 = v;
            } else {
                seen.insert(text.clone(), keyed.len());
                keyed.push((text, v));
            }
        }
        Ok(keyed)
    }

    fn merged_pairs(
        &self,
        idx: usize,
        depth: usize,
        acc: &mut Vec<(usize, usize)>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("YAML parameters nested deeper than {MAX_DEPTH}"));
        }
        let Node::Map(pairs) = &self.nodes[idx] else {
            return Err("YAML merge (<<) of something that is not a mapping".into());
        };
        self.spend(1 + pairs.len())?;
        let start = acc.len();
        let mut own = Vec::new();
        for &(k, v) in pairs {
            if !matches!(self.nodes[k], Node::Merge) {
                own.push((k, v));
                continue;
            }
            match &self.nodes[v] {
                Node::Seq(items) => {
                    let mut subs = Vec::new();
                    for &s in items {
                        let mut sub = Vec::new();
                        self.merged_pairs(s, depth + 1, &mut sub)?;
                        subs.push(sub);
                    }
                    subs.into_iter().rev().for_each(|s| acc.extend(s));
                }
                _ => self.merged_pairs(v, depth + 1, acc)?,
            }
        }
        acc.extend(own);
        self.spend(acc.len() - start)
    }

    fn key_text(&self, k: usize, depth: usize) -> Result<String, String> {
        match &self.nodes[k] {
            Node::Scalar(Value::String(s)) => Ok(s.clone()),
            Node::Scalar(v) => Ok(display(&scalar_value(v.clone()))),
            Node::Merge => Ok("<<".into()),
            _ => {
                let mut s = String::new();
                self.json(k, &mut s, depth + 1)?;
                Ok(s)
            }
        }
    }

    fn walk(&self, idx: usize, prefix: &str, depth: usize, out: &mut Out) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("YAML parameters nested deeper than {MAX_DEPTH}"));
        }
        self.spend(1)?;
        match &self.nodes[idx] {
            Node::Map(_) => {
                for (k, v) in self.pairs(idx, depth)? {
                    let key = out.join(prefix, &k)?;
                    self.walk(v, &key, depth + 1, out)?;
                }
                Ok(())
            }
            Node::Seq(_) => {
                let mut s = String::new();
                self.json(idx, &mut s, depth)?;
                out.push(prefix.to_string(), ParamValue::List(s))
            }
            Node::Scalar(v) => out.push(prefix.to_string(), scalar_value(v.clone())),
            Node::Merge => out.push(prefix.to_string(), ParamValue::Text("<<".into())),
            Node::Open => Err("unbalanced YAML events".into()),
        }
    }

    /// Compact JSON text of a node, aliases expanded within the budget.
    fn json(&self, idx: usize, s: &mut String, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("YAML parameters nested deeper than {MAX_DEPTH}"));
        }
        let anchored = self.anchored.contains(&idx);
        if anchored {
            if let Some(text) = self.memo.borrow().get(&idx) {
                self.spend(text.len())?;
                s.push_str(text);
                return Ok(());
            }
        }
        let start = s.len();
        match &self.nodes[idx] {
            Node::Scalar(v) => {
                let before = s.len();
                s.push_str(&v.to_string());
                self.spend(1 + s.len() - before)?;
            }
            Node::Merge => {
                s.push_str("\"<<\"");
                self.spend(5)?;
            }
            Node::Seq(items) => {
                self.spend(1 + items.len())?;
                s.push('[');
                for (i, &item) in items.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    self.json(item, s, depth + 1)?;
                }
                s.push(']');
            }
            Node::Map(_) => {
                // `pairs` has paid for the keys.
                s.push('{');
                for (i, (k, v)) in self.pairs(idx, depth)?.into_iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&Value::String(k).to_string());
                    s.push(':');
                    self.json(v, s, depth + 1)?;
                }
                s.push('}');
            }
            Node::Open => return Err("unbalanced YAML events".into()),
        }
        if s.len() > MAX_OUTPUT {
            return Err(format!("parameters expand past {MAX_OUTPUT} bytes"));
        }
        if anchored {
            self.memo.borrow_mut().insert(idx, s[start..].to_string());
        }
        Ok(())
    }
}

/// A scalar as PyYAML's default loader reads it.
fn yaml_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let string = || Value::String(text.to_string());
    let Some(tag) = tag else {
        return if style == ScalarStyle::Plain {
            yaml11_plain(text).unwrap_or_else(string)
        } else {
            string()
        };
    };
    let full = format!("{}{}", tag.handle, tag.suffix);
    let resolved = match full.strip_prefix("tag:yaml.org,2002:") {
        Some("null" | "python/none") => Some(Value::Null),
        Some("bool" | "python/bool") => yaml11_bool(text).map(Value::Bool),
        Some("int" | "python/int" | "python/long") => yaml11_int(text),
        Some("float" | "python/float") => yaml11_float(text)
            .or_else(|| yaml11_int(text).map(|v| float_value(v.as_f64().unwrap_or(f64::NAN)))),
        _ => None,
    };
    resolved.unwrap_or_else(string)
}

/// PyYAML's implicit resolvers (YAML 1.1) for a plain scalar; `None`: a string.
fn yaml11_plain(s: &str) -> Option<Value> {
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Some(Value::Null);
    }
    if let Some(b) = yaml11_bool(s) {
        return Some(Value::Bool(b));
    }
    yaml11_int(s).or_else(|| yaml11_float(s))
}

fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn all_in(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(ok)
}

/// A sexagesimal part after the first: `[0-5]?[0-9]`.
fn base60_part(p: &str) -> bool {
    let b = p.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
        _ => false,
    }
}

/// PyYAML's int: `0b1_0`, `017` (octal), `0x1F`, `1_000`, `1:30` (base 60).
fn yaml11_int(s: &str) -> Option<Value> {
    let (neg, body) = split_sign(s);
    let b = body.as_bytes();
    let digit_or_ = |c: u8| c.is_ascii_digit() || c == b'_';
    if let Some(d) = body.strip_prefix("0b") {
        all_in(d, |c| matches!(c, b'0' | b'1' | b'_')).then_some(())?;
        return radix_value(&d.replace('_', ""), 2, neg);
    }
    if let Some(d) = body.strip_prefix("0x") {
        all_in(d, |c| c.is_ascii_hexdigit() || c == b'_').then_some(())?;
        return radix_value(&d.replace('_', ""), 16, neg);
    }
    if body == "0" {
        return Some(Value::from(0));
    }
    if let Some(d) = body.strip_prefix('0') {
        all_in(d, |c| (b'0'..=b'7').contains(&c) || c == b'_').then_some(())?;
        return radix_value(&d.replace('_', ""), 8, neg);
    }
    if b.first().is_none_or(|c| !(b'1'..=b'9').contains(c)) {
        return None;
    }
    if let Some((head, tail)) = body.split_once(':') {
        if !all_in(head, digit_or_) || !tail.split(':').all(base60_part) {
            return None;
        }
        let v = body.split(':').fold(0.0f64, |acc, p| {
            acc * 60.0 + p.replace('_', "").parse::<f64>().unwrap_or(0.0)
        });
        let v = if neg { -v } else { v };
        return Some(if v.abs() < 9.0e15 {
            Value::from(v as i64)
        } else {
            float_value(v)
        });
    }
    all_in(body, digit_or_).then_some(())?;
    radix_value(&body.replace('_', ""), 10, neg)
}

/// PyYAML's float: a dot is required (`1.5`, `1.`, `.5`, `1.0e+05` with a
/// signed exponent), `190:20:30.15`, `.inf`, `-.inf`, `.nan`.
fn yaml11_float(s: &str) -> Option<Value> {
    match s {
        ".nan" | ".NaN" | ".NAN" => return Some(float_value(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(float_value(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(float_value(f64::NEG_INFINITY)),
        _ => {}
    }
    let (neg, body) = split_sign(s);
    let digit_or_ = |c: u8| c.is_ascii_digit() || c == b'_';
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.')?;
    if let Some(e) = exp {
        let (sign, digits) = (e.as_bytes().first(), e.get(1..).unwrap_or(""));
        if !matches!(sign, Some(b'+' | b'-')) || !all_in(digits, |c| c.is_ascii_digit()) {
            return None;
        }
    }
    if !frac.is_empty() && !all_in(frac, digit_or_) {
        return None;
    }
    let frac_text = frac.replace('_', "");
    let v = if int.contains(':') {
        // Sexagesimal: no exponent, the first part starts with a digit.
        let (head, tail) = int.split_once(':')?;
        let head_ok =
            head.as_bytes().first().is_some_and(u8::is_ascii_digit) && all_in(head, digit_or_);
        if exp.is_some() || !head_ok || !tail.split(':').all(base60_part) {
            return None;
        }
        let whole = int.split(':').fold(0.0f64, |acc, p| {
            acc * 60.0 + p.replace('_', "").parse::<f64>().unwrap_or(0.0)
        });
        whole + format!("0.{frac_text}").parse::<f64>().unwrap_or(0.0)
    } else {
        if int.is_empty() {
            // `.5`: no sign, and digits after the dot.
            if s.starts_with(['-', '+']) || frac.is_empty() {
                return None;
            }
        } else if !int.as_bytes()[0].is_ascii_digit() || !all_in(int, digit_or_) {
            return None;
        }
        let text = format!(
            "{}.{}{}",
            if int.is_empty() {
                "0".into()
            } else {
                int.replace('_', "")
            },
            if frac_text.is_empty() {
                "0"
            } else {
                &frac_text
            },
            exp.map(|e| format!("e{e}")).unwrap_or_default()
        );
        text.parse::<f64>().ok()?
    };
    Some(float_value(if neg { -v } else { v }))
}

#[cfg(test)]
mod tests {
    use super::ParamValue::{Bool, List, Number, Text};
    use super::*;
    use std::time::{Duration, Instant};

    fn ok(kind: &str, content: &str) -> Vec<(String, ParamValue)> {
        read(Some(kind), content).unwrap_or_else(|e| panic!("{kind}: {e}\n{content}"))
    }

    fn kv(pairs: &[(&str, ParamValue)]) -> Vec<(String, ParamValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn t(s: &str) -> ParamValue {
        Text(s.into())
    }

    fn l(s: &str) -> ParamValue {
        List(s.into())
    }

    fn quick<T>(what: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = f();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "{what} took {took:?}");
        r
    }

    #[test]
    fn simple_parameter_set() {
        let content = "\
# a comment line

n = 3   # neurons
dt = 0.1
big = 1e6
small = -2.5E-3
name = \"a#b\" # comment with \"quotes\"
other = 'single'
word = hello   # an unquoted word is a string
flag = True
off = False
nothing = None
xs = [1, 2.5, 'x', [3]]
pair = (1, 2)
hex = 0x1F
a.b = 1
expr = 1+2
eq = \"x=y\"
n = 4
";
        assert_eq!(
            ok("SimpleParameterSet", content),
            kv(&[
                ("n", Number(4.0)),
                ("dt", Number(0.1)),
                ("big", Number(1e6)),
                ("small", Number(-2.5e-3)),
                ("name", t("a#b")),
                ("other", t("single")),
                ("word", t("hello")),
                ("flag", Bool(true)),
                ("off", Bool(false)),
                ("nothing", ParamValue::None),
                ("xs", l("[1,2.5,\"x\",[3]]")),
                ("pair", l("[1,2]")),
                ("hex", Number(31.0)),
                ("a.b", Number(1.0)),
                ("expr", t("1+2")),
                ("eq", t("x=y")),
            ])
        );
        // What Sumatra's pretty() writes back for `name = "a#b" # c`.
        assert_eq!(
            ok("SimpleParameterSet", "name = \"a#b\" #b\" # c\r\n"),
            kv(&[("name", t("a#b"))])
        );
        assert_eq!(
            ok(
                "sumatra.parameters.SimpleParameterSet",
                "d = {'x': {'y': 1}}"
            ),
            kv(&[("d.x.y", Number(1.0))])
        );
        assert_eq!(ok("SimpleParameterSet", ""), vec![]);
        assert!(read(Some("SimpleParameterSet"), "a = 1\njust words\n").is_err());
        assert!(read(Some("SimpleParameterSet"), "a = 1\0").is_err());
    }

    #[test]
    fn json_parameter_set() {
        let content = r#"{"model": {"layers": 3, "act": "relu", "opts": {}},
            "lr": 1e-3, "ok": true, "none": null, "xs": [1, {"a": 2}],
            "big": 12345678901234567890, "lr": 0.5}"#;
        assert_eq!(
            ok("JSONParameterSet", content),
            kv(&[
                ("model.layers", Number(3.0)),
                ("model.act", t("relu")),
                ("lr", Number(0.5)),
                ("ok", Bool(true)),
                ("none", ParamValue::None),
                ("xs", l("[1,{\"a\":2}]")),
                ("big", Number(12345678901234567890.0)),
            ])
        );
        // Python's json.dumps writes these.
        assert_eq!(
            ok(
                "JSONParameterSet",
                r#"{"a": NaN, "b": -Infinity, "c": [Infinity], "d": "NaN"}"#
            ),
            kv(&[
                ("a", t("nan")),
                ("b", t("-inf")),
                ("c", l("[\"inf\"]")),
                ("d", t("NaN"))
            ])
        );
        assert_eq!(ok("JSONParameterSet", "{}"), vec![]);
        assert!(read(Some("JSONParameterSet"), "{\"a\": 1,}").is_err());
        assert!(read(Some("JSONParameterSet"), "[1, 2]").is_err());
    }

    #[test]
    fn yaml_parameter_set() {
        let content = "\
defaults: &d
    lr: 0.01
    momentum: 0.9
model:
    <<: *d
    lr: 0.1
    layers: [64, 64]
    act: relu
copy: *d
flags: {a: yes, b: off, c: ~, d: true}
ints: {dec: 1_000, oct: 017, hex: 0x1f, sexa: '1:30', base60: 1:30}
floats: {a: 1.5, b: 1.0e-05, c: 1e5, d: .5, e: .inf, f: -.inf, g: .nan}
tuple: !!python/tuple [1, 2]
uni: !!python/unicode 'x'
forced: !!str 3
quoted: '3'
empty:
block: |
    two
    lines
";
        assert_eq!(
            ok("YAMLParameterSet", content),
            kv(&[
                ("defaults.lr", Number(0.01)),
                ("defaults.momentum", Number(0.9)),
                ("model.lr", Number(0.1)),
                ("model.momentum", Number(0.9)),
                ("model.layers", l("[64,64]")),
                ("model.act", t("relu")),
                ("copy.lr", Number(0.01)),
                ("copy.momentum", Number(0.9)),
                ("flags.a", Bool(true)),
                ("flags.b", Bool(false)),
                ("flags.c", ParamValue::None),
                ("flags.d", Bool(true)),
                ("ints.dec", Number(1000.0)),
                ("ints.oct", Number(15.0)),
                ("ints.hex", Number(31.0)),
                ("ints.sexa", t("1:30")),
                ("ints.base60", Number(90.0)),
                ("floats.a", Number(1.5)),
                ("floats.b", Number(1e-5)),
                ("floats.c", t("1e5")),
                ("floats.d", Number(0.5)),
                ("floats.e", t("inf")),
                ("floats.f", t("-inf")),
                ("floats.g", t("nan")),
                ("tuple", l("[1,2]")),
                ("uni", t("x")),
                ("forced", t("3")),
                ("quoted", t("3")),
                ("empty", ParamValue::None),
                ("block", t("two\nlines\n")),
            ])
        );
        // Later merge sources lose to earlier ones, own keys win.
        assert_eq!(
            ok(
                "YAMLParameterSet",
                "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc: {<<: [*a, *b], y: 3}\n"
            )[4..],
            kv(&[
                ("c.x", Number(1.0)),
                ("c.z", Number(2.0)),
                ("c.y", Number(3.0))
            ])[..]
        );
        assert_eq!(
            ok("YAMLParameterSet", "xs: [&x {a: 1}, *x]\n1: one\nnull: n\n"),
            kv(&[
                ("xs", l("[{\"a\":1},{\"a\":1}]")),
                ("1", t("one")),
                ("None", t("n"))
            ])
        );
        assert_eq!(ok("YAMLParameterSet", ""), vec![]);
        assert_eq!(ok("YAMLParameterSet", "{}\n"), vec![]);
        assert!(read(Some("YAMLParameterSet"), "a: [1, 2\n").is_err());
        assert!(read(Some("YAMLParameterSet"), "- 1\n- 2\n").is_err());
        assert!(read(Some("YAMLParameterSet"), "a: 1\n---\nb: 2\n").is_err());
        assert!(read(Some("YAMLParameterSet"), "a: *nope\n").is_err());
        assert!(read(Some("YAMLParameterSet"), "a: &a [*a]\n").is_err());
    }

    #[test]
    fn nt_parameter_set() {
        // What NeuroTools' ParameterSet.pretty() writes.
        let content = "{\n  \"sim\": {\n    \"dt\": 0.1,\n    \"tstop\": 1000.0,\n  },\n  \
            \"label\": \"run 1\",\n  \"w\": [0.5, 1],\n  \"plastic\": False,\n  \
            \"seed\": None,\n  \"t\": (1, 2),\n}";
        assert_eq!(
            ok("NTParameterSet", content),
            kv(&[
                ("sim.dt", Number(0.1)),
                ("sim.tstop", Number(1000.0)),
                ("label", t("run 1")),
                ("w", l("[0.5,1]")),
                ("plastic", Bool(false)),
                ("seed", ParamValue::None),
                ("t", l("[1,2]")),
            ])
        );
        assert_eq!(ok("dict", "{'a': u'x'}"), kv(&[("a", t("x"))]));
        assert!(read(Some("NTParameterSet"), "{\"d\": url(\"http://x/p\")}").is_err());
        assert!(read(Some("NTParameterSet"), "[1, 2]").is_err());
    }

    #[test]
    fn config_parser_parameter_set() {
        let content = "\
[DEFAULT]
home = /data
; a comment
[sim]
dt = 0.1
Steps: 100
path = %(home)s/run
pct = 50%%
bad = 100%
name = run one
flag = True
# a comment
multi = first
    second

    third
empty =
[Net]
size = 1e3
home = /net
dt = 0.2
[sim]
dt = 0.3
";
        assert_eq!(
            ok("ConfigParserParameterSet", content),
            kv(&[
                ("sim.home", t("/data")),
                ("sim.dt", Number(0.3)),
                ("sim.steps", Number(100.0)),
                ("sim.path", t("/data/run")),
                ("sim.pct", t("50%")),
                ("sim.bad", t("100%")),
                ("sim.name", t("run one")),
                ("sim.flag", t("True")),
                ("sim.multi", t("first\nsecond\n\nthird")),
                ("sim.empty", t("")),
                ("Net.home", t("/net")),
                ("Net.size", Number(1000.0)),
                ("Net.dt", Number(0.2)),
            ])
        );
        assert_eq!(ok("ConfigParserParameterSet", "[DEFAULT]\na = 1\n"), vec![]);
        assert_eq!(ok("ConfigParserParameterSet", ""), vec![]);
        assert!(read(Some("ConfigParserParameterSet"), "a = 1\n[s]\n").is_err());
        assert!(read(Some("ConfigParserParameterSet"), "[s]\njust words\n").is_err());
        assert!(read(Some("ConfigParserParameterSet"), "[s]\n= 1\n").is_err());
    }

    #[test]
    fn unknown_or_missing_type() {
        assert_eq!(read(None, "{\"a\": 1}").unwrap(), kv(&[("a", Number(1.0))]));
        assert_eq!(
            read(Some("Mystery"), "{'a': True}").unwrap(),
            kv(&[("a", Bool(true))])
        );
        assert_eq!(read(None, "a = 1").unwrap(), kv(&[("a", Number(1.0))]));
        assert_eq!(read(Some("NoneType"), "None").unwrap(), vec![]);
        assert_eq!(read(None, "").unwrap(), vec![]);
        assert!(read(None, "{not json").is_err());
        assert!(read(None, "no equals sign").is_err());
    }

    #[test]
    fn display_values() {
        let cases = [
            (Number(3.0), "3"),
            (Number(-2.0), "-2"),
            (Number(0.1), "0.1"),
            (Number(0.0001), "0.0001"),
            (Number(1e-7), "1e-07"),
            (Number(1.5e16), "1.5e+16"),
            (Number(123456789012345.0), "123456789012345"),
            (Number(-0.0), "0"),
            (Bool(true), "True"),
            (Bool(false), "False"),
            (ParamValue::None, "None"),
            (t("x y"), "x y"),
            (l("[1,2]"), "[1,2]"),
        ];
        for (v, want) in cases {
            assert_eq!(display(&v), want, "{v:?}");
        }
    }

    #[test]
    fn hostile_inputs() {
        let too_big = " ".repeat(MAX_CONTENT + 1);
        assert!(read(Some("JSONParameterSet"), &too_big).is_err());

        // Deep nesting: an error, not a stack overflow.
        let deep = |open: &str, close: &str, n: usize| open.repeat(n) + &close.repeat(n);
        let json_deep = "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000);
        assert!(read(Some("JSONParameterSet"), &json_deep).is_err());
        let json_65 = "{\"a\":".repeat(66) + "1" + &"}".repeat(66);
        assert!(read(Some("JSONParameterSet"), &json_65).is_err());
        let json_64 = "{\"a\":".repeat(64) + "1" + &"}".repeat(64);
        assert_eq!(read(Some("JSONParameterSet"), &json_64).unwrap().len(), 1);
        assert!(read(Some("NTParameterSet"), &deep("[", "]", 100_000)).is_err());
        assert!(read(
            Some("SimpleParameterSet"),
            &format!("a = {}", deep("[", "]", 100_000))
        )
        .is_ok());
        let yaml_deep = format!("a: {}", deep("[", "]", 1_000_000));
        assert!(quick("deep yaml", || read(Some("YAMLParameterSet"), &yaml_deep)).is_err());
        let yaml_block: String = (0..1_000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert!(quick("deep block yaml", || read(
            Some("YAMLParameterSet"),
            &yaml_block
        ))
        .is_err());

        // Billion laughs, and a quadratic fan-out of one big anchor.
        let mut laughs = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (p, c) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            laughs += &format!("{c}: &{c} [{}]\n", vec![format!("*{p}"); 9].join(","));
        }
        assert!(quick("billion laughs", || read(Some("YAMLParameterSet"), &laughs)).is_err());
        let mut maps = String::from("a0: &a0 {x: 1, y: 2}\n");
        for i in 1..40 {
            maps += &format!("a{i}: &a{i} {{p: *a{}, q: *a{}}}\n", i - 1, i - 1);
        }
        assert!(quick("map laughs", || read(Some("YAMLParameterSet"), &maps)).is_err());
        let mut merges = String::from("m0: &m0 {x: 1}\n");
        for i in 1..40 {
            merges += &format!("m{i}: &m{i} {{<<: [*m{0}, *m{0}], y{i}: 1}}\n", i - 1);
        }
        assert!(quick("merge laughs", || read(Some("YAMLParameterSet"), &merges)).is_err());
        let fan = format!(
            "big: &b [{}]\nxs: [{}]\n",
            vec!["1"; 200_000].join(","),
            vec!["*b"; 100_000].join(",")
        );
        assert!(quick("fan-out", || read(Some("YAMLParameterSet"), &fan)).is_err());

        // Too many keys.
        let many: String = (0..MAX_KEYS + 1).map(|i| format!("k{i} = {i}\n")).collect();
        assert!(read(Some("SimpleParameterSet"), &many).is_err());
        let many_ini = format!("[DEFAULT]\n{many}[a]\n[b]\n");
        assert!(read(Some("ConfigParserParameterSet"), &many_ini).is_err());
        // DEFAULT fanned out to many sections, with a big value.
        let fan_ini = format!(
            "[DEFAULT]\nv = {}\n{}",
            "x".repeat(1 << 20),
            (0..5000).map(|i| format!("[s{i}]\n")).collect::<String>()
        );
        assert!(quick("INI fan-out", || read(
            Some("ConfigParserParameterSet"),
            &fan_ini
        ))
        .is_err());
        // Interpolation that doubles at every level, and one that multiplies empties.
        let mut interp = String::from("[s]\nv0 = ");
        interp += &"x".repeat(1 << 20);
        for i in 1..=10 {
            interp += &format!("\nv{i} = %(v{0})s%(v{0})s", i - 1);
        }
        let r = quick("INI doubling", || {
            read(Some("ConfigParserParameterSet"), &interp)
        });
        assert!(r.is_err(), "{:?}", r.map(|v| v.len()));
        let mut empties = String::from("[s]\ne0 =");
        for i in 1..=9 {
            empties += &format!("\ne{i} = {}", format!("%(e{})s", i - 1).repeat(1000));
        }
        assert!(quick("INI empties", || read(
            Some("ConfigParserParameterSet"),
            &empties
        ))
        .is_err());
        let loops = "[s]\na = %(b)s\nb = %(a)s\n";
        assert_eq!(
            ok("ConfigParserParameterSet", loops),
            kv(&[("s.a", t("%(b)s")), ("s.b", t("%(a)s"))])
        );

        // Long keys repeated through nesting.
        let long = "k".repeat(1 << 20);
        let nested = format!(
            "{{\"{long}\": {{{}}}}}",
            (0..100)
                .map(|i| format!("\"{i}\": 1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(quick("long keys", || read(Some("JSONParameterSet"), &nested)).is_err());

        // Large but legitimate content reads in time.
        let big: String = (0..9_000)
            .map(|i| format!("k{i}: [{}]\n", "1.5, ".repeat(20)))
            .collect();
        assert_eq!(
            quick("big yaml", || read(Some("YAMLParameterSet"), &big))
                .unwrap()
                .len(),
            9_000
        );
        let big_json = format!(
            "{{\"xs\": [{}]}}",
            vec!["\"abcdefgh\""; 1_200_000].join(",")
        );
        assert!(big_json.len() > 12 << 20);
        assert_eq!(
            quick("big json", || read(Some("JSONParameterSet"), &big_json))
                .unwrap()
                .len(),
            1
        );

        // Assorted garbage never panics.
        for kind in [
            "SimpleParameterSet",
            "JSONParameterSet",
            "YAMLParameterSet",
            "NTParameterSet",
            "ConfigParserParameterSet",
            "",
        ] {
            for s in [
                "\u{feff}",
                "[",
                "]",
                "=",
                "%",
                "%(",
                "[a]\nb = %(",
                ": :",
                "&a",
                "*a",
                "!!",
                "<<: 1",
                "{",
                "'",
                "\"",
                "\\",
                "a = '\\",
                "[]",
                "[a]\n  b",
                "é = ü",
                "a:\n\t- b",
                "--- !x\n",
                "a = 0x",
                "a = -0b",
                "a: 0b_",
                "a: 1:",
                "a: .",
                "a: 1.e",
                "a: 9:99",
            ] {
                let _ = read(Some(kind), s);
            }
        }
    }
}
