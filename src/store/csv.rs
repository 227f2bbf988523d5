//! A small RFC 4180 CSV reader for directory imports. Pure: text in, records out.
//!
//! Accepts what spreadsheets really write: a UTF-8 byte order mark, CRLF, LF or CR line
//! ends, quoted fields holding the delimiter, quotes (`""`) or line breaks, empty lines
//! (also lines of only delimiters), `;` instead of `,` (spreadsheets in locales that
//! use the decimal comma, e.g. Norwegian Excel) detected from the header row, and
//! Excel's `sep=;` first line. A malformed record is reported with the line it starts
//! on and reading goes on with the next line.

use std::fmt;

use super::model::RejectReason;

/// Why a CSV header row cannot be used (then no line of the file can be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file has no rows at all.
    #[error("the file is empty; expected a header row like {EXAMPLE_HEADER}")]
    Empty,
    /// The header has no `number` column.
    #[error("no \"number\" column; expected a header row like {EXAMPLE_HEADER}")]
    NoNumberColumn,
    /// A column name is not known.
    #[error("unknown column {0:?}; known columns: {KNOWN_COLUMNS}")]
    UnknownColumn(String),
    /// A column name appears twice.
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    /// The header row itself is malformed.
    #[error("{0}")]
    Malformed(RejectReason),
}

/// The header row the documentation shows.
pub const EXAMPLE_HEADER: &str = "number,first_name,last_name,company,department";
const KNOWN_COLUMNS: &str = "number, first_name, last_name, company, department, note";

/// A column of a directory import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Number,
    FirstName,
    LastName,
    Company,
    Department,
    Note,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Number,
        Column::FirstName,
        Column::LastName,
        Column::Company,
        Column::Department,
        Column::Note,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Number => "number",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::Company => "company",
            Column::Department => "department",
            Column::Note => "note",
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One data row of a directory import. For the optional columns, `None` means the file
/// has no such column (an update keeps the stored value) and `Some(None)` an empty cell
/// (an update clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContactRow {
    pub line: usize,
    pub number: String,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub note: Option<Option<String>>,
}

/// A data row, or the line it starts on and why it cannot be read.
pub(crate) type RowResult = Result<ContactRow, (usize, RejectReason)>;

/// Reads a directory import: the header, then every row, each either decoded or
/// rejected with its line. Cells are trimmed; empty lines are skipped.
pub(crate) fn read_contacts(text: &str) -> Result<Vec<RowResult>, HeaderError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, first_line, delim) = delimiter(text);
    let mut records = Records::new(text, delim, first_line);
    let header = loop {
        match records.next() {
            None => return Err(HeaderError::Empty),
            Some((_, Err(e))) => return Err(HeaderError::Malformed(e)),
            Some((_, Ok(fields))) if !is_blank(&fields) => break fields,
            Some(_) => {}
        }
    };
    let columns = columns(&header)?;
    let width = columns.len();
    let mut out = Vec::new();
    for (line, rec) in records {
        let fields = match rec {
            Ok(f) => f,
            Err(e) => {
                out.push(Err((line, e)));
                continue;
            }
        };
        if is_blank(&fields) {
            continue;
        }
        // Spreadsheets pad rows with empty cells; only non-empty extras are an error.
        if fields.iter().skip(width).any(|f| !f.trim().is_empty()) {
            out.push(Err((
                line,
                RejectReason::TooManyFields {
                    expected: width,
                    found: fields.len(),
                },
            )));
            continue;
        }
        let cell = |col: Column| -> Option<Option<String>> {
            let i = columns.iter().position(|c| *c == col)?;
            // A short row (trailing empty cells left out) reads as empty cells.
            let v = fields.get(i).map(|s| s.trim()).unwrap_or("");
            Some((!v.is_empty()).then(|| v.to_owned()))
        };
        out.push(Ok(ContactRow {
            line,
            number: cell(Column::Number).flatten().unwrap_or_default(),
            first_name: cell(Column::FirstName),
            last_name: cell(Column::LastName),
            company: cell(Column::Company),
            department: cell(Column::Department),
            note: cell(Column::Note),
        }));
    }
    Ok(out)
}

fn is_blank(fields: &[String]) -> bool {
    fields.iter().all(|f| f.trim().is_empty())
}

/// Maps header cells to columns (names case-insensitive, trimmed).
fn columns(header: &[String]) -> Result<Vec<Column>, HeaderError> {
    let mut out: Vec<Column> = Vec::with_capacity(header.len());
    for raw in header {
        let name = raw.trim();
        let col = Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| HeaderError::UnknownColumn(name.to_owned()))?;
        if out.contains(&col) {
            return Err(HeaderError::DuplicateColumn(col.name().to_owned()));
        }
        out.push(col);
    }
    if !out.contains(&Column::Number) {
        return Err(HeaderError::NoNumberColumn);
    }
    Ok(out)
}

