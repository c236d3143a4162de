//! The `START` file of the program archive: one program per line, in pid order, `name arg1
//! arg2 ...` (argv[0] = name); blank lines and `#` comments skipped. Words are split as a POSIX
//! shell splits them, without expansions: unquoted spaces and tabs separate words; `'...'`
//! keeps everything literally; `"..."` keeps everything but a backslash before `"`, `\`, `$`
//! or `` ` ``; a backslash outside quotes keeps the next character. So an argument may hold
//! spaces, quotes and backslashes (never a newline: the file is line-based). `quote` writes a
//! word so that this parser reads it back.

/// The program lines of a START file, trimmed.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A quote left open at the end of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated;

/// One word of a line, still in its quoted form: `bytes` decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<'a> {
    raw: &'a [u8],
}

impl<'a> Word<'a> {
    /// The word's bytes with its quotes and escapes removed.
    pub fn bytes(self) -> impl Iterator<Item = u8> + 'a {
        Decode {
            raw: self.raw,
            at: 0,
            quote: Quote::None,
        }
    }

    /// Decodes the word into `buf`: the slice it fills, or None if it does not fit.
    pub fn decode_into(self, buf: &mut [u8]) -> Option<&[u8]> {
        let mut n = 0;
        for b in self.bytes() {
            *buf.get_mut(n)? = b;
            n += 1;
        }
        Some(&buf[..n])
    }

    /// The word as it is written in the line.
    pub fn raw(self) -> &'a [u8] {
        self.raw
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Walks a word's raw bytes, yielding what they stand for.
struct Decode<'a> {
    raw: &'a [u8],
    at: usize,
    quote: Quote,
}

impl Iterator for Decode<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        loop {
            let b = *self.raw.get(self.at)?;
            self.at += 1;
            match (self.quote, b) {
                (Quote::None, b'\'') => self.quote = Quote::Single,
                (Quote::None, b'"') => self.quote = Quote::Double,
                (Quote::Single, b'\'') | (Quote::Double, b'"') => self.quote = Quote::None,
                (Quote::None, b'\\') => {
                    // The splitter guarantees a character follows.
                    let c = *self.raw.get(self.at)?;
                    self.at += 1;
                    return Some(c);
                }
                (Quote::Double, b'\\') => match self.raw.get(self.at) {
                    Some(&c @ (b'"' | b'\\' | b'$' | b'`')) => {
                        self.at += 1;
                        return Some(c);
                    }
                    _ => return Some(b'\\'),
                },
                _ => return Some(b),
            }
        }
    }
}

/// The words of one line: argv, argv[0] first; an `Err` (and nothing after it) if a quote or
/// a final backslash is left open.
pub fn words(line: &str) -> impl Iterator<Item = Result<Word<'_>, Unterminated>> {
    Split {
        line: line.as_bytes(),
        at: 0,
        failed: false,
    }
}

struct Split<'a> {
    line: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Iterator for Split<'a> {
    type Item = Result<Word<'a>, Unterminated>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let line = self.line;
        while self.at < line.len() && matches!(line[self.at], b' ' | b'\t') {
            self.at += 1;
        }
        if self.at == line.len() {
            return None;
        }
        let start = self.at;
        let mut quote = Quote::None;
        while let Some(&b) = line.get(self.at) {
            match (quote, b) {
                (Quote::None, b' ' | b'\t') => break,
                (Quote::None, b'\'') => quote = Quote::Single,
                (Quote::None, b'"') => quote = Quote::Double,
                (Quote::Single, b'\'') | (Quote::Double, b'"') => quote = Quote::None,
                (Quote::None | Quote::Double, b'\\') => {
                    if self.at + 1 == line.len() {
                        quote = Quote::Single; // nothing to escape: unterminated
                    } else {
                        self.at += 1;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        if quote != Quote::None {
            self.failed = true;
            return Some(Err(Unterminated));
        }
        Some(Ok(Word {
            raw: &line[start..self.at],
        }))
    }
}

/// Characters a word may hold unquoted (and still mean itself to a POSIX shell).
#[cfg(feature = "std")]
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-./=:,+@%^".contains(&b)
}

/// Writes `word` as START (and a POSIX shell) reads it: as is when that is safe, else in single
/// quotes (a `'` inside as `'\''`). None for a word with a newline or NUL, which START cannot
/// hold.
#[cfg(feature = "std")]
pub fn quote(word: &str) -> Option<std::string::String> {
    if word.bytes().any(|b| b == b'\n' || b == b'\r' || b == 0) {
        return None;
    }
    if !word.is_empty() && word.bytes().all(plain) {
        return Some(word.into());
    }
    let mut s = std::string::String::from("'");
    for c in word.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn split(line: &str) -> Result<Vec<String>, Unterminated> {
        words(line)
            .map(|w| w.map(|w| String::from_utf8(w.bytes().collect()).unwrap()))
            .collect()
    }

    #[test]
    fn lines_and_words() {
        let text = "# demo\n\n  init  a\tb \nhello\n";
        let l: Vec<&str> = lines(text).collect();
        assert_eq!(l, ["init  a\tb", "hello"]);
        assert_eq!(split(l[0]).unwrap(), ["init", "a", "b"]);
    }

    #[test]
    fn quotes_and_backslashes_as_a_posix_shell() {
        assert_eq!(
            split(r#"prog 'one argument' two"#).unwrap(),
            ["prog", "one argument", "two"]
        );
        assert_eq!(
            split(r#"p a\ b "c \"d\" \x" '' "" x'y'"z" \\"#).unwrap(),
            ["p", "a b", "c \"d\" \\x", "", "", "xyz", "\\"]
        );
        assert_eq!(split(r#"p 'it'\''s'"#).unwrap(), ["p", "it's"]);
        assert_eq!(split("p 'a").unwrap_err(), Unterminated);
        assert_eq!(split("p \"a").unwrap_err(), Unterminated);
        assert_eq!(split("p a\\").unwrap_err(), Unterminated);
    }

    #[test]
    fn decode_into_a_short_buffer_fails() {
        let w = words("'abc'").next().unwrap().unwrap();
        assert_eq!(w.decode_into(&mut [0; 3]), Some(&b"abc"[..]));
        assert_eq!(w.decode_into(&mut [0; 2]), None);
        assert_eq!(w.raw(), b"'abc'");
    }

    #[cfg(feature = "std")]
    #[test]
    fn quote_round_trips() {
        for w in [
            "plain",
            "",
            "two words",
            "it's",
            "a\"b",
            "back\\slash",
            "$HOME",
            "tab\there",
        ] {
            let q = quote(w).unwrap();
            assert_eq!(split(&q).unwrap(), [w], "{w:?} quoted as {q}");
        }
        assert_eq!(quote("a\nb"), None);
    }

    proptest::proptest! {
        #[test]
        fn splitting_never_panics(line in "\\PC*") {
            let _ = split(&line);
        }
    }

    #[cfg(feature = "std")]
    proptest::proptest! {
        #[test]
        fn any_words_quoted_split_back(ws in proptest::collection::vec("[^\n\r\u{0}]*", 1..5)) {
            let line: Vec<String> = ws.iter().map(|w| quote(w).unwrap()).collect();
            proptest::prop_assert_eq!(split(&line.join(" ")).unwrap(), ws);
        }
    }
}
