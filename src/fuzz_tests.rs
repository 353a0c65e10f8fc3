//! Fuzz targets as property tests (proptest), run for a bounded number of
//! cases by `cargo test`: the record decoder and the whole request path
//! (URL, headers, body through routing, authentication, negotiation and the
//! handlers, on a real database) never panic and never answer 500, whatever
//! they are given. More cases: `PROPTEST_CASES=100000 cargo test --bin
//! sumatra-server fuzz_tests`.

use crate::error::Error;
use crate::http::{App, Config};
use crate::record;
use crate::store::{Level, OpenMode, Store, ANONYMOUS};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn valid_record(label: &str) -> Value {
    json!({
        "label": label, "timestamp": "2026-11-26 07:07:39+0200", "reason": "r", "outcome": "", "duration": 0.5,
        "executable": {"path": "/usr/bin/python", "version": "3.11.7", "name": "Python", "options": ""},
        "repository": {"url": "/x", "type": "GitRepository", "upstream": null},
        "main_file": "main.py", "version": "abc", "diff": "",
        "parameters": {"content": "a = 1", "type": "SimpleParameterSet"},
        "input_data": [], "script_arguments": "<parameters>",
        "launch_mode": {"type": "SerialLaunchMode", "parameters": {"working_directory": "/x"}},
        "datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/x/Data"}},
        "input_datastore": {"type": "FileSystemDataStore", "parameters": {"root": "/"}},
        "stdout_stderr": "Not launched.",
        "output_data": [{"path": "o.dat", "digest": "ab", "creation": null, "metadata": {"size": 1}}],
        "tags": ["a", "b"], "user": "", "dependencies": [], "platforms": [], "repeats": null,
    })
}

const FIELDS: &[&str] = &[
    "label",
    "timestamp",
    "reason",
    "outcome",
    "duration",
    "executable",
    "repository",
    "main_file",
    "version",
    "diff",
    "parameters",
    "input_data",
    "script_arguments",
    "launch_mode",
    "datastore",
    "input_datastore",
    "stdout_stderr",
    "output_data",
    "tags",
    "user",
    "dependencies",
    "platforms",
    "repeats",
    "unknown_extra",
];

/// Strings that look like what the decoder parses, and some that do not.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}[ T][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        "\\{'[a-z]{1,4}': (u'[a-z/]*'|None|[0-9]{1,3}|True)\\}",
        "[a-z, ]{0,12}",
        Just("Not launched.".to_string()),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        arb_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid record with some fields replaced by anything, or removed.
fn arb_record_body() -> impl Strategy<Value = Value> {
    vec(
        (
            proptest::sample::select(FIELDS),
            proptest::option::of(arb_json()),
        ),
        0..3,
    )
    .prop_map(|changes| {
        let mut r = valid_record("lbl");
        for (field, value) in changes {
            match value {
                Some(v) => r[field] = v,
                None => {
                    r.as_object_mut().unwrap().remove(field);
                }
            }
        }
        r
    })
}

/// Decoding gives a record or a 400, and a decoded record decodes to itself
/// again (what the store keeps is what it serves).
fn check_decode(body: &[u8], existing: Option<&record::Record>) -> Result<(), TestCaseError> {
    match record::decode_put(body, "lbl", existing) {
        Ok(rec) => {
            let v = serde_json::to_value(&rec).expect("a record serialises");
            let again = record::decode_value(v.clone());
            prop_assert!(
                again.is_ok(),
                "stored form does not decode: {v} {:?}",
                again.err()
            );
            prop_assert_eq!(again.unwrap(), rec);
        }
        Err(Error::BadRequest(_)) => {}
        Err(e) => prop_assert!(false, "not a 400: {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn record_decoder_takes_any_bytes(body in vec(any::<u8>(), 0..300)) {
        check_decode(&body, None)?;
    }

    #[test]
    fn record_decoder_takes_any_field_values(body in arb_record_body(), update in any::<bool>()) {
        let old = record::decode_value(valid_record("lbl")).unwrap();
        let bytes = serde_json::to_vec(&body).unwrap();
        check_decode(&bytes, update.then_some(&old))?;
    }

    #[test]
    fn record_decoder_takes_truncated_and_mutated_json(cut in 0usize..2000, flip in any::<(usize, u8)>()) {
        let mut bytes = serde_json::to_vec(&valid_record("lbl")).unwrap();
        let at = flip.0 % bytes.len();
        bytes[at] = flip.1;
        bytes.truncate(cut.min(bytes.len()));
        check_decode(&bytes, None)?;
    }
}

// ----- the request path ----------------------------------------------------------

/// One App on a database with user alice (admin of Priv), a public project
/// Pub and a record in each.
fn app() -> &'static App {
    static APP: OnceLock<(tempfile::TempDir, App)> = OnceLock::new();
    &APP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fuzz.db");
        let mut store = Store::open(&crate::store::Location::from(&db), OpenMode::Create).unwrap();
        let hash = bcrypt::hash("apw", 4).unwrap();
        store
            .write(|tx| {
                tx.add_user("alice", &hash)?;
                for p in ["Priv", "Pub"] {
                    tx.create_project(p, "", "")?;
                    tx.grant("alice", p, Level::Admin)?;
                }
                tx.grant(ANONYMOUS, "Pub", Level::Read)?;
                Ok(())
            })
            .unwrap();
        let app = App::new(Config {
            prefix: "/records/".into(),
            db: crate::store::Location::from(&db),
            durability: Default::default(),
            throttle: Default::default(),
            fallback_host: "127.0.0.1:1".into(),
            workers: 16,
            trash_days: 30,
        })
        .unwrap();
        for p in ["Priv", "Pub"] {
            let body = serde_json::to_vec(&valid_record("rec")).unwrap();
            let req = rouille::Request::fake_http(
                "PUT",
                format!("/records/{p}/rec/"),
                vec![("Authorization".into(), "Basic YWxpY2U6YXB3".into())],
                body,
            );
            assert_eq!(app.handle(&req).status_code, 201);
        }
        (dir, app)
    })
    .1
}

fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Priv".to_string()),
        Just("Pub".to_string()),
        Just("rec".to_string()),
        Just("last".to_string()),
        Just("permissions".to_string()),
        Just("tag".to_string()),
        Just("tagged".to_string()),
        Just("..".to_string()),
        Just("%2F".to_string()),
        Just("%ff".to_string()),
        "[A-Za-z0-9_.|%-]{0,10}",
        ".{0,6}",
    ]
}

/// Mostly well-formed API paths (so that requests reach the handlers),
/// some anything.
fn arb_url() -> impl Strategy<Value = String> {
    prop_oneof![3 => arb_api_url(), 1 => arb_any_url()]
}

fn arb_api_url() -> impl Strategy<Value = String> {
    let project = prop_oneof![
        Just("Priv".to_string()),
        Just("Pub".to_string()),
        Just("Nope".to_string()),
        arb_segment()
    ];
    let rest = prop_oneof![
        Just(String::new()),
        Just("rec/".to_string()),
        Just("last/".to_string()),
        Just("permissions/".to_string()),
        "[a-z0-9_.|-]{1,6}/",
        "tag(ged)?/[a-z%]{0,4}/",
        arb_segment().prop_map(|s| format!("{s}/")),
    ];
    let query = proptest::option::of(vec(
        (
            prop_oneof![
                Just("format"),
                Just("tags"),
                Just("limit"),
                Just("offset"),
                Just("page"),
                Just("login")
            ],
            "[a-z0-9,%+-]{0,8}",
        ),
        0..3,
    ));
    (project, rest, query).prop_map(|(p, r, q)| with_query(format!("/records/{p}/{r}"), q))
}

/// Appends `?k=v&k=v` when there is a query.
fn with_query<K: std::fmt::Display, V: std::fmt::Display>(
    mut url: String,
    query: Option<Vec<(K, V)>>,
) -> String {
    if let Some(q) = query {
        url.push('?');
        let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        url.push_str(&pairs.join("&"));
    }
    url
}

fn arb_any_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("/records/"),
            Just("/records"),
            Just("/"),
            Just("/other/")
        ],
        vec(arb_segment(), 0..4),
        any::<bool>(),
        proptest::option::of(vec(
            (
                prop_oneof![
                    Just("format"),
                    Just("tags"),
                    Just("limit"),
                    Just("offset"),
                    Just("page"),
                    Just("login"),
                    Just("x")
                ],
                ".{0,8}",
            ),
            0..3,
        )),
    )
        .prop_map(|(prefix, segments, slash, query)| {
            let slash = if slash { "/" } else { "" };
            with_query(format!("{prefix}{}{slash}", segments.join("/")), query)
        })
}

fn arb_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let accept = prop_oneof![
        Just("application/json".to_string()),
        Just("text/html".to_string()),
        Just("application/vnd.sumatra.record-v4+json, application/json".to_string()),
        Just("*/*;q=0.1, text/html;q=abc;charset=utf-8".to_string()),
        ".{0,20}",
    ];
    let auth = prop_oneof![
        4 => Just("Basic YWxpY2U6YXB3".to_string()),
        1 => Just("Basic YWxpY2U6d3Jvbmc=".to_string()),
        1 => "Basic [A-Za-z0-9+/=]{0,12}",
        1 => ".{0,12}",
    ];
    (
        proptest::option::of(accept),
        proptest::option::of(auth),
        proptest::option::of(".{0,12}"),
        vec(("[A-Za-z-]{1,10}", ".{0,10}"), 0..3),
    )
        .prop_map(|(accept, auth, ctype, extra)| {
            let mut h = extra;
            if let Some(a) = accept {
                h.push(("Accept".into(), a));
            }
            if let Some(a) = auth {
                h.push(("Authorization".into(), a));
            }
            if let Some(c) = ctype {
                h.push(("Content-Type".into(), c));
            }
            h
        })
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..200),
        3 => arb_record_body().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => "(user|level|x)=[a-z%0-9]{0,8}(&(user|level)=[a-z0-9]{0,8})?".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn request_path_never_fails_with_500(
        method in prop_oneof![
            proptest::sample::select(vec!["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]).prop_map(String::from),
            "[A-Z]{1,8}",
        ],
        url in arb_url(),
        headers in arb_headers(),
        body in arb_body(),
    ) {
        // Record bodies carry the URL's label, so that PUTs get past that check.
        let path = url.split('?').next().unwrap_or("");
        let body = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut m)) if m.get("label") == Some(&json!("lbl")) => {
                let label = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                m.insert("label".into(), json!(label));
                serde_json::to_vec(&m).unwrap()
            }
            _ => body,
        };
        let req = rouille::Request::fake_http(method.clone(), url.clone(), headers.clone(), body);
        let resp = app().handle(&req);
        prop_assert!(resp.status_code < 500, "{method} {url} {headers:?}: {}", resp.status_code);
        if std::env::var_os("FUZZ_STATS").is_some() {
            eprintln!("FUZZ {method} {} {}", resp.status_code, url);
        }
        // Nothing of Priv answers a caller without alice's credentials.
        let authorised = headers.iter().any(|(k, v)| k == "Authorization" && v == "Basic YWxpY2U6YXB3");
        if path.starts_with("/records/Priv/") && !authorised {
            prop_assert!(
                !(200..300).contains(&resp.status_code) || method == "OPTIONS",
                "{method} {url} {headers:?} answered {} without credentials", resp.status_code
            );
        }
    }
}
