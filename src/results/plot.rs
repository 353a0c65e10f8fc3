//! Server-drawn SVG scatter plot (`plot=X,Y`, `format=svg`), no JavaScript.
//!
//! [`svg`] renders a complete, standalone SVG document that is usable both as
//! an `image/svg+xml` response and inline in an HTML5 page.  Styling uses
//! presentation attributes only (no `<style>` element, no `style=""`), so the
//! page's `Content-Security-Policy: default-src 'none'; style-src 'self'`
//! does not interfere.  No scripts, no external references.
//!
//! Robustness:
//! * every piece of text (axis names, title, labels, URLs) is XML-escaped and
//!   characters that are not allowed in XML 1.0 become U+FFFD;
//! * link targets with a scheme other than `http`/`https` (e.g. `javascript:`)
//!   are replaced by `#`; relative references pass through;
//! * points whose `x` or `y` is not finite are skipped, so NaN/inf never reach
//!   the output; magnitudes beyond ±1e306 are clamped for the layout only, so
//!   range arithmetic cannot overflow;
//! * zero-width ranges (one point, all values equal) are padded;
//! * output is deterministic and built in linear time.

use std::fmt::Write as _;

/// One record to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Shown as the point's `<title>` (tooltip).
    pub label: String,
    /// The record page the point links to.
    pub url: String,
}

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub struct Plot<'a> {
    /// Name of the X field, e.g. `params.n` (x-axis title).
    pub x_name: &'a str,
    /// Name of the Y field, e.g. `duration` (y-axis title).
    pub y_name: &'a str,
    pub points: &'a [Point],
    pub title: Option<&'a str>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
/// Tick label font size; the viewBox is scaled down on a phone, so keep it large.
const FONT: f64 = 14.0;
/// Rough average glyph advance of a sans-serif font, used to size the left margin.
const CHAR_W: f64 = FONT * 0.6;
/// Layout clamp: keeps `hi - lo` and the padded ranges finite.
const LIMIT: f64 = 1e306;
/// Spans below this are treated as zero width.
const TINY: f64 = 1e-290;
const MIN_TICKS: f64 = 4.0;
const MAX_TICKS: f64 = 8.0;

