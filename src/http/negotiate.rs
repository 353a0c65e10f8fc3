//! Content negotiation (SPEC 2.2): `?format=` first, then the Accept header
//! with q-values; the Sumatra vendor type, `application/json` and `text/html`.

use crate::error::{Error, Result};

/// What a URL represents, for the vendor media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ProjectList,
    Project,
    Record,
    /// Permissions have no vendor type: JSON or HTML.
    Permissions,
    /// A record's lineage (SPEC 9.3): JSON, HTML, SVG or DOT.
    Lineage,
}

impl Kind {
    fn vendor_name(self) -> Option<&'static str> {
        match self {
            Kind::ProjectList => Some("project-list"),
            Kind::Project => Some("project"),
            Kind::Record => Some("record"),
            Kind::Permissions | Kind::Lineage => None,
        }
    }
}

/// The chosen representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rep {
    Vendor(Kind),
    Json,
    Html,
    /// A project's matches as CSV (SPEC 7.3).
    Csv,
    /// A project's matches as `{"columns", "rows", "count"}`.
    Table,
    /// The plot of a project's matches alone, or a lineage's graph.
    Svg,
    /// A lineage's graph as Graphviz text.
    Dot,
    /// A lineage, a record or a query's matches as W3C PROV-JSON.
    Prov,
    /// The same as RO-Crate metadata (Process Run Crate).
    RoCrate,
}

impl Rep {
    pub fn content_type(self) -> String {
        match self {
            Rep::Vendor(k) => match k.vendor_name() {
                Some(name) => format!("application/vnd.sumatra.{name}-v4+json; charset=utf-8"),
                None => "application/json; charset=utf-8".into(),
            },
            Rep::Json | Rep::Table => "application/json; charset=utf-8".into(),
            Rep::Html => "text/html; charset=utf-8".into(),
            Rep::Csv => "text/csv; charset=utf-8".into(),
            Rep::Svg => "image/svg+xml; charset=utf-8".into(),
            Rep::Dot => "text/vnd.graphviz; charset=utf-8".into(),
            Rep::Prov => "application/json; charset=utf-8".into(),
            Rep::RoCrate => "application/ld+json; charset=utf-8".into(),
        }
    }
    pub fn is_html(self) -> bool {
        self == Rep::Html
    }
}

const VENDOR_NAMES: [&str; 3] = ["project-list", "project", "record"];

/// Chooses the representation for `kind`.
pub fn choose(kind: Kind, format: Option<&str>, accept: Option<&str>) -> Result<Rep> {
    if let Some(f) = format {
        return by_format(kind, f);
    }
    let vendor = || match kind.vendor_name() {
        Some(_) => Rep::Vendor(kind),
        None => Rep::Json,
    };
    let accept = match accept.map(str::trim) {
        None | Some("") => return Ok(vendor()),
        Some(a) => a,
    };
    let ranges = parse_accept(accept);
    let vendor_type = kind
        .vendor_name()
        .map(|n| format!("application/vnd.sumatra.{n}-v4+json"));
    let csv = (kind == Kind::Project).then_some("text/csv");
    let candidates: [(Option<&str>, Rep); 4] = [
        (vendor_type.as_deref(), vendor()),
        (Some("application/json"), Rep::Json),
        (Some("text/html"), Rep::Html),
        (csv, Rep::Csv),
    ];
    let mut best: Option<(f32, Rep)> = None;
    for (media, rep) in candidates {
        let Some(media) = media else { continue };
        let q = quality(&ranges, media);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, rep));
        }
    }
    best.map(|(_, r)| r).ok_or_else(|| {
        Error::NotAcceptable(format!(
            "nothing here matches Accept: {accept}; available: {}application/json, text/html",
            vendor_type.map(|v| format!("{v}, ")).unwrap_or_default()
        ))
    })
}

fn by_format(kind: Kind, f: &str) -> Result<Rep> {
    match f {
        "json" => Ok(Rep::Json),
        "html" => Ok(Rep::Html),
        "svg" if matches!(kind, Kind::Project | Kind::Lineage) => Ok(Rep::Svg),
        "dot" if kind == Kind::Lineage => Ok(Rep::Dot),
        "prov" | "ro-crate" if matches!(kind, Kind::Lineage | Kind::Record | Kind::Project) => {
            Ok(if f == "prov" { Rep::Prov } else { Rep::RoCrate })
        }
        // `table json`: the `+` of a URL typed by hand arrives as a space.
        "csv" | "table+json" | "table json" if kind == Kind::Project => Ok(match f {
            "csv" => Rep::Csv,
            _ => Rep::Table,
        }),
        "dot" => Err(Error::NotAcceptable(format!(
            "format {f:?} is for a record's lineage; use json or html here"
        ))),
        "prov" | "ro-crate" => Err(Error::NotAcceptable(format!(
            "format {f:?} is for a record, a project's records or a lineage; use json or html here"
        ))),
        "csv" | "table+json" | "table json" | "svg" => Err(Error::NotAcceptable(format!(
            "format {f:?} is for a project's records; use json or html here"
        ))),
        other => {
            let name = other.strip_suffix("-v4+json");
            match name {
                Some(n) if Some(n) == kind.vendor_name() => Ok(Rep::Vendor(kind)),
                Some(n) if kind == Kind::Permissions && VENDOR_NAMES.contains(&n) => Ok(Rep::Json),
                Some(n) if VENDOR_NAMES.contains(&n) => Err(Error::NotAcceptable(format!(
                    "format {other:?} is not available here; use json, html or {}-v4+json",
                    kind.vendor_name().unwrap_or("json")
                ))),
                _ => Err(Error::bad(format!(
                    "unknown format {other:?}; use json, html, csv, table+json, svg, dot, prov, ro-crate, project-list-v4+json, project-v4+json or record-v4+json"
                ))),
            }
        }
    }
}

