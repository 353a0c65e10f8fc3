//! A reader for the Python literals that old Sumatra databases stored as text
//! (`"{'root': u'/x', 'size': 2500, 'mimetype': None}"`). It reads data only:
//! dicts, lists, tuples, strings, numbers, `None`, `True`, `False`. Nothing is
//! ever evaluated.

use serde_json::{Map, Number, Value};

const MAX_DEPTH: usize = 64;

pub fn parse(s: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        src: s,
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected text after the literal"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("not a Python literal: {what} at byte {}", self.i)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'{') => self.dict(depth),
            Some(b'[') => self.seq(b']', depth),
            Some(b'(') => self.seq(b')', depth),
            Some(b'\'' | b'"') => self.string().map(Value::String),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let word = &self.src[start..self.i];
                match (word, self.peek()) {
                    ("None", _) => Ok(Value::Null),
                    ("True", _) => Ok(Value::Bool(true)),
                    ("False", _) => Ok(Value::Bool(false)),
                    (w, Some(b'\'' | b'"'))
                        if w.len() <= 2 && w.chars().all(|c| "uUbBrR".contains(c)) =>
                    {
                        let raw = w.contains(['r', 'R']);
                        self.string_raw(raw).map(Value::String)
                    }
                    _ => {
                        self.i = start;
                        Err(self.err(&format!("unknown name {word:?}")))
                    }
                }
            }
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Value::Object(m));
            }
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                Value::Null => "None".to_string(),
                _ => return Err(self.err("a dict key must be a string or a number")),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            let v = self.value(depth + 1)?;
            m.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err("expected ',' or a closing bracket")),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.string_raw(false)
    }

    fn string_raw(&mut self, raw: bool) -> Result<String, String> {
        let quote = self.peek().ok_or_else(|| self.err("expected a string"))?;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let mut chars = rest.chars();
            let c = chars
                .next()
                .ok_or_else(|| self.err("unterminated string"))?;
            self.i += c.len_utf8();
            if c as u32 == quote as u32 {
                return Ok(out);
            }
            if c != '\\' || raw {
                if raw && c == '\\' {
                    // A raw string still cannot end in an escaped quote.
                    out.push(c);
                    if let Some(n) = self.src[self.i..].chars().next() {
                        out.push(n);
                        self.i += n.len_utf8();
                    }
                    continue;
                }
                out.push(c);
                continue;
            }
            let e = self.src[self.i..]
                .chars()
                .next()
                .ok_or_else(|| self.err("unterminated escape"))?;
            self.i += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' | '\'' | '"' => out.push(e),
                '\n' => {}
                'x' => out.push(self.hex(2)?),
                'u' => out.push(self.hex(4)?),
                'U' => out.push(self.hex(8)?),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, String> {
        let digits = self
            .src
            .get(self.i..self.i + n)
            .ok_or_else(|| self.err("short escape"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.err("bad escape"))?;
        self.i += n;
        char::from_u32(code).ok_or_else(|| self.err("bad escape"))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b'_'))
        {
            // Stop at a sign that is not part of an exponent.
            let c = self.s[self.i];
            if (c == b'-' || c == b'+')
                && self.i > start
                && !matches!(self.s[self.i - 1], b'e' | b'E')
            {
                break;
            }
            self.i += 1;
        }
        let text: String = self.src[start..self.i]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        let text = text.trim_end_matches(['L', 'l']);
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = Number::from_f64(f) {
                return Ok(Value::Number(n));
            }
        }
        self.i = start;
        Err(self.err(&format!("bad number {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn reads_old_sumatra_literals() {
        assert_eq!(
            parse("{'mimetype': None, 'size': 2500, 'encoding': None}").unwrap(),
            json!({"mimetype": null, "size": 2500, "encoding": null})
        );
        assert_eq!(
            parse("{'root': u'/Users/a/Data'}").unwrap(),
            json!({"root": "/Users/a/Data"})
        );
        assert_eq!(parse("{}").unwrap(), json!({}));
        assert_eq!(
            parse(r#"{"a": [1, 2.5, -3e2, (True, False)], 'b': 'it\'s\n', 'c': 10L,}"#).unwrap(),
            json!({"a": [1, 2.5, -300.0, [true, false]], "b": "it's\n", "c": 10})
        );
        assert_eq!(parse("u'\\u00e9t\\xe9'").unwrap(), json!("été"));
    }

    #[test]
    fn refuses_code() {
        for bad in [
            "__import__('os')",
            "{'a': open('x')}",
            "{'a' 1}",
            "[1, 2",
            "{'a': 1} x",
            "'abc",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