/// A complete standalone SVG document (with xmlns and xmlns:xlink, usable as
/// image/svg+xml and inline in HTML5).
pub fn svg(plot: &Plot) -> String {
    // Pass 1: data ranges over the finite points.
    let mut n = 0usize;
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (LIMIT, -LIMIT, LIMIT, -LIMIT);
    for p in plot.points.iter().filter(|p| is_drawable(p)) {
        n += 1;
        let (x, y) = (clamp(p.x), clamp(p.y));
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    let (xa, ya) = if n == 0 {
        (Axis::new(0.0, 1.0), Axis::new(0.0, 1.0))
    } else {
        (Axis::new(x_lo, x_hi), Axis::new(y_lo, y_hi))
    };

    // Layout (viewBox units).
    let title = plot.title.map(|t| truncate(t, 70));
    let y_label_chars = ya.ticks.iter().map(|t| t.1.chars().count()).max();
    let y_label_w = y_label_chars.unwrap_or(1) as f64 * CHAR_W;
    let left = (28.0 + y_label_w + 10.0).clamp(60.0, 200.0).round();
    let right = WIDTH - 32.0;
    let top = if title.is_some() { 40.0 } else { 16.0 };
    let bottom = HEIGHT - 56.0;
    let px = |v: f64| xa.map(v, left, right);
    let py = |v: f64| ya.map(v, bottom, top);

    let mut out = String::with_capacity(4096 + n * 120);
    out.push_str(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" \
         xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\" class=\"plot\" \
         viewBox=\"0 0 640 400\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" \
         font-family=\"sans-serif\" font-size=\"14\">\n<title>",
    );
    match &title {
        Some(t) => esc(&mut out, t),
        None => {
            esc(&mut out, &truncate(plot.y_name, 60));
            out.push_str(" vs ");
            esc(&mut out, &truncate(plot.x_name, 60));
        }
    }
    out.push_str("</title>\n<rect width=\"640\" height=\"400\" fill=\"#fff\"/>\n");

    // Grid lines.
    out.push_str("<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n");
    for (v, _) in &xa.ticks {
        let x = px(*v);
        line(&mut out, x, top, x, bottom);
    }
    for (v, _) in &ya.ticks {
        let y = py(*v);
        line(&mut out, left, y, right, y);
    }
    out.push_str("</g>\n");

    // Axis lines and tick marks.
    out.push_str("<g stroke=\"#444\" stroke-width=\"1\">\n");
    line(&mut out, left, bottom, right, bottom);
    line(&mut out, left, top, left, bottom);
    for (v, _) in &xa.ticks {
        let x = px(*v);
        line(&mut out, x, bottom, x, bottom + 5.0);
    }
    for (v, _) in &ya.ticks {
        let y = py(*v);
        line(&mut out, left - 5.0, y, left, y);
    }
    out.push_str("</g>\n");

    // Tick labels.
    out.push_str("<g fill=\"#333\" text-anchor=\"middle\">\n");
    for (v, label) in &xa.ticks {
        text(&mut out, px(*v), bottom + 20.0, label);
    }
    out.push_str("</g>\n<g fill=\"#333\" text-anchor=\"end\">\n");
    for (v, label) in &ya.ticks {
        text(&mut out, left - 8.0, py(*v) + 5.0, label);
    }
    out.push_str("</g>\n");

    // Axis titles and plot title.
    out.push_str("<g fill=\"#000\" font-size=\"15\" text-anchor=\"middle\">\n");
    text(
        &mut out,
        (left + right) / 2.0,
        HEIGHT - 12.0,
        &truncate(plot.x_name, 60),
    );
    out.push_str("<text transform=\"translate(18 ");
    num(&mut out, (top + bottom) / 2.0);
    out.push_str(") rotate(-90)\">");
    esc(&mut out, &truncate(plot.y_name, 36));
    out.push_str("</text>\n");
    if let Some(t) = &title {
        out.push_str("<text x=\"320\" y=\"24\" font-size=\"16\" font-weight=\"bold\">");
        esc(&mut out, t);
        out.push_str("</text>\n");
    }
    out.push_str("</g>\n");

    if n == 0 {
        out.push_str("<text fill=\"#666\" text-anchor=\"middle\" font-size=\"16\" x=\"");
        num(&mut out, (left + right) / 2.0);
        out.push_str("\" y=\"");
        num(&mut out, (top + bottom) / 2.0);
        out.push_str("\">no numeric values</text>\n");
    }

    // Pass 2: the points; records on one spot are one dot, larger, whose
    // title counts and names them (SPEC 10.4: six records drawn as three
    // dots, with no word about it).
    let mut spots: Vec<Vec<&Point>> = Vec::new();
    let mut at: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    for p in plot.points.iter().filter(|p| is_drawable(p)) {
        let key = (clamp(p.x).to_bits(), clamp(p.y).to_bits());
        match at.get(&key) {
            Some(&i) => spots[i].push(p),
            None => {
                at.insert(key, spots.len());
                spots.push(vec![p]);
            }
        }
    }
    out.push_str("<g fill=\"#1f77b4\" fill-opacity=\"0.75\">\n");
    for spot in &spots {
        let p = spot[0];
        let url = safe_url(&p.url);
        out.push_str("<a href=\"");
        esc(&mut out, url);
        out.push_str("\" xlink:href=\"");
        esc(&mut out, url);
        out.push_str("\"><circle cx=\"");
        num(&mut out, px(clamp(p.x)));
        out.push_str("\" cy=\"");
        num(&mut out, py(clamp(p.y)));
        out.push_str("\" r=\"");
        if spot.len() == 1 {
            out.push('3');
        } else {
            num(
                &mut out,
                (3.0 + 1.5 * ((spot.len() - 1) as f64).sqrt()).min(12.0),
            );
        }
        out.push_str("\"><title>");
        if spot.len() == 1 {
            esc(&mut out, &p.label);
        } else {
            let names: Vec<&str> = spot.iter().take(10).map(|q| q.label.as_str()).collect();
            esc(
                &mut out,
                &format!(
                    "{} records here: {}{}",
                    spot.len(),
                    names.join(", "),
                    if spot.len() > 10 { ", …" } else { "" }
                ),
            );
        }
        out.push_str("</title></circle></a>\n");
    }
    out.push_str("</g>\n");
    let stacked = spots.iter().filter(|s| s.len() > 1).count();
    if stacked > 0 {
        out.push_str("<text fill=\"#444\" font-size=\"12\" x=\"");
        num(&mut out, left);
        out.push_str("\" y=\"");
        num(&mut out, top - 6.0);
        out.push_str("\">");
        esc(
            &mut out,
            &format!(
                "{stacked} dot{} stand{} for several records at one spot (larger; point at one for its records)",
                if stacked == 1 { "" } else { "s" },
                if stacked == 1 { "s" } else { "" }
            ),
        );
        out.push_str("</text>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn is_drawable(p: &Point) -> bool {
    p.x.is_finite() && p.y.is_finite()
}

fn clamp(v: f64) -> f64 {
    v.clamp(-LIMIT, LIMIT)
}

/// An axis: the drawn domain and its ticks (value, label).
#[derive(Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Domain and nice ticks for data in `[lo, hi]` (finite, `lo <= hi`).
    ///
    /// Zero-width ranges are padded (±10% of the value, or ±1 around 0), the
    /// range gets a 3% margin, then the step is the smallest `1, 2, 5 × 10^k`
    /// giving at most 8 ticks inside; should that leave fewer than 4, the
    /// domain is widened to the enclosing multiples of the step.
    fn new(lo: f64, hi: f64) -> Axis {
        let (mut lo, mut hi) = (clamp(lo), clamp(hi));
        let span = hi - lo;
        let scale = lo.abs().max(hi.abs());
        if !(span > scale * 1e-12 && span > TINY) {
            let c = lo + span / 2.0;
            let pad = if c.abs() > TINY { c.abs() * 0.1 } else { 1.0 };
            lo = c - pad;
            hi = c + pad;
        }
        let margin = (hi - lo) * 0.03;
        lo -= margin;
        hi += margin;

        let mut k = (hi - lo).log10().floor() as i32 - 1;
        let mut mi = 0;
        for _ in 0..64 {
            let m = [1i64, 2, 5][mi];
            let step = m as f64 * pow10(k);
            let mut a = (lo / step - 1e-9).ceil();
            let mut b = (hi / step + 1e-9).floor();
            if b - a + 1.0 <= MAX_TICKS {
                if b - a + 1.0 < MIN_TICKS {
                    a = (lo / step + 1e-9).floor();
                    b = (hi / step - 1e-9).ceil();
                    lo = lo.min(tick_value(a as i64 * m, k));
                    hi = hi.max(tick_value(b as i64 * m, k));
                }
                let values: Vec<f64> = (a as i64..=b as i64)
                    .map(|i| tick_value(i * m, k))
                    .collect();
                let ticks = tick_labels(&values, k);
                return Axis { lo, hi, ticks };
            }
            mi += 1;
            if mi == 3 {
                mi = 0;
                k += 1;
            }
        }
        // Not reached for finite input; keep something sensible anyway.
        let ticks = vec![(lo, sci(lo, 3)), (hi, sci(hi, 3))];
        Axis { lo, hi, ticks }
    }

    fn map(&self, v: f64, a: f64, b: f64) -> f64 {
        a + (v - self.lo) / (self.hi - self.lo) * (b - a)
    }
}

/// `10^k` as the nearest `f64` (exact decimal parse, unlike `powi`).
fn pow10(k: i32) -> f64 {
    format!("1e{k}").parse().unwrap_or(1.0)
}

/// `j × 10^k` rounded once, so that e.g. `3 × 10^-1` is exactly `0.3`.
fn tick_value(j: i64, k: i32) -> f64 {
    if k >= 0 {
        j as f64 * pow10(k)
    } else {
        j as f64 / pow10(-k)
    }
}

/// Labels for ticks that are multiples of `m × 10^k`: fixed notation with
/// just enough decimals for the step (`0.2`, `1500`), scientific notation
/// (`1.5e6`, `2e-12`) for magnitudes from 1e6 up or steps below 1e-4.
fn tick_labels(values: &[f64], k: i32) -> Vec<(f64, String)> {
    let max_abs = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let fixed = k >= -4 && max_abs < 1e6;
    values
        .iter()
        .map(|&v| {
            let label = if v == 0.0 {
                "0".to_string()
            } else if fixed {
                format!("{:.*}", (-k).max(0) as usize, v)
            } else {
                let digits = (exponent(v) - k).clamp(0, 16) as usize;
                sci(v, digits)
            };
            (v, label)
        })
        .collect()
}

/// Decimal exponent of a finite non-zero value, as Rust prints it.
fn exponent(v: f64) -> i32 {
    let s = format!("{v:e}");
    s.rsplit('e')
        .next()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0)
}

/// Scientific notation with at most `digits` fraction digits, trailing zeros
/// trimmed: `1.5e6`, `2e-12`, `-3.25e300`.
fn sci(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$e}");
    match s.split_once('e') {
        Some((mant, exp)) if mant.contains('.') => {
            let mant = mant.trim_end_matches('0').trim_end_matches('.');
            format!("{mant}e{exp}")
        }
        _ => s,
    }
}