/// A media range from an Accept header: type, subtype, q.
#[derive(Debug)]
struct Range {
    ty: String,
    sub: String,
    q: f32,
}

fn parse_accept(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let (ty, sub) = media.split_once('/')?;
            let mut q = 1.0f32;
            for p in pieces {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0);
                    }
                }
            }
            Some(Range {
                ty: ty.trim().to_string(),
                sub: sub.trim().to_string(),
                q,
            })
        })
        .collect()
}

/// The q of the most specific range matching `media` (0 when none does).
fn quality(ranges: &[Range], media: &str) -> f32 {
    let (ty, sub) = media.split_once('/').expect("media types have a slash");
    let mut best: Option<(u8, f32)> = None;
    for r in ranges {
        let specificity = if r.ty == ty && r.sub == sub {
            3
        } else if r.ty == ty && r.sub == "*" {
            2
        } else if r.ty == "*" && r.sub == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, r.q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Does the Accept header name the Sumatra vendor type as its first choice?
/// (That is the Python client, which sends credentials only when challenged.)
pub fn prefers_vendor(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let ranges = parse_accept(accept);
    let top = ranges.iter().map(|r| r.q).fold(0.0f32, f32::max);
    ranges.iter().any(|r| {
        r.q == top && r.q > 0.0 && r.ty == "application" && r.sub.starts_with("vnd.sumatra.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_browser_curl() {
        let client = "application/vnd.sumatra.record-v4+json, application/json";
        assert_eq!(
            choose(Kind::Record, None, Some(client)).unwrap(),
            Rep::Vendor(Kind::Record)
        );
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(
            choose(Kind::Project, None, Some(browser)).unwrap(),
            Rep::Html
        );
        assert_eq!(
            choose(Kind::Project, None, Some("*/*")).unwrap(),
            Rep::Vendor(Kind::Project)
        );
        assert_eq!(
            choose(Kind::Project, None, None).unwrap(),
            Rep::Vendor(Kind::Project)
        );
        assert_eq!(choose(Kind::Permissions, None, None).unwrap(), Rep::Json);
    }

    #[test]
    fn parameters_and_q_values() {
        assert_eq!(
            choose(Kind::Project, None, Some("application/json; charset=utf-8")).unwrap(),
            Rep::Json
        );
        assert_eq!(
            choose(
                Kind::Project,
                None,
                Some("application/json;q=0.5, text/html")
            )
            .unwrap(),
            Rep::Html
        );
        assert_eq!(
            choose(Kind::Project, None, Some("text/*")).unwrap(),
            Rep::Html
        );
        assert_eq!(
            choose(Kind::Project, None, Some("*/*;q=0.1, application/json;q=0")).unwrap(),
            Rep::Vendor(Kind::Project)
        );
        assert!(matches!(
            choose(Kind::Project, None, Some("text/plain")),
            Err(Error::NotAcceptable(_))
        ));
        assert!(matches!(
            choose(Kind::Project, None, Some("garbage")),
            Err(Error::NotAcceptable(_))
        ));
    }

    #[test]
    fn format_parameter() {
        assert_eq!(
            choose(Kind::Record, Some("json"), Some("text/html")).unwrap(),
            Rep::Json
        );
        assert_eq!(choose(Kind::Record, Some("html"), None).unwrap(), Rep::Html);
        assert_eq!(
            choose(Kind::Record, Some("record-v4+json"), None).unwrap(),
            Rep::Vendor(Kind::Record)
        );
        assert!(matches!(
            choose(Kind::Record, Some("project-v4+json"), None),
            Err(Error::NotAcceptable(_))
        ));
        assert!(matches!(
            choose(Kind::Record, Some("bogus"), None),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            choose(Kind::Record, Some("record-v3+json"), None),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn vendor_preference() {
        assert!(prefers_vendor(Some(
            "application/vnd.sumatra.project-list-v4+json, application/json"
        )));
        assert!(!prefers_vendor(Some("*/*")));
        assert!(!prefers_vendor(None));
        assert!(!prefers_vendor(Some(
            "text/html, application/vnd.sumatra.project-list-v4+json;q=0.5"
        )));
    }
}
