//! A lineage drawn (SPEC 9.3): records as boxes in columns by depth
//! (ancestors to the left, descendants to the right), links as arrows
//! labelled with the file name, as SVG drawn on the server (no JavaScript)
//! and as Graphviz DOT text. Every text is escaped for its format: names
//! of files and reasons are the scientists' own, and may be hostile.

use super::plot::esc;
use std::fmt::Write;

/// A record's box.
pub struct Box {
    pub key: String,
    pub label: String,
    pub project: String,
    pub date: String,
    pub reason: String,
    pub url: String,
    pub depth: i32,
    pub current: bool,
}

/// An arrow: `from` made the file `to` read.
pub struct Arrow {
    pub from: String,
    pub to: String,
    pub file: String,
    pub file_url: String,
    pub out_of_order: bool,
}

/// Boxes and arrows of a lineage; `record_url` and `digest_url` give the
/// pages they link to.
pub fn of_lineage(
    l: &crate::lineage::Lineage,
    record_url: impl Fn(&crate::lineage::Node) -> String,
    digest_url: impl Fn(&str) -> String,
) -> (Vec<Box>, Vec<Arrow>) {
    let key = |n: &crate::lineage::Node| format!("{}/{}", n.project, n.label);
    let boxes = l
        .records
        .iter()
        .map(|(n, d)| Box {
            key: key(n),
            label: n.label.clone(),
            project: n.project.clone(),
            date: n.timestamp.chars().take(16).collect(),
            reason: n.reason.clone(),
            url: record_url(n),
            depth: *d,
            current: n.id == l.start,
        })
        .collect();
    let arrows = l
        .links
        .iter()
        .filter_map(|k| {
            Some(Arrow {
                from: key(l.node(k.from)?),
                to: key(l.node(k.to)?),
                file: k.from_path.clone(),
                file_url: digest_url(&k.digest),
                out_of_order: k.out_of_order,
            })
        })
        .collect();
    (boxes, arrows)
}

const BOX_W: i32 = 190;
const BOX_H: i32 = 58;
const GAP_X: i32 = 120;
const GAP_Y: i32 = 26;
const PAD: i32 = 16;

/// The start of a text, at most `n` characters, with an ellipsis when cut.
fn short(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// The last part of a path: the file's name.
pub fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\'])
        .find(|p| !p.is_empty())
        .unwrap_or(path)
}

/// Places each box: (x, y) of its top left corner; and the picture's size.
fn layout(boxes: &[Box]) -> (Vec<(i32, i32)>, i32, i32) {
    let min = boxes.iter().map(|b| b.depth).min().unwrap_or(0);
    let mut rows: std::collections::HashMap<i32, i32> = std::collections::HashMap::new();
    let mut at = Vec::with_capacity(boxes.len());
    let (mut w, mut h) = (0, 0);
    for b in boxes {
        let col = b.depth - min;
        let row = rows.entry(col).or_insert(0);
        let x = PAD + col * (BOX_W + GAP_X);
        let y = PAD + *row * (BOX_H + GAP_Y);
        *row += 1;
        w = w.max(x + BOX_W + PAD);
        h = h.max(y + BOX_H + PAD);
        at.push((x, y));
    }
    (at, w.max(2 * PAD), h.max(2 * PAD))
}