/// Coordinate with one decimal (`-0.0` printed as `0.0`).
fn num(out: &mut String, v: f64) {
    let r = (v * 10.0).round() / 10.0;
    let r = if r == 0.0 { 0.0 } else { r };
    let _ = write!(out, "{r:.1}");
}

fn line(out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64) {
    out.push_str("<line x1=\"");
    num(out, x1);
    out.push_str("\" y1=\"");
    num(out, y1);
    out.push_str("\" x2=\"");
    num(out, x2);
    out.push_str("\" y2=\"");
    num(out, y2);
    out.push_str("\"/>\n");
}

fn text(out: &mut String, x: f64, y: f64, s: &str) {
    out.push_str("<text x=\"");
    num(out, x);
    out.push_str("\" y=\"");
    num(out, y);
    out.push_str("\">");
    esc(out, s);
    out.push_str("</text>\n");
}

/// XML-escape `s` into `out` (text and attribute values alike); characters
/// not allowed in XML 1.0 (and C1 controls) become U+FFFD.
pub(crate) fn esc(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\t' | '\n' | '\r' => continue,
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => "\u{fffd}",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// Relative references and http(s) URLs pass; any other scheme
/// (`javascript:`, `data:`, ...) becomes `#`.
fn safe_url(u: &str) -> &str {
    let end = u.find(['/', '?', '#']).unwrap_or(u.len());
    match u[..end].find(':') {
        None => u,
        Some(i) => {
            let scheme = &u[..i];
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
                u
            } else {
                "#"
            }
        }
    }
}

