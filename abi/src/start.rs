//! The `START` file of the program archive: one program per line, in pid order, `name arg1
//! arg2 ...` split on spaces and tabs (argv[0] = name); blank lines and `#` comments skipped.

/// The program lines of a START file, trimmed.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The words of one line: argv, argv[0] first.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split([' ', '\t']).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_words() {
        let text = "# demo\n\n  init  a\tb \nhello\n";
        let l: std::vec::Vec<&str> = lines(text).collect();
        assert_eq!(l, ["init  a\tb", "hello"]);
        let w: std::vec::Vec<&str> = words(l[0]).collect();
        assert_eq!(w, ["init", "a", "b"]);
    }
}