/// The lineage as an SVG picture.
pub fn svg(boxes: &[Box], arrows: &[Arrow]) -> String {
    let (at, w, h) = layout(boxes);
    let place = |key: &str| boxes.iter().position(|b| b.key == key).map(|i| at[i]);
    let mut out = String::with_capacity(1024 + 400 * (boxes.len() + arrows.len()));
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"lineage\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"lineage graph\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\"/></marker></defs>\n"
    );
    for a in arrows {
        let (Some((x1, y1)), Some((x2, y2))) = (place(&a.from), place(&a.to)) else {
            continue;
        };
        let (sx, sy) = (x1 + BOX_W, y1 + BOX_H / 2);
        let (ex, ey) = (x2, y2 + BOX_H / 2);
        let class = if a.out_of_order { "link late" } else { "link" };
        // Forward arrows are straight; others (a cycle, a link within a
        // column) bend around.
        let d = if ex > sx {
            format!("M {sx} {sy} L {ex} {ey}")
        } else {
            let bend = sy.min(ey) - BOX_H;
            format!(
                "M {sx} {sy} C {} {bend} {} {bend} {ex} {ey}",
                sx + 60,
                ex - 60
            )
        };
        let _ = writeln!(
            out,
            "<path class=\"{class}\" d=\"{d}\" fill=\"none\" marker-end=\"url(#arrow)\"/>"
        );
        let (mx, my) = ((sx + ex) / 2, (sy + ey) / 2 - 4);
        out.push_str("<a href=\"");
        esc(&mut out, &a.file_url);
        let _ = write!(
            out,
            "\"><text class=\"file\" x=\"{mx}\" y=\"{my}\" text-anchor=\"middle\">"
        );
        esc(&mut out, &short(file_name(&a.file), 24));
        if a.out_of_order {
            out.push_str(" (out of order)");
        }
        out.push_str("</text></a>\n");
    }
    for (b, (x, y)) in boxes.iter().zip(&at) {
        let class = if b.current { "node current" } else { "node" };
        out.push_str("<a href=\"");
        esc(&mut out, &b.url);
        let _ = write!(
            out,
            "\"><title>{}</title><rect class=\"{class}\" x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\"/>",
            {
                let mut t = String::new();
                esc(&mut t, &format!("{}/{}", b.project, b.label));
                t
            }
        );
        for (i, (text, class)) in [
            (short(&b.label, 26), "label"),
            (b.date.clone(), "date"),
            (short(&b.reason, 28), "reason"),
        ]
        .iter()
        .enumerate()
        {
            let _ = write!(
                out,
                "<text class=\"{class}\" x=\"{}\" y=\"{}\">",
                x + 8,
                y + 17 + 16 * i as i32
            );
            esc(&mut out, text);
            out.push_str("</text>");
        }
        out.push_str("</a>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// A DOT string literal: quotes, backslashes and line breaks escaped.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lineage as Graphviz text (`dot -Tsvg`).
pub fn dot(boxes: &[Box], arrows: &[Arrow]) -> String {
    let mut out = String::from("digraph lineage {\n  rankdir=LR;\n  node [shape=box];\n");
    for b in boxes {
        let label = format!("{}\n{}\n{}", b.label, b.date, short(&b.reason, 40));
        let _ = writeln!(
            out,
            "  {} [label={}, URL={}{}];",
            dot_str(&b.key),
            dot_str(&label),
            dot_str(&b.url),
            if b.current { ", style=bold" } else { "" }
        );
    }
    for a in arrows {
        let mut label = file_name(&a.file).to_string();
        if a.out_of_order {
            label.push_str(" (out of order)");
        }
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{}];",
            dot_str(&a.from),
            dot_str(&a.to),
            dot_str(&label),
            if a.out_of_order { ", style=dashed" } else { "" }
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(key: &str, depth: i32, reason: &str) -> Box {
        Box {
            key: key.into(),
            label: key.into(),
            project: "P".into(),
            date: "2026-01-01 00:00:00".into(),
            reason: reason.into(),
            url: format!("/records/P/{key}/"),
            depth,
            current: depth == 0,
        }
    }

    #[test]
    fn hostile_names_are_escaped_in_both_formats() {
        let boxes = [
            b("a", -1, "<script>alert(1)</script>"),
            b("b", 0, "\"x\"\n}"),
        ];
        let arrows = [Arrow {
            from: "a".into(),
            to: "b".into(),
            file: "dir/<img src=x onerror=alert(1)>\".dat".into(),
            file_url: "/records/?digest=\"><script>".into(),
            out_of_order: true,
        }];
        let s = svg(&boxes, &arrows);
        assert!(!s.contains("<script>") && !s.contains("<img"), "{s}");
        // The arrow names the file by its name, cut at 24 characters.
        assert!(
            s.contains(">&lt;img src=x onerror=alert… (out of order)</text>"),
            "{s}"
        );
        assert!(
            s.contains("href=\"/records/?digest=&quot;&gt;&lt;script&gt;\""),
            "{s}"
        );
        assert!(s.contains("(out of order)"));
        let d = dot(&boxes, &arrows);
        assert!(
            d.contains(r#"  "b" [label="b\n2026-01-01 00:00:00\n\"x\"\n}", URL="/records/P/b/", style=bold];"#),
            "{d}"
        );
        assert!(d.contains(r#""a" -> "b" [label="<img src=x onerror=alert(1)>\".dat (out of order)", style=dashed];"#), "{d}");
        // Every line of the DOT text is one statement (no line broken by a name).
        assert_eq!(d.lines().count(), 3 + 2 + 1 + 1);
    }

    #[test]
    fn columns_by_depth_and_arrows_between_boxes() {
        let boxes = [
            b("up", -1, ""),
            b("me", 0, ""),
            b("down1", 1, ""),
            b("down2", 1, ""),
        ];
        let (at, w, h) = layout(&boxes);
        assert!(at[0].0 < at[1].0 && at[1].0 < at[2].0, "{at:?}");
        assert_eq!(at[2].0, at[3].0);
        assert!(at[3].1 > at[2].1);
        assert!(w > 3 * BOX_W && h > 2 * BOX_H);
        assert_eq!(file_name("Data/20261205-220231/result.txt"), "result.txt");
        assert_eq!(file_name("result.txt"), "result.txt");
    }
}
