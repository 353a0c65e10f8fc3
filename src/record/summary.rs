//! The fields of a stored record that a result table shows (SPEC 7.3),
//! read from its JSON without building the whole tree. A CSV of 100 000
//! records reads each one once, and most of a record (platforms, output
//! data, launch mode, the diff) is skipped over unparsed; the texts kept
//! borrow from the stored JSON where they hold no escapes.
//!
//! The reading is lenient as a `serde_json::Value` would be: a field of
//! another shape than the wire format's is empty, never an error.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A scalar field: text, a number, or nothing (null, a boolean, a list or
/// an object).
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Scalar<'a> {
    #[default]
    Empty,
    Number(f64),
    Text(Cow<'a, str>),
}

impl Scalar<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// What a table reads of a record.
#[derive(Debug, Default)]
pub struct Summary<'a> {
    pub label: Scalar<'a>,
    pub timestamp: Scalar<'a>,
    pub reason: Scalar<'a>,
    pub outcome: Scalar<'a>,
    pub duration: Scalar<'a>,
    pub user: Scalar<'a>,
    pub main_file: Scalar<'a>,
    pub version: Scalar<'a>,
    pub script_arguments: Scalar<'a>,
    pub stdout_stderr: Scalar<'a>,
    /// `executable.name`.
    pub executable: Scalar<'a>,
    /// `repository.url`.
    pub repository: Scalar<'a>,
    /// The tags that are text.
    pub tags: Vec<Cow<'a, str>>,
    /// `(name, version)` of each dependency, in order.
    pub dependencies: Vec<(Scalar<'a>, Scalar<'a>)>,
}

impl<'a> Summary<'a> {
    /// Reads a stored record's JSON; an error only if it is not JSON.
    pub fn read(json: &'a str) -> serde_json::Result<Summary<'a>> {
        let mut de = serde_json::Deserializer::from_str(json);
        let s = Lenient(SummarySeed).deserialize(&mut de)?;
        de.end()?;
        Ok(s)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Empty)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Empty)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Empty)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Scalar::Empty)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Scalar::Empty)
    }
}

/// Any value, kept if it is a scalar.
#[derive(Clone, Copy)]
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A reader of one shape of value (an object or a list); a value of any
/// other shape is read over and gives `empty()`.
trait Shape<'de>: Sized {
    type Value;
    fn empty() -> Self::Value;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Self::empty())
    }
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Self::empty())
    }
}

/// Reads any value with a [`Shape`].
struct Lenient<S>(S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Lenient<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Lenient<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.seq(seq)
    }
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(S::empty())
    }
}

/// The scalars under some keys of an object.
struct Pick<const N: usize>([&'static str; N]);

impl<'de, const N: usize> Shape<'de> for Pick<N> {
    type Value = [Scalar<'de>; N];
    fn empty() -> Self::Value {
        std::array::from_fn(|_| Scalar::Empty)
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Self::empty();
        while let Some(key) = map.next_key_seed(ScalarSeed)? {
            match self.0.iter().position(|k| key.as_str() == Some(k)) {
                Some(i) => out[i] = map.next_value_seed(ScalarSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A list, each element read by `seed`.
struct List<S>(S);

impl<'de, S: DeserializeSeed<'de> + Copy> Shape<'de> for List<S> {
    type Value = Vec<S::Value>;
    fn empty() -> Self::Value {
        Vec::new()
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(out)
    }
}

#[derive(Clone, Copy)]
struct DepItem;

impl<'de> DeserializeSeed<'de> for DepItem {
    type Value = [Scalar<'de>; 2];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Lenient(Pick(["name", "version"])).deserialize(d)
    }
}

struct SummarySeed;

impl<'de> Shape<'de> for SummarySeed {
    type Value = Summary<'de>;
    fn empty() -> Self::Value {
        Summary::default()
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut s = Summary::default();
        while let Some(key) = map.next_key_seed(ScalarSeed)? {
            let slot = match key.as_str() {
                Some("label") => &mut s.label,
                Some("timestamp") => &mut s.timestamp,
                Some("reason") => &mut s.reason,
                Some("outcome") => &mut s.outcome,
                Some("duration") => &mut s.duration,
                Some("user") => &mut s.user,
                Some("main_file") => &mut s.main_file,
                Some("version") => &mut s.version,
                Some("script_arguments") => &mut s.script_arguments,
                Some("stdout_stderr") => &mut s.stdout_stderr,
                Some("executable") => {
                    [s.executable] = map.next_value_seed(Lenient(Pick(["name"])))?;
                    continue;
                }
                Some("repository") => {
                    [s.repository] = map.next_value_seed(Lenient(Pick(["url"])))?;
                    continue;
                }
                Some("tags") => {
                    s.tags = map
                        .next_value_seed(Lenient(List(ScalarSeed)))?
                        .into_iter()
                        .filter_map(|t| match t {
                            Scalar::Text(t) => Some(t),
                            _ => None,
                        })
                        .collect();
                    continue;
                }
                Some("dependencies") => {
                    s.dependencies = map
                        .next_value_seed(Lenient(List(DepItem)))?
                        .into_iter()
                        .map(|[n, v]| (n, v))
                        .collect();
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value_seed(ScalarSeed)?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_tables_show_and_skips_the_rest() {
        let json = r#"{"label": "r1", "timestamp": "2024-05-01 10:00:00", "reason": "a \"quoted\" reason",
            "duration": 1.5, "outcome": null, "user": 7, "platforms": [{"x": [1, {"y": 2}]}],
            "executable": {"path": "/usr/bin/python", "name": "Python"},
            "repository": null, "tags": ["b", 3, "a"],
            "dependencies": [{"name": "numpy", "version": "2.0.1"}, "odd", {"name": "scipy"}],
            "main_file": ["not", "text"]}"#;
        let s = Summary::read(json).unwrap();
        assert_eq!(s.label, Scalar::Text("r1".into()));
        assert!(matches!(s.label, Scalar::Text(Cow::Borrowed(_))));
        assert_eq!(s.reason, Scalar::Text("a \"quoted\" reason".into()));
        assert_eq!(s.duration, Scalar::Number(1.5));
        assert_eq!(s.outcome, Scalar::Empty);
        assert_eq!(s.user, Scalar::Number(7.0));
        assert_eq!(s.executable, Scalar::Text("Python".into()));
        assert_eq!(s.repository, Scalar::Empty);
        assert_eq!(s.main_file, Scalar::Empty);
        assert_eq!(s.tags, vec!["b", "a"]);
        assert_eq!(
            s.dependencies,
            vec![
                (Scalar::Text("numpy".into()), Scalar::Text("2.0.1".into())),
                (Scalar::Empty, Scalar::Empty),
                (Scalar::Text("scipy".into()), Scalar::Empty),
            ]
        );
        assert!(Summary::read("{\"label\": ").is_err());
        assert!(Summary::read("[1]").unwrap().tags.is_empty());
        assert_eq!(Summary::read("\"x\"").unwrap().label, Scalar::Empty);
    }
}