/// Picks the delimiter: Excel's `sep=X` line if present (and skipped), else `,` if the
/// first non-empty line has one, else `;` if it has one, else `,`. Returns the rest of
/// the text and the line number it starts on.
fn delimiter(text: &str) -> (&str, usize, u8) {
    let first = text
        .split(['\n', '\r'])
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if let Some(sep) = first.trim().strip_prefix("sep=") {
        if let [b @ (b',' | b';' | b'\t')] = sep.as_bytes() {
            // Skip everything up to and including the sep= line's end.
            let start = text.find("sep=").unwrap_or(0);
            let after = &text[start..];
            let end = after.find(['\n', '\r']).map_or(after.len(), |i| i);
            let mut rest = &after[end..];
            rest = rest
                .strip_prefix("\r\n")
                .or_else(|| rest.strip_prefix('\n'))
                .or_else(|| rest.strip_prefix('\r'))
                .unwrap_or(rest);
            let skipped_lines = 1 + count_line_ends(&text[..start]);
            return (rest, 1 + skipped_lines, *b);
        }
    }
    let delim = if first.contains(',') {
        b','
    } else if first.contains(';') {
        b';'
    } else {
        b','
    };
    (text, 1, delim)
}

fn count_line_ends(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// An iterator over records: `(line the record starts on, fields or why it is bad)`.
pub(crate) struct Records<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    delim: u8,
}