/// At most `max` characters, with `…` marking a cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f64, y: f64, label: &str) -> Point {
        Point {
            x,
            y,
            label: label.to_string(),
            url: format!("/records/{label}"),
        }
    }

    fn render(points: &[Point]) -> String {
        svg(&Plot {
            x_name: "params.n",
            y_name: "duration",
            points,
            title: Some("demo"),
        })
    }

    /// Minimal well-formedness check: balanced, properly nested tags, one
    /// root, quoted attributes without `<`, only the five predefined entities
    /// (or numeric ones), no stray `<`/`&` in text.
    fn check_xml(doc: &str) -> Result<(), String> {
        fn entities(s: &str) -> Result<(), String> {
            let mut rest = s;
            while let Some(i) = rest.find('&') {
                rest = &rest[i + 1..];
                let end = rest.find(';').ok_or("unterminated entity")?;
                let name = &rest[..end];
                let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || (name.starts_with('#') && name.len() > 1);
                if !ok {
                    return Err(format!("bad entity &{name};"));
                }
                rest = &rest[end + 1..];
            }
            Ok(())
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside root: {text:?}"));
            }
            entities(text)?;
            if text.contains('>') {
                return Err(format!("raw > in text: {text:?}"));
            }
            rest = &rest[lt + 1..];
            // Scan the tag up to its '>' honouring quoted attribute values.
            let mut end = None;
            let mut quote = None;
            for (i, c) in rest.char_indices() {
                match (quote, c) {
                    (None, '"' | '\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), '<') => return Err("< in attribute".into()),
                    (None, '<') => return Err("< inside tag".into()),
                    (None, '>') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated tag")?;
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            entities(tag)?;
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().ok_or("empty tag")?;
                if stack.is_empty() {
                    roots += 1;
                }
                // Attributes: name="value" pairs.
                let mut attrs = body[name.len()..].trim();
                while !attrs.is_empty() {
                    let eq = attrs.find('=').ok_or(format!("attr without =: {attrs}"))?;
                    let after = &attrs[eq + 1..];
                    let q = after.chars().next().ok_or("no value")?;
                    if q != '"' && q != '\'' {
                        return Err(format!("unquoted attr: {attrs}"));
                    }
                    let close = after[1..].find(q).ok_or("unterminated value")?;
                    attrs = after[close + 2..].trim_start();
                }
                if !self_closing {
                    stack.push(name);
                }
            }
        }
        if !rest.trim().is_empty() {
            return Err("trailing text".into());
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} roots"));
        }
        Ok(())
    }

    fn ticks(lo: f64, hi: f64) -> Vec<String> {
        let a = Axis::new(lo, hi);
        let n = a.ticks.len();
        assert!((4..=8).contains(&n), "{lo}..{hi}: {n} ticks {:?}", a.ticks);
        assert!(a.lo <= lo && a.hi >= hi, "{lo}..{hi}: domain {a:?}");
        for t in &a.ticks {
            assert!(t.0 >= a.lo - 1e-9 * (a.hi - a.lo) && t.0 <= a.hi + 1e-9 * (a.hi - a.lo));
        }
        // Equal, nice steps.
        let step = a.ticks[1].0 - a.ticks[0].0;
        let e = step.log10().floor();
        let m = step / 10f64.powf(e);
        assert!(
            [1.0, 2.0, 5.0, 10.0].iter().any(|c| (m - c).abs() < 1e-6),
            "{lo}..{hi}: step {step}"
        );
        for w in a.ticks.windows(2) {
            let tol = step * 1e-9 + w[1].0.abs() * 1e-15;
            assert!(((w[1].0 - w[0].0) - step).abs() <= tol, "{lo}..{hi}: {w:?}");
        }
        a.ticks.into_iter().map(|t| t.1).collect()
    }

    #[test]
    fn ticks_for_ranges() {
        assert_eq!(ticks(0.0, 1.0), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(
            ticks(0.001, 0.0047),
            ["0.0010", "0.0015", "0.0020", "0.0025", "0.0030", "0.0035", "0.0040", "0.0045"]
        );
        assert_eq!(
            ticks(-5.0, 1234.0),
            ["0", "200", "400", "600", "800", "1000", "1200"]
        );
        assert_eq!(ticks(1e6, 3e6), ["1e6", "1.5e6", "2e6", "2.5e6", "3e6"]);
        assert_eq!(
            ticks(7.0, 7.0),
            ["6.4", "6.6", "6.8", "7.0", "7.2", "7.4", "7.6"]
        );
        assert_eq!(ticks(0.0, 0.0), ["-1.0", "-0.5", "0", "0.5", "1.0"]);
        assert_eq!(ticks(-3.0, -1.0), ["-3.0", "-2.5", "-2.0", "-1.5", "-1.0"]);
        for (lo, hi) in [
            (1e-12, 1e-12),
            (1e-12, 5e-12),
            (1e300, 1e300),
            (-1e300, 1e300),
            (-f64::MAX, f64::MAX),
            (f64::MAX, f64::MAX),
            (5e-324, 5e-324),
            (1.0, 1.0 + 1e-15),
            (1e6, 1e6 + 0.3),
            (0.1, 0.3),
            (-0.7, 0.7),
            (3.0, 97.0),
            (99.0, 101.0),
            (0.0, 1e-5),
        ] {
            let labels = ticks(lo.max(-LIMIT), hi.min(LIMIT));
            for l in &labels {
                assert!(l.len() <= 14, "{lo}..{hi}: long label {l}");
                assert!(!l.contains("000000000"), "{lo}..{hi}: noisy label {l}");
            }
            // Labels distinguish ticks.
            let mut dedup = labels.clone();
            dedup.dedup();
            assert_eq!(dedup, labels, "{lo}..{hi}");
        }
        assert_eq!(ticks(1e-12, 5e-12)[0], "1e-12");
        assert_eq!(ticks(0.1, 0.3), ["0.10", "0.15", "0.20", "0.25", "0.30"]);
        assert_eq!(
            ticks(1e300, 1e300),
            ["9e299", "9.5e299", "1e300", "1.05e300", "1.1e300"]
        );
    }

    #[test]
    fn escapes_hostile_text() {
        let evil = "</title></circle></a><script>alert('x')</script>&amp;\"\u{0}\u{7}";
        let points = vec![
            Point {
                x: 1.0,
                y: 2.0,
                label: evil.to_string(),
                url: "/r/\"><script>alert(1)</script>?a=1&b=2".to_string(),
            },
            Point {
                x: 2.0,
                y: 3.0,
                label: "ok".to_string(),
                url: " JavaScript:alert(1)".to_string(),
            },
        ];
        let doc = svg(&Plot {
            x_name: "<x>&\"'",
            y_name: "</text><script>",
            points: &points,
            title: Some("<title>&'"),
        });
        check_xml(&doc).unwrap();
        assert!(!doc.contains("<script"), "{doc}");
        assert!(!doc.to_ascii_lowercase().contains("javascript:"));
        assert!(!doc.contains('\u{0}') && !doc.contains('\u{7}'));
        assert!(doc.contains(
            "<title>&lt;/title&gt;&lt;/circle&gt;&lt;/a&gt;&lt;script&gt;alert(&apos;x&apos;)\
             &lt;/script&gt;&amp;amp;&quot;\u{fffd}\u{fffd}</title>"
        ));
        assert!(
            doc.contains("href=\"/r/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;?a=1&amp;b=2\"")
        );
        assert!(doc.contains(">&lt;x&gt;&amp;&quot;&apos;</text>"));
        assert!(doc.contains(">&lt;/text&gt;&lt;script&gt;</text>"));
        assert!(doc.contains("<a href=\"#\" xlink:href=\"#\">"));
    }

    #[test]
    fn urls() {
        assert_eq!(safe_url("/records/abc"), "/records/abc");
        assert_eq!(safe_url("abc?x=a:b"), "abc?x=a:b");
        assert_eq!(safe_url("https://x/y"), "https://x/y");
        assert_eq!(safe_url("HTTP://x/y"), "HTTP://x/y");
        assert_eq!(safe_url("javascript:alert(1)"), "#");
        assert_eq!(safe_url("data:text/html,x"), "#");
        assert_eq!(safe_url("java\tscript:x"), "#");
    }

    #[test]
    fn degenerate_inputs() {
        let cases: Vec<Vec<Point>> = vec![
            vec![],
            vec![pt(f64::NAN, 1.0, "a"), pt(1.0, f64::INFINITY, "b")],
            vec![pt(3.0, 4.0, "one")],
            vec![pt(5.0, 1.0, "a"), pt(5.0, 2.0, "b"), pt(5.0, 3.0, "c")],
            vec![pt(1.0, -2.0, "a"), pt(2.0, -2.0, "b")],
            vec![pt(1e-12, 1e300, "a"), pt(3e-12, 2e300, "b")],
            vec![pt(-f64::MAX, f64::MAX, "a"), pt(f64::MAX, -f64::MAX, "b")],
            vec![pt(f64::MIN_POSITIVE, 5e-324, "a"), pt(0.0, -0.0, "b")],
            vec![pt(-7.5, -1e-9, "a"), pt(-7.4, -3e-9, "b")],
            vec![
                pt(f64::NEG_INFINITY, f64::NAN, "a"),
                pt(0.0, 0.0, "b"),
                pt(1.0, f64::NAN, "c"),
            ],
        ];
        for points in &cases {
            let doc = render(points);
            check_xml(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
            let lower = doc.to_ascii_lowercase();
            assert!(!lower.contains("nan") && !lower.contains("inf"), "{doc}");
            let finite = points.iter().filter(|p| is_drawable(p)).count();
            assert_eq!(doc.matches("<circle").count(), finite);
            assert_eq!(doc.contains("no numeric values"), finite == 0);
            // All coordinates stay inside the viewBox.
            for attr in [" cx=\"", " cy=\"", " x1=\"", " y2=\""] {
                for piece in doc.split(attr).skip(1) {
                    let v: f64 = piece[..piece.find('"').unwrap()].parse().unwrap();
                    assert!((0.0..=640.0).contains(&v), "{attr}{v}");
                }
            }
        }
    }

    #[test]
    /// Regression (SPEC 10.4): six records on three spots were drawn as
    /// three dots with no word about it.
    fn records_on_one_spot_are_counted() {
        let points = vec![
            pt(1.0, 10.0, "a"),
            pt(1.0, 10.0, "b"),
            pt(2.0, 20.0, "c"),
            pt(2.0, 20.0, "d"),
            pt(3.0, 15.0, "e"),
            pt(3.0, 15.0, "f"),
        ];
        let doc = render(&points);
        assert_eq!(doc.matches("<circle").count(), 3);
        assert!(doc.contains("<title>2 records here: a, b</title>"), "{doc}");
        assert!(
            doc.contains("3 dots stand for several records at one spot"),
            "{doc}"
        );
        let single = render(&points[..1]);
        assert!(!single.contains("stand for several"));
    }

    #[test]
    fn structure() {
        let points = vec![pt(1.0, 10.0, "a"), pt(2.0, 20.0, "b"), pt(3.0, 15.0, "c")];
        let doc = render(&points);
        assert!(doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "));
        assert!(doc.contains("xmlns:xlink=\"http://www.w3.org/1999/xlink\""));
        assert!(doc.contains("viewBox=\"0 0 640 400\""));
        assert!(doc.contains("preserveAspectRatio=\"xMidYMid meet\""));
        assert!(!doc.contains("<style") && !doc.contains("style=") && !doc.contains("<script"));
        assert!(doc.contains("<a href=\"/records/a\" xlink:href=\"/records/a\"><circle cx=\""));
        assert!(doc.contains("\" r=\"3\"><title>a</title></circle></a>"));
        assert!(doc.contains(">params.n</text>"));
        assert!(doc.contains("rotate(-90)\">duration</text>"));
        assert_eq!(doc, render(&points), "deterministic");
        // Larger x maps further right, larger y further up.
        let cx = |label: &str| -> (f64, f64) {
            let i = doc.find(&format!("/records/{label}\"><circle")).unwrap();
            let s = &doc[i..];
            let get = |k: &str| {
                let j = s.find(k).unwrap() + k.len();
                s[j..j + s[j..].find('"').unwrap()].parse::<f64>().unwrap()
            };
            (get("cx=\""), get("cy=\""))
        };
        let (a, b, c) = (cx("a"), cx("b"), cx("c"));
        assert!(a.0 < b.0 && b.0 < c.0);
        assert!(b.1 < c.1 && c.1 < a.1);
    }

    #[test]
    fn many_points() {
        let points: Vec<Point> = (0..100_000)
            .map(|i| {
                let x = i as f64;
                let y = if i % 1000 == 0 {
                    f64::NAN
                } else {
                    (x * 0.37).sin() * 1e3
                };
                Point {
                    x,
                    y,
                    label: format!("run {i}"),
                    url: format!("/records/{i}"),
                }
            })
            .collect();
        let doc = render(&points);
        assert_eq!(doc.matches("<circle").count(), 100_000 - 100);
        assert!(doc.len() < 100_000 * 140, "{} bytes", doc.len());
        check_xml(&doc).unwrap();
    }

    #[test]
    fn truncates_long_names() {
        let long = "x".repeat(500);
        let doc = svg(&Plot {
            x_name: &long,
            y_name: &long,
            points: &[],
            title: None,
        });
        check_xml(&doc).unwrap();
        assert!(doc.contains('…'));
        assert!(!doc.contains(&"x".repeat(61)));
    }
}
