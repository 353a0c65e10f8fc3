//! Tokens of the query language, produced on demand (one token of
//! lookahead), so that the leftmost error is the one reported.
//!
//! Columns are 1-based and counted in characters.

use super::error::{ErrorContext, QueryError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Tilde,
    NotTilde,
    /// A quoted string, escapes resolved.
    Str(String),
    /// A bare word of letters, digits and `_ - . : /` (a `+` is also taken
    /// right after the `e` of a number's exponent: `1e+3`). Field names,
    /// keywords, numbers and bare text values are all words.
    Word(String),
    /// A word ending in `.` directly followed by a backtick-quoted key:
    /// ``params.`odd key` `` gives prefix `params.` and key `odd key`.
    QuotedKey {
        prefix: String,
        key: String,
    },
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: TokenKind,
    /// Column of the token's first character.
    pub column: usize,
}

/// Characters allowed in a bare word.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

/// Shortens `s` to at most 32 characters (with an ellipsis) for messages.
pub(super) fn excerpt(s: &str) -> String {
    const MAX: usize = 32;
    let mut chars = s.char_indices();
    match chars.nth(MAX) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// `"x"` for a token, as used in "found ..." messages.
pub(super) fn describe(kind: &TokenKind, ctx: ErrorContext) -> String {
    match kind {
        TokenKind::LParen => "\"(\"".into(),
        TokenKind::RParen => "\")\"".into(),
        TokenKind::Comma => "\",\"".into(),
        TokenKind::Eq => "\"=\"".into(),
        TokenKind::Ne => "\"!=\"".into(),
        TokenKind::Lt => "\"<\"".into(),
        TokenKind::Le => "\"<=\"".into(),
        TokenKind::Gt => "\">\"".into(),
        TokenKind::Ge => "\">=\"".into(),
        TokenKind::Tilde => "\"~\"".into(),
        TokenKind::NotTilde => "\"!~\"".into(),
        TokenKind::Str(s) => format!("the string \"{}\"", excerpt(s)),
        TokenKind::Word(w) => format!("\"{}\"", excerpt(w)),
        TokenKind::QuotedKey { prefix, key } => {
            format!("\"{}`{}`\"", excerpt(prefix), excerpt(key))
        }
        TokenKind::End => ctx.end_name().into(),
    }
}

/// True for `-?(digits[.digits*] | .digits)([eE][+-]?digits)?`.
pub(super) fn is_number_syntax(w: &str) -> bool {
    let b = w.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

pub(super) struct Lexer<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// Column of the next character.
    column: usize,
    ctx: ErrorContext,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str, ctx: ErrorContext) -> Self {
        Lexer {
            text,
            pos: 0,
            column: 1,
            ctx,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        self.column += 1;
        Some(c)
    }

    fn error(&self, column: usize, message: impl Into<String>) -> QueryError {
        QueryError::new(self.ctx, column, message)
    }

    pub(super) fn next_token(&mut self) -> Result<Token, QueryError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let column = self.column;
        let tok = |kind| Ok(Token { kind, column });
        let Some(c) = self.bump() else {
            return tok(TokenKind::End);
        };
        match c {
            '(' => tok(TokenKind::LParen),
            ')' => tok(TokenKind::RParen),
            ',' => tok(TokenKind::Comma),
            '~' => tok(TokenKind::Tilde),
            '=' => {
                if self.peek() == Some('=') {
                    return Err(self.error(column, "use \"=\" to test equality, not \"==\""));
                }
                tok(TokenKind::Eq)
            }
            '!' => match self.peek() {
                Some('=') => {
                    self.bump();
                    tok(TokenKind::Ne)
                }
                Some('~') => {
                    self.bump();
                    tok(TokenKind::NotTilde)
                }
                _ => Err(self.error(
                    column,
                    "unexpected \"!\": expected \"!=\" or \"!~\" (use \"not\" to negate)",
                )),
            },
            '<' | '>' => {
                let or_equal = self.peek() == Some('=');
                if or_equal {
                    self.bump();
                }
                tok(match (c, or_equal) {
                    ('<', false) => TokenKind::Lt,
                    ('<', true) => TokenKind::Le,
                    (_, false) => TokenKind::Gt,
                    (_, true) => TokenKind::Ge,
                })
            }
            '"' | '\'' => {
                let s = self.quoted(c, column, "string")?;
                tok(TokenKind::Str(s))
            }
            '`' => Err(self.error(
                column,
                "unexpected \"`\": a backtick-quoted key must directly follow \"params.\" or \"deps.\"",
            )),
            '&' => Err(self.error(column, "unexpected \"&\": use \"and\"")),
            '|' => Err(self.error(column, "unexpected \"|\": use \"or\"")),
            '+' => Err(self.error(
                column,
                "unexpected \"+\": write positive numbers without a sign",
            )),
            c if is_word_char(c) => self.word(column, self.pos - c.len_utf8()),
            c => Err(self.error(
                column,
                format!(
                    "unexpected character \"{}\" (put text containing it in quotes)",
                    c.escape_debug()
                ),
            )),
        }
    }

    /// The rest of a bare word starting at byte `start` (first char consumed).
    fn word(&mut self, column: usize, start: usize) -> Result<Token, QueryError> {
        loop {
            match self.peek() {
                Some(c) if is_word_char(c) => {
                    self.bump();
                }
                // `1e+3`: a `+` right after the `e` of a number's exponent.
                Some('+') if self.at_exponent_sign(start) => {
                    self.bump();
                }
                _ => break,
            }
        }
        let word = &self.text[start..self.pos];
        if word.ends_with('.') && self.peek() == Some('`') {
            let quote_column = self.column;
            self.bump();
            let key = self.quoted('`', quote_column, "backtick-quoted key")?;
            if key.is_empty() {
                return Err(self.error(quote_column, "empty key in backticks"));
            }
            match self.peek() {
                Some(c) if is_word_char(c) || matches!(c, '`' | '"' | '\'') => {
                    return Err(self.error(
                        self.column,
                        format!(
                            "unexpected \"{}\" right after a backtick-quoted key",
                            c.escape_debug()
                        ),
                    ));
                }
                _ => {}
            }
            return Ok(Token {
                kind: TokenKind::QuotedKey {
                    prefix: word.to_string(),
                    key,
                },
                column,
            });
        }
        Ok(Token {
            kind: TokenKind::Word(word.to_string()),
            column,
        })
    }

    fn at_exponent_sign(&self, start: usize) -> bool {
        let so_far = &self.text[start..self.pos];
        match so_far.strip_suffix(['e', 'E']) {
            Some(mantissa) => {
                !mantissa.contains(['e', 'E']) && is_number_syntax(&format!("{mantissa}e0"))
            }
            None => false,
        }
    }

    /// The body of a quoted string or key, opening quote `q` already
    /// consumed at `column`. A backslash before `q` or another backslash
    /// escapes it; any other backslash is kept as is.
    fn quoted(&mut self, q: char, column: usize, what: &str) -> Result<String, QueryError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(
                        self.error(column, format!("unterminated {what}: missing closing {q}"))
                    );
                }
                Some('\\') => match self.peek() {
                    Some(c) if c == q || c == '\\' => {
                        self.bump();
                        out.push(c);
                    }
                    _ => out.push('\\'),
                },
                Some(c) if c == q => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Result<Vec<(TokenKind, usize)>, QueryError> {
        let mut lx = Lexer::new(text, ErrorContext::Query);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token()?;
            if t.kind == TokenKind::End {
                out.push((t.kind, t.column));
                return Ok(out);
            }
            out.push((t.kind, t.column));
        }
    }

    fn word(s: &str) -> TokenKind {
        TokenKind::Word(s.into())
    }

    #[test]
    fn operators_and_punctuation() {
        let toks = lex("= != < <= > >= ~ !~ ( ) ,").unwrap();
        let kinds: Vec<_> = toks.into_iter().map(|t| t.0).collect();
        use TokenKind::*;
        assert_eq!(
            kinds,
            vec![Eq, Ne, Lt, Le, Gt, Ge, Tilde, NotTilde, LParen, RParen, Comma, End]
        );
    }

    #[test]
    fn words_and_columns() {
        let toks = lex("params.x>-2").unwrap();
        assert_eq!(
            toks,
            vec![
                (word("params.x"), 1),
                (TokenKind::Gt, 9),
                (word("-2"), 10),
                (TokenKind::End, 12)
            ]
        );
        let toks = lex("  é = 2024-05-01T10:00 https://x.org/a").unwrap();
        assert_eq!(toks[0], (word("é"), 3));
        assert_eq!(toks[1], (TokenKind::Eq, 5));
        assert_eq!(toks[2], (word("2024-05-01T10:00"), 7));
        assert_eq!(toks[3], (word("https://x.org/a"), 24));
        assert_eq!(toks[4], (TokenKind::End, 39));
    }

    #[test]
    fn exponent_plus() {
        let toks = lex("1e+3 -2.5E+10").unwrap();
        assert_eq!(toks[0].0, word("1e+3"));
        assert_eq!(toks[1].0, word("-2.5E+10"));
        // Not after a number's `e`: an error.
        assert_eq!(lex("abe+3").unwrap_err().column, 4);
        assert_eq!(lex("1e3+3").unwrap_err().column, 4);
        assert_eq!(lex("+4").unwrap_err().column, 1);
    }

    #[test]
    fn strings() {
        let toks = lex(r#""a b" 'c"d' "x\"y" 'it\'s' "back\\slash" "c:\data""#).unwrap();
        let s = |x: &str| TokenKind::Str(x.into());
        assert_eq!(toks[0], (s("a b"), 1));
        assert_eq!(toks[1], (s("c\"d"), 7));
        assert_eq!(toks[2].0, s("x\"y"));
        assert_eq!(toks[3].0, s("it's"));
        assert_eq!(toks[4].0, s("back\\slash"));
        assert_eq!(toks[5].0, s("c:\\data"));
        let toks = lex(r#""""#).unwrap();
        assert_eq!(toks[0].0, s(""));
    }

    #[test]
    fn unterminated() {
        let e = lex("label = \"abc").unwrap_err();
        assert_eq!(e.column, 9);
        assert_eq!(e.message, "unterminated string: missing closing \"");
        let e = lex("a = 'x\\'").unwrap_err();
        assert_eq!(e.column, 5);
        assert_eq!(e.message, "unterminated string: missing closing '");
        let e = lex("params.`abc").unwrap_err();
        assert_eq!(e.column, 8);
        assert_eq!(
            e.message,
            "unterminated backtick-quoted key: missing closing `"
        );
    }

    #[test]
    fn quoted_keys() {
        let toks = lex(r"params.`odd key`=1 deps.`a\`b`").unwrap();
        assert_eq!(
            toks[0],
            (
                TokenKind::QuotedKey {
                    prefix: "params.".into(),
                    key: "odd key".into()
                },
                1
            )
        );
        assert_eq!(toks[1], (TokenKind::Eq, 17));
        assert_eq!(
            toks[3].0,
            TokenKind::QuotedKey {
                prefix: "deps.".into(),
                key: "a`b".into()
            }
        );
        assert_eq!(lex("params.``").unwrap_err().column, 8);
        assert_eq!(lex("params.`a`b").unwrap_err().column, 11);
        assert_eq!(lex("params `a`").unwrap_err().column, 8);
    }

    #[test]
    fn bad_characters() {
        for (text, column) in [
            ("a == 1", 3),
            ("a ! b", 3),
            ("a & b", 3),
            ("a | b", 3),
            ("a = b@c", 6),
            ("ééé @", 5),
            ("\u{0}", 1),
        ] {
            assert_eq!(lex(text).unwrap_err().column, column, "{text}");
        }
    }

    #[test]
    fn number_syntax() {
        for ok in [
            "3", "-2.5", "1e-3", "1E5", ".5", "-.5", "5.", "007", "1e+3", "-0",
        ] {
            assert!(is_number_syntax(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            ".",
            "e3",
            "1e",
            "1e+",
            "2024-05-01",
            "v1.2",
            "1.2.3",
            "nan",
            "inf",
            "-inf",
            "1_000",
            "0x10",
            "1-2",
            "--1",
        ] {
            assert!(!is_number_syntax(bad), "{bad}");
        }
    }

    #[test]
    fn excerpts() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(40);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(32)));
    }
}