impl<'a> Records<'a> {
    /// Reads `text` with the given delimiter; `first_line` numbers its first line.
    pub(crate) fn new(text: &'a str, delim: u8, first_line: usize) -> Self {
        Records {
            text,
            pos: 0,
            line: first_line,
            delim,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes a line end at `pos` if there is one (CRLF, LF or CR) and counts it.
    fn eat_line_end(&mut self) -> bool {
        match self.peek() {
            Some(b'\r') => {
                self.pos += 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                self.line += 1;
                true
            }
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    /// Skips the rest of the current physical line (error recovery).
    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'\r' || b == b'\n' {
                self.eat_line_end();
                return;
            }
            self.pos += 1;
        }
    }

    /// Skips spaces (and tabs, unless tab is the delimiter) around a quoted field.
    fn skip_blanks(&mut self) {
        while let Some(b) = self.peek() {
            if b == b' ' || (b == b'\t' && self.delim != b'\t') {
                self.pos += 1;
            } else {
                return;
            }
        }
    }

    /// Reads a quoted field; `pos` is just after the opening quote.
    fn quoted(&mut self) -> Result<String, RejectReason> {
        let mut value = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(q) = rest.find('"') else {
                self.pos = self.text.len();
                return Err(RejectReason::UnterminatedQuote);
            };
            let chunk = &rest[..q];
            self.line += count_line_ends(chunk);
            value.push_str(chunk);
            self.pos += q + 1;
            if self.peek() == Some(b'"') {
                value.push('"');
                self.pos += 1;
            } else {
                return Ok(value);
            }
        }
    }
}

impl Iterator for Records<'_> {
    type Item = (usize, Result<Vec<String>, RejectReason>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        loop {
            // One field.
            let field_start = self.pos;
            self.skip_blanks();
            if self.peek() == Some(b'"') {
                self.pos += 1;
                match self.quoted() {
                    Ok(v) => fields.push(v),
                    Err(e) => return Some((start_line, Err(e))),
                }
                self.skip_blanks();
                match self.peek() {
                    None => return Some((start_line, Ok(fields))),
                    Some(b) if b == self.delim => self.pos += 1,
                    Some(b'\r' | b'\n') => {
                        self.eat_line_end();
                        return Some((start_line, Ok(fields)));
                    }
                    Some(_) => {
                        self.skip_line();
                        return Some((start_line, Err(RejectReason::TextAfterQuote)));
                    }
                }
            } else {
                self.pos = field_start;
                let rest = &self.text.as_bytes()[self.pos..];
                let end = rest
                    .iter()
                    .position(|&b| b == self.delim || b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                // The delimiter and line ends are ASCII, so `end` is a char boundary.
                fields.push(self.text[self.pos..self.pos + end].to_owned());
                self.pos += end;
                match self.peek() {
                    None => return Some((start_line, Ok(fields))),
                    Some(b) if b == self.delim => self.pos += 1,
                    _ => {
                        self.eat_line_end();
                        return Some((start_line, Ok(fields)));
                    }
                }
            }
            // After a delimiter at the very end of the text there is one more (empty) field.
            if self.pos >= self.text.len() {
                fields.push(String::new());
                return Some((start_line, Ok(fields)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(text: &str) -> Vec<(usize, Result<Vec<String>, RejectReason>)> {
        Records::new(text, b',', 1).collect()
    }

    fn ok(fields: &[&str]) -> Result<Vec<String>, RejectReason> {
        Ok(fields.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn plain_quoted_and_line_ends() {
        assert_eq!(
            recs("a,b\r\n\"c,d\",\"e \"\"q\"\"\"\nf,\rg"),
            vec![
                (1, ok(&["a", "b"])),
                (2, ok(&["c,d", "e \"q\""])),
                (3, ok(&["f", ""])),
                (4, ok(&["g"])),
            ]
        );
        assert_eq!(recs("a,"), vec![(1, ok(&["a", ""]))]);
        assert_eq!(recs(""), vec![]);
        assert_eq!(recs("\n\n"), vec![(1, ok(&[""])), (2, ok(&[""]))]);
    }

    #[test]
    fn quoted_line_breaks_count_lines() {
        assert_eq!(
            recs("\"multi\r\nline\",x\ny,z"),
            vec![(1, ok(&["multi\r\nline", "x"])), (3, ok(&["y", "z"]))]
        );
    }

    #[test]
    fn malformed_records_recover_at_next_line() {
        assert_eq!(
            recs("\"a\"b,c\nd,e\n\"open,f\ng"),
            vec![
                (1, Err(RejectReason::TextAfterQuote)),
                (2, ok(&["d", "e"])),
                (3, Err(RejectReason::UnterminatedQuote)),
            ]
        );
    }

    #[test]
    fn blanks_around_quotes_are_tolerated() {
        assert_eq!(
            recs("+4790000000, \"Nordmann, Ola\" ,x"),
            vec![(1, ok(&["+4790000000", "Nordmann, Ola", "x"]))]
        );
        // An unquoted field keeps its blanks (trimmed later by the importer).
        assert_eq!(recs(" a ,b"), vec![(1, ok(&[" a ", "b"]))]);
    }

    #[test]
    fn non_ascii_is_kept_whole() {
        assert_eq!(
            recs("Ærlig,\"Østre, Å\",日本"),
            vec![(1, ok(&["Ærlig", "Østre, Å", "日本"]))]
        );
    }

    #[test]
    fn contacts_with_bom_semicolon_and_sep_line() {
        let rows =
            read_contacts("\u{feff}Number;First_Name;last_name\r\n+4790000001;Kari;Nordmann\r\n")
                .expect("header");
        assert_eq!(rows.len(), 1);
        let r = rows[0].as_ref().expect("row");
        assert_eq!(
            (
                r.line,
                r.number.as_str(),
                r.first_name.clone(),
                r.company.clone()
            ),
            (2, "+4790000001", Some(Some("Kari".to_owned())), None)
        );

        let rows =
            read_contacts("sep=;\nnumber;company\n\n+4790000002;\"A;B AS\"\n").expect("header");
        let r = rows[0].as_ref().expect("row");
        assert_eq!(r.line, 4);
        assert_eq!(r.company, Some(Some("A;B AS".to_owned())));
    }

    #[test]
    fn contact_rows_pad_short_and_reject_long() {
        let rows = read_contacts(
            "number,first_name,last_name\n+4790000001\n+4790000002,a,b,,\n+4790000003,a,b,c\n,,\n",
        )
        .expect("header");
        assert_eq!(rows.len(), 3, "the blank ',,' line is skipped");
        let r = rows[0].as_ref().expect("short row");
        assert_eq!(r.first_name, Some(None));
        assert!(rows[1].is_ok(), "trailing empty cells are padding");
        assert_eq!(
            rows[2],
            Err((
                4,
                RejectReason::TooManyFields {
                    expected: 3,
                    found: 4
                }
            ))
        );
    }

    #[test]
    fn never_panics_and_rows_point_at_real_lines() {
        // A small deterministic generator over the characters that matter to the
        // reader, including multi-byte ones next to delimiters and quotes.
        const ALPHABET: [&str; 13] = [
            "\"",
            ",",
            ";",
            "\r",
            "\n",
            "\r\n",
            " ",
            "a",
            "+4790000001",
            "Ø",
            "日",
            "\u{feff}",
            "sep=;",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::from("number,first_name\n");
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
            }
            let physical_lines = 1 + count_line_ends(&text);
            if let Ok(rows) = read_contacts(&text) {
                for row in rows {
                    let line = match row {
                        Ok(r) => r.line,
                        Err((line, _)) => line,
                    };
                    assert!(
                        (2..=physical_lines).contains(&line),
                        "line {line} of {physical_lines} in {text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(read_contacts(""), Err(HeaderError::Empty));
        assert_eq!(read_contacts("\u{feff}\r\n\r\n"), Err(HeaderError::Empty));
        assert_eq!(
            read_contacts("first_name,last_name\n"),
            Err(HeaderError::NoNumberColumn)
        );
        assert_eq!(
            read_contacts("number,phone\n"),
            Err(HeaderError::UnknownColumn("phone".into()))
        );
        assert_eq!(
            read_contacts("number,NUMBER\n"),
            Err(HeaderError::DuplicateColumn("number".into()))
        );
        assert_eq!(
            read_contacts("\"number\n"),
            Err(HeaderError::Malformed(RejectReason::UnterminatedQuote))
        );
        // A file that starts with data, not a header, is refused as a whole.
        assert!(matches!(
            read_contacts("+4790000001,Kari,Nordmann\n"),
            Err(HeaderError::UnknownColumn(_))
        ));
    }
}
