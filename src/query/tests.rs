//! Tests of the public API: parse, parse_optional, parse_field, parse_sort,
//! parse_columns.

use super::*;

fn p(text: &str) -> Expr {
    match parse(text) {
        Ok(e) => e,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> (usize, String) {
    match parse(text) {
        Ok(e) => panic!("{text:?} parsed as {e:?}"),
        Err(e) => {
            assert_eq!(e.context, ErrorContext::Query);
            assert_eq!(
                e.to_string(),
                format!("query: column {}: {}", e.column, e.message)
            );
            (e.column, e.message)
        }
    }
}

fn param(k: &str) -> Field {
    Field::Param(k.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn cmp(field: Field, op: Op, value: Value) -> Expr {
    Expr::Compare { field, op, value }
}

fn n(name: &str, x: f64) -> Expr {
    cmp(param(name), Op::Eq, Value::Number(x))
}

/// Parses, checks Display round-trips, returns the expression.
fn rt(text: &str) -> Expr {
    let e = p(text);
    let shown = e.to_string();
    assert_eq!(parse(&shown), Ok(e.clone()), "{text:?} shown as {shown:?}");
    e
}

#[test]
fn precedence() {
    let e = rt("params.a = 1 or params.b = 2 and not params.c = 3");
    assert_eq!(
        e,
        Expr::Or(vec![
            n("a", 1.0),
            Expr::And(vec![n("b", 2.0), Expr::Not(Box::new(n("c", 3.0)))]),
        ])
    );
    let e = rt("(params.a = 1 or params.b = 2) and params.c = 3");
    assert_eq!(
        e,
        Expr::And(vec![Expr::Or(vec![n("a", 1.0), n("b", 2.0)]), n("c", 3.0)])
    );
    let e = rt("not (params.a = 1 and params.b = 2)");
    assert_eq!(
        e,
        Expr::Not(Box::new(Expr::And(vec![n("a", 1.0), n("b", 2.0)])))
    );
    let e = rt("not not params.a = 1");
    assert_eq!(e, Expr::Not(Box::new(Expr::Not(Box::new(n("a", 1.0))))));
}

#[test]
fn flattening_and_parentheses() {
    let e = rt("params.a = 1 and (params.b = 2 and params.c = 3) and ((params.d = 4))");
    assert_eq!(
        e,
        Expr::And(vec![n("a", 1.0), n("b", 2.0), n("c", 3.0), n("d", 4.0)])
    );
    let e = rt("(params.a = 1 or params.b = 2) or params.c = 3");
    assert_eq!(e, Expr::Or(vec![n("a", 1.0), n("b", 2.0), n("c", 3.0)]));
    assert_eq!(rt("((((params.a = 1))))"), n("a", 1.0));
}

#[test]
fn keywords_any_case() {
    let e = p("params.a = 1 OR params.b = 2 And NOT params.c = 3");
    assert_eq!(e, p("params.a = 1 or params.b = 2 and not params.c = 3"));
    assert_eq!(
        p("tag IN (a, B)"),
        Expr::In {
            field: Field::Tag,
            values: vec![text("a"), text("B")]
        }
    );
    assert_eq!(p("label EXISTS"), Expr::Exists(Field::Label));
    assert_eq!(p("label Exists"), Expr::Exists(Field::Label));
    assert_eq!(
        p("params.x = TRUE or params.x = False or params.x = NONE"),
        Expr::Or(vec![
            cmp(param("x"), Op::Eq, Value::Bool(true)),
            cmp(param("x"), Op::Eq, Value::Bool(false)),
            cmp(param("x"), Op::Eq, Value::None),
        ])
    );
}

#[test]
fn every_operator() {
    for (s, op) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
    ] {
        assert_eq!(
            rt(&format!("params.n {s} 50")),
            cmp(param("n"), op, Value::Number(50.0))
        );
        // Without spaces too.
        assert_eq!(
            p(&format!("params.n{s}-2")),
            cmp(param("n"), op, Value::Number(-2.0))
        );
    }
    assert_eq!(
        rt("label ~ Run"),
        cmp(Field::Label, Op::Contains, text("Run"))
    );
    assert_eq!(
        rt("label !~ 'tmp'"),
        cmp(Field::Label, Op::NotContains, text("tmp"))
    );
    assert_eq!(
        rt("params.x in (1, 'a', true, none)"),
        Expr::In {
            field: param("x"),
            values: vec![
                Value::Number(1.0),
                text("a"),
                Value::Bool(true),
                Value::None
            ]
        }
    );
    assert_eq!(
        rt("params.x in(1)"),
        Expr::In {
            field: param("x"),
            values: vec![Value::Number(1.0)]
        }
    );
    assert_eq!(
        rt("deps.numpy exists"),
        Expr::Exists(Field::Dep("numpy".into()))
    );
    assert_eq!(rt("tag exists"), Expr::Exists(Field::Tag));
}

#[test]
fn every_value_form() {
    let v = |q: &str| match p(&format!("params.x = {q}")) {
        Expr::Compare { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(v("3"), Value::Number(3.0));
    assert_eq!(v("-2.5"), Value::Number(-2.5));
    assert_eq!(v("1e-3"), Value::Number(0.001));
    assert_eq!(v("1E+3"), Value::Number(1000.0));
    assert_eq!(v(".5"), Value::Number(0.5));
    assert_eq!(v("007"), Value::Number(7.0));
    assert_eq!(v("1e-999"), Value::Number(0.0));
    assert_eq!(v("\"3\""), text("3"));
    assert_eq!(v("'3'"), text("3"));
    assert_eq!(v(r#""say \"hi\"""#), text("say \"hi\""));
    assert_eq!(v(r"'it\'s'"), text("it's"));
    assert_eq!(v(r#""a\\b\n""#), text("a\\b\\n"));
    assert_eq!(v("\"\""), text(""));
    assert_eq!(v("\"true\""), text("true"));
    assert_eq!(v("true"), Value::Bool(true));
    assert_eq!(v("false"), Value::Bool(false));
    assert_eq!(v("none"), Value::None);
    assert_eq!(v("normal"), text("normal"));
    assert_eq!(v("2024-05-01"), text("2024-05-01"));
    assert_eq!(v("v1.2"), text("v1.2"));
    assert_eq!(v("nan"), text("nan"));
    assert_eq!(v("inf"), text("inf"));
    assert_eq!(v("-"), text("-"));
    assert_eq!(v("a_b-c.d:e/f"), text("a_b-c.d:e/f"));
    assert_eq!(
        v("https://github.com/a/b.git"),
        text("https://github.com/a/b.git")
    );
    assert_eq!(v("\"unicode ✓ é\""), text("unicode ✓ é"));
    assert_eq!(v("café"), text("café"));
}

#[test]
fn values_fitted_to_fields() {
    // Text fields keep the spelling of numbers and booleans.
    assert_eq!(p("label = 3.0"), cmp(Field::Label, Op::Eq, text("3.0")));
    assert_eq!(p("version = 1.2"), cmp(Field::Version, Op::Eq, text("1.2")));
    assert_eq!(p("reason = True"), cmp(Field::Reason, Op::Eq, text("True")));
    assert_eq!(
        p("outcome = none"),
        cmp(Field::Outcome, Op::Eq, Value::None)
    );
    assert_eq!(
        p("timestamp >= 2024-06-01"),
        cmp(Field::Timestamp, Op::Ge, text("2024-06-01"))
    );
    assert_eq!(
        p("timestamp < 2025"),
        cmp(Field::Timestamp, Op::Lt, text("2025"))
    );
    // Dependencies are versions: text.
    assert_eq!(
        rt("deps.numpy >= 2"),
        cmp(Field::Dep("numpy".into()), Op::Ge, text("2"))
    );
    assert_eq!(
        p("deps.scikit-learn = 1.4.2"),
        cmp(Field::Dep("scikit-learn".into()), Op::Eq, text("1.4.2"))
    );
    // Tags.
    assert_eq!(rt("tag = x"), cmp(Field::Tag, Op::Eq, text("x")));
    assert_eq!(rt("tag ~ bas"), cmp(Field::Tag, Op::Contains, text("bas")));
    assert_eq!(p("tag != 2024"), cmp(Field::Tag, Op::Ne, text("2024")));
    assert_eq!(
        p("tag in (1, b)"),
        Expr::In {
            field: Field::Tag,
            values: vec![text("1"), text("b")]
        }
    );
    // Duration is numeric.
    assert_eq!(
        rt("duration > 1.5"),
        cmp(Field::Duration, Op::Gt, Value::Number(1.5))
    );
    assert_eq!(
        rt("duration = none"),
        cmp(Field::Duration, Op::Eq, Value::None)
    );
    // Parameters keep the lexed type.
    assert_eq!(p("params.s = '50'"), cmp(param("s"), Op::Eq, text("50")));
    assert_eq!(p("params.s = fast"), cmp(param("s"), Op::Eq, text("fast")));
    // `~` is always text, spelled as written.
    assert_eq!(
        p("params.s ~ 1.50"),
        cmp(param("s"), Op::Contains, text("1.50"))
    );
    assert_eq!(
        p("params.s ~ True"),
        cmp(param("s"), Op::Contains, text("True"))
    );
    assert_eq!(
        p("label !~ none"),
        cmp(Field::Label, Op::NotContains, text("none"))
    );
    // Ordering on text is allowed.
    assert_eq!(p("label < b"), cmp(Field::Label, Op::Lt, text("b")));
    assert_eq!(p("params.s >= 'b'"), cmp(param("s"), Op::Ge, text("b")));
}

#[test]
fn every_field() {
    for name in [
        "label",
        "timestamp",
        "reason",
        "outcome",
        "duration",
        "user",
        "main_file",
        "version",
        "executable",
        "script_arguments",
        "repository",
        "stdout",
        "tag",
    ] {
        let e = rt(&format!("{name} exists"));
        let Expr::Exists(field) = e else { panic!() };
        assert_eq!(field.name(), name);
        assert_eq!(parse_field(name), Ok(field));
    }
}

#[test]
fn params_and_deps_keys() {
    assert_eq!(
        rt("params.model.layers = 3"),
        cmp(param("model.layers"), Op::Eq, Value::Number(3.0))
    );
    assert_eq!(
        rt("params.`odd key` = 'x'"),
        cmp(param("odd key"), Op::Eq, text("x"))
    );
    assert_eq!(
        rt(r"params.`a\`b\\c:d/e` exists"),
        Expr::Exists(param("a`b\\c:d/e"))
    );
    assert_eq!(rt("params.`plain`=1"), n("plain", 1.0));
    assert_eq!(rt("params.é_1 exists"), Expr::Exists(param("é_1")));
    assert_eq!(rt("params.and = 1"), n("and", 1.0));
    assert_eq!(
        rt("deps.`my pkg` != none"),
        cmp(Field::Dep("my pkg".into()), Op::Ne, Value::None)
    );
    assert_eq!(rt("params.Lr exists"), Expr::Exists(param("Lr")));
}

#[test]
fn whitespace_and_blank() {
    assert_eq!(
        p("  \t\nlabel\n=\tx  "),
        cmp(Field::Label, Op::Eq, text("x"))
    );
    assert_eq!(parse_optional(""), Ok(None));
    assert_eq!(parse_optional("  \n "), Ok(None));
    assert_eq!(parse_optional(" label = x"), Ok(Some(p("label = x"))));
    assert!(parse_optional("label =").is_err());
    assert_eq!(
        err(""),
        (
            1,
            "empty query: expected a condition such as label = x".into()
        )
    );
    assert_eq!(err("   ").0, 4);
}

#[test]
fn error_messages_and_columns() {
    let fields = "fields: label, timestamp, reason, outcome, duration, user, main_file, \
                  version, executable, script_arguments, repository, stdout, tag, \
                  input.digest, input.path, output.digest, output.path, parent, child, \
                  params.KEY, deps.NAME";
    let cases: Vec<(&str, usize, String)> = vec![
        (
            "label = ",
            9,
            "expected a value after \"=\", found end of query".into(),
        ),
        ("colour = red", 1, format!("unknown field \"colour\" ({fields})")),
        ("Label = x", 1, format!("unknown field \"Label\" ({fields})")),
        (
            "label = 'abc",
            9,
            "unterminated string: missing closing '".into(),
        ),
        (
            "(label = a",
            11,
            "unbalanced \"(\": expected \")\" to close the \"(\" at column 1, found end of query"
                .into(),
        ),
        (
            "label = a)",
            10,
            "unbalanced \")\": there is no matching \"(\"".into(),
        ),
        (
            "tag in ()",
            9,
            "empty \"in ()\" list: expected at least one value".into(),
        ),
        (
            "exists",
            1,
            "expected a field name before \"exists\"".into(),
        ),
        (
            "label = 1 exists",
            11,
            "expected \"and\", \"or\" or end of query, found \"exists\" (\"in\" and \"exists\" must directly follow a field name)".into(),
        ),
        (
            "label foo",
            7,
            "expected an operator (=, !=, <, <=, >, >=, ~, !~, in or exists) after \"label\", found \"foo\"".into(),
        ),
        (
            "label = a b",
            11,
            "expected \"and\", \"or\" or end of query, found \"b\"".into(),
        ),
        (
            "(label = a b)",
            12,
            "expected \"and\", \"or\" or \")\", found \"b\"".into(),
        ),
        (
            "label = a and",
            14,
            "expected a field name, \"not\" or \"(\", found end of query".into(),
        ),
        (
            "label = and",
            9,
            "expected a value after \"=\", found the keyword \"and\" (quote it to use it as text)"
                .into(),
        ),
        (
            "tag in (a,)",
            11,
            "expected a value after \",\", found \")\"".into(),
        ),
        (
            "tag in (a b)",
            11,
            "expected \",\" or \")\" in the \"in\" list, found \"b\"".into(),
        ),
        (
            "tag in (a, b",
            13,
            "expected \",\" or \")\" to close the \"in\" list opened at column 8, found end of query".into(),
        ),
        (
            "tag in a",
            8,
            "expected \"(\" after \"in\", found \"a\"".into(),
        ),
        ("()", 2, "empty parentheses: expected a condition".into()),
        (
            "\"label\" = x",
            1,
            "expected a field name, \"not\" or \"(\", found the string \"label\" (field names are not quoted)".into(),
        ),
        (
            "3 exists",
            1,
            "expected a field name, \"not\" or \"(\", found the number 3".into(),
        ),
        (
            "label == x",
            7,
            "use \"=\" to test equality, not \"==\"".into(),
        ),
        (
            "label = 1 && b = 2",
            11,
            "unexpected \"&\": use \"and\"".into(),
        ),
        (
            "label = x@y",
            10,
            "unexpected character \"@\" (put text containing it in quotes)".into(),
        ),
        (
            "params.n > +4",
            12,
            "unexpected \"+\": write positive numbers without a sign".into(),
        ),
        (
            "tag not in (a)",
            5,
            "expected an operator after \"tag\", found \"not\" (to negate, put \"not\" before the field: not tag ...)".into(),
        ),
        (
            "params. = 1",
            8,
            "expected a parameter key after \"params.\"".into(),
        ),
        (
            "params.a:b = 1",
            8,
            "parameter key \"a:b\" must be written in backticks: params.`a:b`".into(),
        ),
        (
            "deps.a/b = 1",
            6,
            "dependency name \"a/b\" must be written in backticks: deps.`a/b`".into(),
        ),
        (
            "params = 1",
            1,
            "expected \"params.KEY\", found \"params\" alone".into(),
        ),
        (
            "foo.`x` = 1",
            1,
            "unknown field \"foo.`x`\": backticks are only allowed after \"params.\" or \"deps.\"".into(),
        ),
        ("params.`` = 1", 8, "empty key in backticks".into()),
        (
            "params.n < true",
            12,
            "\"<\" needs a number or text, found true (only = and != accept true, false and none)".into(),
        ),
        (
            "params.n >= none",
            13,
            "\">=\" needs a number or text, found none (only = and != accept true, false and none)".into(),
        ),
        (
            "tag < x",
            5,
            "\"<\" cannot be used with tag: use =, !=, ~, !~, in or exists".into(),
        ),
        (
            "tag = none",
            7,
            "tag cannot be compared with none: use \"not tag exists\" for records without tags".into(),
        ),
        (
            "duration ~ 3",
            10,
            "\"~\" needs a text field, but duration is a number".into(),
        ),
        (
            "duration > fast",
            12,
            "duration is a number: expected a number, found \"fast\"".into(),
        ),
        (
            "duration in (1, true)",
            17,
            "duration is a number: expected a number, found true".into(),
        ),
        ("params.n = 1e999", 12, "number 1e999 is too large".into()),
        (
            "label ! x",
            7,
            "unexpected \"!\": expected \"!=\" or \"!~\" (use \"not\" to negate)".into(),
        ),
        (
            "label = x or",
            13,
            "expected a field name, \"not\" or \"(\", found end of query".into(),
        ),
        (
            "and label = x",
            1,
            "expected a field name, \"not\" or \"(\", found \"and\"".into(),
        ),
        (
            "label = = x",
            9,
            "expected a value after \"=\", found \"=\"".into(),
        ),
        (
            "label = (x)",
            9,
            "expected a value after \"=\", found \"(\"".into(),
        ),
        (
            "label in (x) in (y)",
            14,
            "expected \"and\", \"or\" or end of query, found \"in\" (\"in\" and \"exists\" must directly follow a field name)".into(),
        ),
    ];
    for (text, column, message) in cases {
        assert_eq!(err(text), (column, message), "{text:?}");
    }
}

#[test]
fn unicode_columns() {
    // Columns count characters, not bytes.
    assert_eq!(err("label = \"ééé\" foo").0, 15);
    assert_eq!(err("label = éé = x").0, 12);
    assert_eq!(err("label = ✓").0, 9);
    assert_eq!(err("label = '😀😀' and colour = x").0, 18);
    assert_eq!(err("label = '😀").0, 9);
    assert_eq!(err("label = é x").0, 11);
    assert_eq!(err("label ~ 日本語 and").0, 16);
}

#[test]
fn long_value_is_excerpted_in_message() {
    let long = "x".repeat(1000);
    let (column, message) = err(&format!("{long} = 1"));
    assert_eq!(column, 1);
    assert!(message.starts_with(&format!("unknown field \"{}…\"", "x".repeat(32))));
    assert!(message.len() < 300);
}

#[test]
fn length_bound() {
    let at = format!("label = \"{}\"", "é".repeat(MAX_QUERY_CHARS - 10));
    assert_eq!(at.chars().count(), MAX_QUERY_CHARS);
    assert!(parse(&at).is_ok());
    let past = format!("label = \"{}\"", "é".repeat(MAX_QUERY_CHARS - 9));
    assert_eq!(
        err(&past),
        (
            MAX_QUERY_CHARS + 1,
            "query is too long: at most 2000 characters are allowed".into()
        )
    );
    // Trailing whitespace counts too.
    let spaced = format!("label = x{}", " ".repeat(MAX_QUERY_CHARS));
    assert_eq!(err(&spaced).0, MAX_QUERY_CHARS + 1);
}

#[test]
fn comparison_bound() {
    let q = |k: usize| {
        (0..k)
            .map(|i| match i % 3 {
                0 => format!("params.p{i} = {i}"),
                1 => format!("tag in (c{i})"),
                _ => format!("deps.d{i} exists"),
            })
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let at = q(MAX_COMPARISONS);
    match parse(&at) {
        Ok(Expr::Or(items)) => assert_eq!(items.len(), MAX_COMPARISONS),
        other => panic!("{other:?}"),
    }
    let past = q(MAX_COMPARISONS + 1);
    let column = past.rfind(" or ").unwrap() + 5;
    assert!(past.ends_with("tag in (c64)"));
    let message = "too many comparisons: at most 64 are allowed \
                   (each value of an \"in\" list counts one)";
    assert_eq!(err(&past), (column, message.into()));
}

/// Regression (SPEC 7.6): `params.n in (0, 1, ..., 520)` was one comparison
/// however long, and held a handler 209 s.
#[test]
fn every_value_of_an_in_list_counts_as_a_comparison() {
    let list = |n: usize| {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        format!("params.n in ({})", values.join(", "))
    };
    match parse(&list(MAX_COMPARISONS)) {
        Ok(Expr::In { values, .. }) => assert_eq!(values.len(), MAX_COMPARISONS),
        other => panic!("{other:?}"),
    }
    let past = list(MAX_COMPARISONS + 1);
    let (column, message) = err(&past);
    assert_eq!(column, past.rfind(' ').unwrap() + 2, "at the 65th value");
    assert!(message.starts_with("too many comparisons"), "{message}");
    // Values and comparisons share the one bound.
    let mixed = format!("label = x and {}", list(MAX_COMPARISONS));
    assert!(err(&mixed).1.starts_with("too many comparisons"));
}

/// Regression (SPEC 7.6): 16 sort keys (some repeated) made an ORDER BY of
/// more than 64 terms that crashed SQLite 3.46.
#[test]
fn sort_keys_are_deduplicated_and_bounded() {
    let keys = parse_sort("params.k0,duration,-duration,label,duration").unwrap();
    assert_eq!(
        keys,
        vec![
            SortKey {
                field: param("k0"),
                descending: false
            },
            SortKey {
                field: Field::Duration,
                descending: false
            },
            SortKey {
                field: Field::Label,
                descending: false
            },
        ]
    );
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("params.k{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        parse_sort(&many(MAX_SORT_KEYS)).unwrap().len(),
        MAX_SORT_KEYS
    );
    let e = parse_sort(&many(MAX_SORT_KEYS + 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "sort: column {}: too many sort keys: at most 8 different ones are allowed",
            many(MAX_SORT_KEYS).len() + 2
        )
    );
    // Sixteen keys that are the same two: fine.
    let repeated = ["params.k0"].iter().chain(["duration"; 15].iter()).copied();
    let repeated: Vec<&str> = repeated.collect();
    assert_eq!(parse_sort(&repeated.join(",")).unwrap().len(), 2);
}

/// Regression (SPEC 7.6): `columns=stdout,stdout,stdout,stdout` held every
/// row's output four times (3.6 GB).
#[test]
fn columns_are_deduplicated_and_bounded() {
    assert_eq!(
        parse_columns("stdout,stdout,label, stdout ,label").unwrap(),
        vec![Field::Stdout, Field::Label]
    );
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("params.c{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        parse_columns(&many(MAX_COLUMNS)).unwrap().len(),
        MAX_COLUMNS
    );
    let e = parse_columns(&many(MAX_COLUMNS + 1)).unwrap_err();
    assert!(e.message.starts_with("too many columns: at most 32"), "{e}");
    // A plot may name one field twice.
    assert_eq!(parse_fields("duration,duration").unwrap().len(), 2);
}

#[test]
fn depth_bound() {
    let parens = |d: usize| format!("{}label = x{}", "(".repeat(d), ")".repeat(d));
    assert!(parse(&parens(MAX_DEPTH)).is_ok());
    let message = "nested too deeply: at most 16 levels of \"(\" and \"not\" are allowed";
    assert_eq!(err(&parens(MAX_DEPTH + 1)), (MAX_DEPTH + 1, message.into()));

    let nots = |d: usize| format!("{}label = x", "not ".repeat(d));
    assert!(parse(&nots(MAX_DEPTH)).is_ok());
    assert_eq!(
        err(&nots(MAX_DEPTH + 1)),
        (4 * MAX_DEPTH + 1, message.into())
    );

    // `(` and `not` add up: 8 of each is 16.
    let mixed = |d: usize| format!("{}label = x{}", "not (".repeat(d), ")".repeat(d));
    assert!(parse(&mixed(MAX_DEPTH / 2)).is_ok());
    let e = err(&format!("not {}", mixed(MAX_DEPTH / 2)));
    assert_eq!(e, (4 + 7 * 5 + 5, message.into()));

    // Siblings do not add up: depth is about enclosing, not counting.
    let deep = parens(MAX_DEPTH);
    let many = [deep.as_str(); 4].join(" and ");
    assert!(parse(&many).is_ok());
    // `in (...)` lists are not nesting.
    assert!(parse(&format!("{}tag in (a){}", "(".repeat(16), ")".repeat(16))).is_ok());
}

#[test]
fn hostile_inputs() {
    let open = "(".repeat(10_000);
    assert_eq!(err(&open).0, MAX_QUERY_CHARS + 1);
    let open = "(".repeat(MAX_QUERY_CHARS);
    assert_eq!(err(&open).0, MAX_DEPTH + 1);
    let close = ")".repeat(MAX_QUERY_CHARS);
    assert_eq!(err(&close).0, 1);
    let nots = "not ".repeat(MAX_QUERY_CHARS / 4);
    assert_eq!(err(&nots).0, 4 * MAX_DEPTH + 1);
    let nots = "not ".repeat(100_000);
    assert_eq!(err(&nots).0, MAX_QUERY_CHARS + 1);

    let start = std::time::Instant::now();
    let huge = "a".repeat(1_000_000);
    assert_eq!(err(&huge).0, MAX_QUERY_CHARS + 1);
    let huge_unicode = "é".repeat(1_000_000);
    assert_eq!(err(&huge_unicode).0, MAX_QUERY_CHARS + 1);
    assert!(start.elapsed() < std::time::Duration::from_secs(1));

    // Long strings and words within the bound.
    let s = format!("label = \"{}", "x".repeat(1990));
    assert_eq!(err(&s).0, 9);
    let s = format!("label = {}", "\\\"".repeat(990));
    assert!(parse(&s).is_err());
    let s = format!("label = \"{}\"", "\\\"".repeat(990));
    assert!(parse(&s).is_ok());
    let w = format!("label = {}", "1".repeat(1990));
    assert_eq!(p(&w), cmp(Field::Label, Op::Eq, text(&"1".repeat(1990))));
    let w = format!("params.x = {}", "9".repeat(1980));
    assert_eq!(
        err(&w),
        (12, format!("number {}… is too large", "9".repeat(32)))
    );
    let w = format!("duration in (1, {})", "9".repeat(1980));
    assert_eq!(err(&w).0, 17);
    let w = format!("params.x ~ {}", "9".repeat(1980));
    assert_eq!(
        p(&w),
        cmp(param("x"), Op::Contains, text(&"9".repeat(1980)))
    );
    assert_eq!(
        p("version = 1e999"),
        cmp(Field::Version, Op::Eq, text("1e999"))
    );
    // 990 values: each counts as a comparison (SPEC 7.6).
    let w = format!("tag in ({})", vec!["a"; 990].join(","));
    assert!(err(&w).1.starts_with("too many comparisons"));
    let e = format!("1{}", "e".repeat(1000));
    assert_eq!(
        p(&format!("params.x = {e}")),
        cmp(param("x"), Op::Eq, text(&e))
    );
    // Control and odd characters.
    for q in [
        "\u{0}",
        "label = \u{7f}",
        "label\u{200b}= x",
        "\u{feff}label = x",
        "`",
        "'",
        "\"",
    ] {
        assert!(parse(q).is_err(), "{q:?}");
    }
    // Unicode whitespace is whitespace.
    assert!(parse("label\u{3000}=\u{a0}x").is_ok());
}

#[test]
fn every_prefix_of_a_query_is_handled() {
    // No panics on any truncation or single-character corruption.
    let q = "not (params.`odd key` >= -2.5e+3 or params.t in ('a', \"b\\\"\", none)) and deps.numpy exists and label ~ é";
    let chars: Vec<char> = q.chars().collect();
    for i in 0..=chars.len() {
        let prefix: String = chars[..i].iter().collect();
        let _ = parse(&prefix);
        let suffix: String = chars[i..].iter().collect();
        let _ = parse(&suffix);
        for c in ['(', ')', '`', '"', '\'', '\\', ',', '!', '-', '+', 'é', ' '] {
            let mut m = chars.clone();
            if i < m.len() {
                m[i] = c;
            }
            let m: String = m.into_iter().collect();
            if let Err(e) = parse(&m) {
                assert!(
                    e.column >= 1 && e.column <= m.chars().count() + 1,
                    "{m:?}: {e}"
                );
            }
        }
    }
    assert!(parse(q).is_ok());
}

#[test]
fn parse_field_api() {
    assert_eq!(parse_field("duration"), Ok(Field::Duration));
    assert_eq!(parse_field(" params.n "), Ok(param("n")));
    assert_eq!(parse_field("params.`odd key`"), Ok(param("odd key")));
    assert_eq!(parse_field("deps.numpy"), Ok(Field::Dep("numpy".into())));
    for f in [
        param("n"),
        param("odd key"),
        param("a`b\\c"),
        param("x:y"),
        Field::Dep("numpy".into()),
        Field::Stdout,
    ] {
        assert_eq!(parse_field(&f.name()), Ok(f.clone()), "{f}");
    }
    let e = parse_field("colour").unwrap_err();
    assert_eq!(e.context, ErrorContext::Field);
    assert!(e
        .to_string()
        .starts_with("field: column 1: unknown field \"colour\""));
    let e = parse_field("label x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "field: column 7: expected a single field name, found \"x\" after it"
    );
    assert_eq!(
        parse_field("").unwrap_err().to_string(),
        "field: column 1: expected a field name, found end of field name"
    );
    assert_eq!(parse_field("=").unwrap_err().column, 1);
}

#[test]
fn parse_sort_api() {
    assert_eq!(parse_sort(""), Ok(vec![]));
    assert_eq!(parse_sort("  "), Ok(vec![]));
    assert_eq!(
        parse_sort("-duration,label, params.`odd key` , -params.`x,y`,-deps.numpy"),
        Ok(vec![
            SortKey {
                field: Field::Duration,
                descending: true
            },
            SortKey {
                field: Field::Label,
                descending: false
            },
            SortKey {
                field: param("odd key"),
                descending: false
            },
            SortKey {
                field: param("x,y"),
                descending: true
            },
            SortKey {
                field: Field::Dep("numpy".into()),
                descending: true
            },
        ])
    );
    let e = parse_sort("label,x").unwrap_err();
    assert_eq!(e.context, ErrorContext::Sort);
    assert_eq!(e.column, 7);
    assert!(e
        .to_string()
        .starts_with("sort: column 7: unknown field \"x\" (fields: "));
    assert_eq!(
        parse_sort("-x").unwrap_err().message,
        parse_sort("x").unwrap_err().message
    );
    assert_eq!(parse_sort("-x").unwrap_err().column, 2);
    assert_eq!(
        parse_sort("label,").unwrap_err().to_string(),
        "sort: column 7: expected a field name after \",\", found end of sort"
    );
    assert_eq!(
        parse_sort(",label").unwrap_err().to_string(),
        "sort: column 1: expected a field name, found \",\""
    );
    assert_eq!(
        parse_sort("label duration").unwrap_err().to_string(),
        "sort: column 7: expected \",\" or end of sort, found \"duration\""
    );
    assert_eq!(
        parse_sort("- label").unwrap_err().to_string(),
        "sort: column 2: expected a field name after \"-\""
    );
    // The leftmost error is reported.
    assert_eq!(parse_sort("x y").unwrap_err().column, 1);
    assert_eq!(parse_sort("--label").unwrap_err().column, 2);
    assert_eq!(parse_sort("-params.a:b").unwrap_err().column, 9);
    let long = vec!["label"; 400].join(",");
    assert_eq!(parse_sort(&long).unwrap_err().column, MAX_QUERY_CHARS + 1);
}

#[test]
fn parse_columns_api() {
    assert_eq!(parse_columns(""), Ok(vec![]));
    assert_eq!(
        parse_columns("label, params.n,deps.numpy,params.`a b`,tag"),
        Ok(vec![
            Field::Label,
            param("n"),
            Field::Dep("numpy".into()),
            param("a b"),
            Field::Tag
        ])
    );
    let e = parse_columns("label,-duration").unwrap_err();
    assert_eq!(e.context, ErrorContext::Columns);
    assert!(e
        .to_string()
        .starts_with("columns: column 7: unknown field \"-duration\""));
    assert_eq!(
        parse_columns("label,,tag").unwrap_err().to_string(),
        "columns: column 7: expected a field name after \",\", found \",\""
    );
    assert_eq!(
        parse_columns("'label'").unwrap_err().to_string(),
        "columns: column 1: expected a field name, found the string \"label\""
    );
    // Names round-trip, so CSV headers can be fed back as columns=.
    let cols = parse_columns("params.`a,b`, deps.`x y`, duration").unwrap();
    let joined = cols.iter().map(Field::name).collect::<Vec<_>>().join(",");
    assert_eq!(parse_columns(&joined), Ok(cols));
}
