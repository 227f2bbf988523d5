//! SIP message framing on stream transports (TCP, later TLS): pure, no I/O, no clock.
//!
//! Input: the bytes read so far from one connection, in a `BytesMut`.
//! Output: whole messages split off the front of that buffer as zero-copy `Bytes`,
//! RFC 5626 keepalive pings, or a typed [`FramingError`] after which the connection
//! must be closed (the stream can no longer be resynchronised).
//!
//! Rules implemented:
//! - RFC 3261 s7.5: "implementations processing SIP messages over stream-oriented
//!   transports MUST ignore any CRLF appearing before the start-line".
//! - RFC 5626 s3.5.1: a double CRLF between messages is a keepalive "ping"; the caller
//!   answers it with a single CRLF "pong" ([`PONG`]).
//! - RFC 3261 s18.3: "In the case of stream-oriented transports such as TCP, the
//!   Content-Length header field indicates the size of the body. All implementations
//!   MUST [...]" — the header is mandatory on streams, so a missing one is an error.
//! - Header names are case-insensitive, `l` is the compact form of Content-Length
//!   (RFC 3261 s7.3.3, s20.14), whitespace may precede the colon and surround the value,
//!   and the value may be folded onto a continuation line (RFC 3261 s7.3.1).
//! - Sizes are capped before the blank line arrives, so a peer sending endless header
//!   lines is cut off at `max_header_size` bytes.
//!
//! Line endings are strict CRLF: a header block terminated by bare LFs is never
//! recognised and runs into the header size limit.

use bytes::{Buf, Bytes, BytesMut};

/// The RFC 5626 s3.5.1 keepalive "ping": a double CRLF.
pub const PING: &[u8] = b"\r\n\r\n";
/// The RFC 5626 s3.5.1 keepalive "pong": a single CRLF, sent in answer to a ping.
pub const PONG: &[u8] = b"\r\n";

/// One unit cut from a stream by the framer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message: headers, blank line and exactly Content-Length body bytes.
    Message(Bytes),
    /// An RFC 5626 CRLFCRLF ping; answer with [`PONG`].
    KeepAlive,
}

/// Why a stream could not be framed; the connection must be closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The header block (start-line to blank line) exceeds the limit, or no blank line
    /// arrived within the limit.
    #[error("SIP header block exceeds {limit} bytes")]
    HeadersTooLarge {
        /// The configured header size limit in bytes.
        limit: usize,
    },
    /// Headers plus the declared body exceed the message size limit.
    #[error("SIP message of {declared} bytes exceeds {limit} bytes")]
    MessageTooLarge {
        /// Header bytes plus the declared Content-Length (saturating).
        declared: u64,
        /// The configured message size limit in bytes.
        limit: usize,
    },
    /// No Content-Length header: mandatory on stream transports (RFC 3261 s18.3).
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// Content-Length is empty or not a decimal number.
    #[error("Content-Length is not a decimal number")]
    InvalidContentLength,
    /// Content-Length is negative.
    #[error("Content-Length is negative")]
    NegativeContentLength,
    /// Content-Length does not fit in 64 bits.
    #[error("Content-Length overflows")]
    ContentLengthOverflow,
    /// Two Content-Length headers with different values.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength {
        /// The value of the first Content-Length header.
        first: u64,
        /// The first different value found after it.
        second: u64,
    },
}

impl FramingError {
    /// The SIP status a server should answer with when the header block is complete
    /// (RFC 3261 s21.5.9 513 for oversize messages, otherwise 400).
    pub fn sip_status(&self) -> u16 {
        match self {
            FramingError::HeadersTooLarge { .. } | FramingError::MessageTooLarge { .. } => 513,
            _ => 400,
        }
    }
}

/// A stateful framer for one connection's buffer.
///
/// It remembers how far it already searched for the blank line and the length of a
/// message whose headers are complete, so a peer trickling bytes cannot make it rescan
/// the buffer from the start on every read (quadratic work). A `Framer` belongs to one
/// buffer: if bytes are removed from the buffer other than through
/// [`Framer::next_frame`], call [`Framer::reset`].
#[derive(Debug, Clone)]
pub struct Framer {
    max_header_size: usize,
    max_message_size: usize,
    /// Bytes at the front of the buffer already searched without finding CRLFCRLF.
    scanned: usize,
    /// Total length of the message at the front once its headers were parsed.
    pending_len: Option<usize>,
}

impl Framer {
    /// Creates a framer; `max_header_size` is capped at `max_message_size`.
    pub fn new(max_header_size: usize, max_message_size: usize) -> Self {
        Self {
            max_header_size: max_header_size.min(max_message_size),
            max_message_size,
            scanned: 0,
            pending_len: None,
        }
    }

    /// Forgets the scan state (after the buffer was changed behind the framer's back).
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.pending_len = None;
    }

    /// Cuts the next frame off the front of `buf`, or returns `Ok(None)` when more bytes
    /// are needed.
    ///
    /// On `Err`, `buf` starts at the offending message (leading CRLFs and earlier frames
    /// were consumed) and is otherwise untouched, so the caller may look at its header
    /// block with [`headers_end`] to answer 400/513 before closing.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if self.pending_len.is_none() && self.scanned == 0 {
            // Only between messages can the buffer start with CRLFs.
            loop {
                if buf.is_empty() || is_ping_prefix(buf) {
                    // Nothing, or a partial "\r\n\r\n": wait for more.
                    return Ok(None);
                }
                if buf.starts_with(PING) {
                    buf.advance(PING.len());
                    return Ok(Some(Frame::KeepAlive));
                }
                if buf.starts_with(b"\r\n") {
                    // A stray CRLF before a start-line (RFC 3261 s7.5): skip it.
                    buf.advance(2);
                    continue;
                }
                break;
            }
        }

        let total = match self.pending_len {
            Some(total) => total,
            None => {
                let head_len = match self.find_headers_end(buf)? {
                    Some(n) => n,
                    None => return Ok(None),
                };
                let body_len = content_length(&buf[..head_len])?;
                let declared = (head_len as u64).saturating_add(body_len);
                if declared > self.max_message_size as u64 {
                    return Err(FramingError::MessageTooLarge {
                        declared,
                        limit: self.max_message_size,
                    });
                }
                // `declared <= max_message_size: usize`, so this cannot truncate.
                let total =
                    usize::try_from(declared).map_err(|_| FramingError::MessageTooLarge {
                        declared,
                        limit: self.max_message_size,
                    })?;
                self.pending_len = Some(total);
                total
            }
        };

        if buf.len() < total {
            return Ok(None);
        }
        self.reset();
        Ok(Some(Frame::Message(buf.split_to(total).freeze())))
    }

    /// Length of the header block including the blank line, searching only new bytes.
    fn find_headers_end(&mut self, buf: &[u8]) -> Result<Option<usize>, FramingError> {
        // Back up three bytes: the terminator may straddle the previous search end.
        let from = self.scanned.saturating_sub(PING.len() - 1);
        let limit = self.max_header_size;
        // Never search past the header limit: a longer header block is an error anyway.
        let window_end = buf.len().min(limit);
        if let Some(pos) = find(&buf[from.min(window_end)..window_end], PING) {
            return Ok(Some(from + pos + PING.len()));
        }
        if buf.len() >= limit {
            // No terminator in the first `limit` bytes: the block can only end later.
            return Err(FramingError::HeadersTooLarge { limit });
        }
        self.scanned = buf.len();
        Ok(None)
    }

    /// True when `buf` holds part of a message (not only nothing or a partial ping):
    /// the caller starts its message read timer (slowloris defence) on this.
    pub fn in_progress(buf: &[u8]) -> bool {
        !buf.is_empty() && !is_ping_prefix(buf)
    }
}

/// Stateless convenience form: the next frame of `buf`, with the header block limited
/// to `max_message_size` as well. Prefer [`Framer`] on live connections.
pub fn next_frame(
    buf: &mut BytesMut,
    max_message_size: usize,
) -> Result<Option<Frame>, FramingError> {
    Framer::new(max_message_size, max_message_size).next_frame(buf)
}

/// Length of the header block at the front of `buf` including the blank line, if the
/// blank line has arrived.
pub fn headers_end(buf: &[u8]) -> Option<usize> {
    find(buf, PING).map(|pos| pos + PING.len())
}

/// True when `buf` is a strict, non-empty prefix of a ping (1 to 3 bytes of "\r\n\r\n").
fn is_ping_prefix(buf: &[u8]) -> bool {
    !buf.is_empty() && buf.len() < PING.len() && PING.starts_with(buf)
}

/// Position of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // memchr's SIMD search: the stream framer scans every byte a TCP peer sends.
    memchr::memmem::find(hay, needle)
}

/// The Content-Length of a complete header block (start-line to blank line).
fn content_length(head: &[u8]) -> Result<u64, FramingError> {
    let mut found: Option<u64> = None;
    let mut record = |value: u64| -> Result<(), FramingError> {
        match found {
            Some(first) if first != value => Err(FramingError::ConflictingContentLength {
                first,
                second: value,
            }),
            _ => {
                found = Some(value);
                Ok(())
            }
        }
    };

    // Logical header under construction: is it Content-Length, and its value so far.
    let mut current: Option<Vec<u8>> = None;
    // The first line is the start-line; it is not a header.
    for line in crlf_lines(head).skip(1) {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // Folded continuation (RFC 3261 s7.3.1) of the previous header's value.
            if let Some(value) = current.as_mut() {
                value.push(b' ');
                value.extend_from_slice(line);
            }
            continue;
        }
        if let Some(value) = current.take() {
            record(parse_length(&value)?)?;
        }
        if line.is_empty() {
            // The blank line ending the header block.
            break;
        }
        // A line without a colon is malformed; the SIP parser reports it, not us.
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            current = Some(line[colon + 1..].to_vec());
        }
    }
    if let Some(value) = current.take() {
        record(parse_length(&value)?)?;
    }
    found.ok_or(FramingError::MissingContentLength)
}

/// The lines of `head` split on CRLF only: a bare LF is not a line break here, so the
/// framer never sees a header the strict SIP parser would not.
fn crlf_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let cur = rest?;
        match find(cur, b"\r\n") {
            Some(pos) => {
                rest = Some(&cur[pos + 2..]);
                Some(&cur[..pos])
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

/// Parses a Content-Length value: `1*DIGIT` surrounded by optional whitespace.
fn parse_length(raw: &[u8]) -> Result<u64, FramingError> {
    let value = trim(raw);
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidContentLength);
    }
    if negative {
        return Err(FramingError::NegativeContentLength);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(FramingError::ContentLengthOverflow)
    })
}

/// `raw` without leading and trailing spaces and tabs.
fn trim(raw: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = raw.iter().position(|b| !is_ws(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !is_ws(b)).map_or(start, |p| p + 1);
    &raw[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";

    /// Feeds `input` in the given chunk sizes and collects every frame.
    fn feed(input: &[u8], cuts: &[usize], framer: &mut Framer) -> Result<Vec<Frame>, FramingError> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut cuts = cuts.iter().copied();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = framer.next_frame(&mut buf)? {
                out.push(f);
            }
        }
        assert!(buf.is_empty() || Framer::in_progress(&buf) || is_ping_prefix(&buf));
        Ok(out)
    }

    fn msg(b: &[u8]) -> Frame {
        Frame::Message(Bytes::copy_from_slice(b))
    }

    fn one(input: &[u8]) -> Result<Option<Frame>, FramingError> {
        let mut buf = BytesMut::from(input);
        next_frame(&mut buf, 65535)
    }

    #[test]
    fn whole_message() {
        assert_eq!(one(INVITE), Ok(Some(msg(INVITE))));
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(INVITE);
        stream.extend_from_slice(PING);
        stream.extend_from_slice(OPTIONS);
        let expected = vec![msg(INVITE), Frame::KeepAlive, msg(OPTIONS)];
        for cut in 0..=stream.len() {
            let mut framer = Framer::new(4096, 65535);
            let got = feed(&stream, &[cut], &mut framer).unwrap();
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut stream = Vec::new();
        stream.extend_from_slice(INVITE);
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(PING);
        let mut framer = Framer::new(4096, 65535);
        let got = feed(&stream, &vec![1; stream.len()], &mut framer).unwrap();
        assert_eq!(got, vec![msg(INVITE), msg(OPTIONS), Frame::KeepAlive]);
    }

    #[test]
    fn several_messages_in_one_read() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(OPTIONS);
            stream.extend_from_slice(INVITE);
        }
        let mut buf = BytesMut::from(&stream[..]);
        let mut framer = Framer::new(4096, 65535);
        let mut got = Vec::new();
        while let Some(f) = framer.next_frame(&mut buf).unwrap() {
            got.push(f);
        }
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], msg(OPTIONS));
        assert_eq!(got[5], msg(INVITE));
        assert!(buf.is_empty());
    }

    #[test]
    fn message_is_split_off_zero_copy() {
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(OPTIONS);
        let base = buf.as_ptr();
        match next_frame(&mut buf, 65535) {
            Ok(Some(Frame::Message(b))) => assert_eq!(b.as_ptr(), base),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn keepalives() {
        let mut buf = BytesMut::from(&b"\r\n\r\n\r\n\r\n"[..]);
        let mut f = Framer::new(100, 100);
        assert_eq!(f.next_frame(&mut buf), Ok(Some(Frame::KeepAlive)));
        assert_eq!(f.next_frame(&mut buf), Ok(Some(Frame::KeepAlive)));
        assert_eq!(f.next_frame(&mut buf), Ok(None));
        // A partial ping waits and does not count as a message in progress.
        for partial in [&b"\r"[..], b"\r\n", b"\r\n\r"] {
            let mut buf = BytesMut::from(partial);
            assert_eq!(f.next_frame(&mut buf), Ok(None));
            assert_eq!(&buf[..], partial);
            assert!(!Framer::in_progress(&buf));
        }
    }

    #[test]
    fn stray_crlfs_before_message_are_skipped() {
        let mut stream = b"\r\n".to_vec();
        stream.extend_from_slice(OPTIONS);
        assert_eq!(one(&stream), Ok(Some(msg(OPTIONS))));
        // Three CRLFs: a ping, then a stray CRLF, then the message.
        let mut stream = b"\r\n\r\n\r\n".to_vec();
        stream.extend_from_slice(OPTIONS);
        let mut framer = Framer::new(4096, 65535);
        assert_eq!(
            feed(&stream, &[], &mut framer).unwrap(),
            vec![Frame::KeepAlive, msg(OPTIONS)]
        );
    }

    #[test]
    fn compact_and_spaced_content_length() {
        for header in [
            &b"l: 3"[..],
            b"L:3",
            b"content-length:  3  ",
            b"CONTENT-LENGTH\t:\t3",
            b"Content-Length:\r\n 3",
            b"Content-Length: 003",
        ] {
            let mut m = b"MESSAGE sip:a@b SIP/2.0\r\n".to_vec();
            m.extend_from_slice(header);
            m.extend_from_slice(b"\r\nTo: <sip:a@b>\r\n\r\nabc");
            assert_eq!(
                one(&m),
                Ok(Some(msg(&m))),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn similar_header_names_are_not_content_length() {
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Lengthx: 3\r\nLength: 3\r\nContent-Type: l\r\n\r\n";
        assert_eq!(one(m), Err(FramingError::MissingContentLength));
    }

    #[test]
    fn content_length_in_start_line_or_body_is_ignored() {
        let m = b"l: 5 sip:a@b SIP/2.0\r\nl: 11\r\n\r\nl: 99\r\n\r\nab";
        assert_eq!(one(m), Ok(Some(msg(m))));
    }

    #[test]
    fn missing_content_length_is_an_error_and_leaves_buffer() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n";
        let mut buf = BytesMut::from(&m[..]);
        assert_eq!(
            next_frame(&mut buf, 65535),
            Err(FramingError::MissingContentLength)
        );
        assert_eq!(&buf[..], &m[..]);
        assert_eq!(headers_end(&buf), Some(m.len()));
        assert_eq!(FramingError::MissingContentLength.sip_status(), 400);
    }

    #[test]
    fn bad_content_length_values() {
        let cases: &[(&[u8], FramingError)] = &[
            (b"l: -1", FramingError::NegativeContentLength),
            (b"l: abc", FramingError::InvalidContentLength),
            (b"l: ", FramingError::InvalidContentLength),
            (b"l: +1", FramingError::InvalidContentLength),
            (b"l: 1 2", FramingError::InvalidContentLength),
            (b"l: 12, 12", FramingError::InvalidContentLength),
            (b"l: 0x10", FramingError::InvalidContentLength),
            (b"l: --1", FramingError::InvalidContentLength),
            (
                b"l: 99999999999999999999999",
                FramingError::ContentLengthOverflow,
            ),
            (
                b"l: 1\r\nContent-Length: 2",
                FramingError::ConflictingContentLength {
                    first: 1,
                    second: 2,
                },
            ),
        ];
        for (header, err) in cases {
            let mut m = b"MESSAGE sip:a@b SIP/2.0\r\n".to_vec();
            m.extend_from_slice(header);
            m.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                one(&m),
                Err(err.clone()),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn bare_lf_inside_a_header_does_not_start_a_header() {
        // A lenient parser might read "l: 5" as a header; the framer must not, or the
        // two would disagree on where the message ends.
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\nl: 5\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(one(m), Ok(Some(msg(m))));
    }

    #[test]
    fn equal_duplicate_content_length_is_accepted() {
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\nContent-Length: 02\r\n\r\nab";
        assert_eq!(one(m), Ok(Some(msg(m))));
    }

    #[test]
    fn huge_content_length_is_rejected_before_the_body_arrives() {
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n";
        let err = one(m).unwrap_err();
        assert!(
            matches!(err, FramingError::MessageTooLarge { limit: 65535, .. }),
            "{err:?}"
        );
        assert_eq!(err.sip_status(), 513);
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nl: 65535\r\n\r\n";
        assert!(matches!(one(m), Err(FramingError::MessageTooLarge { .. })));
    }

    #[test]
    fn message_exactly_at_the_limit_is_accepted() {
        let mut m = b"MESSAGE sip:a@b SIP/2.0\r\nl: 10\r\n\r\n".to_vec();
        m.extend_from_slice(b"0123456789");
        let mut buf = BytesMut::from(&m[..]);
        assert_eq!(next_frame(&mut buf, m.len()), Ok(Some(msg(&m))));
        let mut buf = BytesMut::from(&m[..]);
        assert!(matches!(
            next_frame(&mut buf, m.len() - 1),
            Err(FramingError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn header_overflow_without_blank_line() {
        let mut framer = Framer::new(64, 1024);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"INVITE sip:a@b SIP/2.0\r\n");
        assert_eq!(framer.next_frame(&mut buf), Ok(None));
        let mut result = Ok(None);
        for _ in 0..10 {
            buf.extend_from_slice(b"X-Junk: aaaa\r\n");
            result = framer.next_frame(&mut buf);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FramingError::HeadersTooLarge { limit: 64 }));
        assert!(
            buf.len() <= 64 + 14,
            "rejected soon after the limit, at {}",
            buf.len()
        );
    }

    #[test]
    fn header_limit_is_exact() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        let mut f = Framer::new(m.len(), 1024);
        let mut buf = BytesMut::from(&m[..]);
        assert_eq!(f.next_frame(&mut buf), Ok(Some(msg(m))));
        let mut f = Framer::new(m.len() - 1, 1024);
        let mut buf = BytesMut::from(&m[..]);
        assert_eq!(
            f.next_frame(&mut buf),
            Err(FramingError::HeadersTooLarge { limit: m.len() - 1 })
        );
        // Same when the block arrives byte by byte.
        let mut f = Framer::new(m.len() - 1, 1024);
        assert_eq!(
            feed(m, &vec![1; m.len()], &mut f),
            Err(FramingError::HeadersTooLarge { limit: m.len() - 1 })
        );
    }

    #[test]
    fn bare_lf_header_block_is_not_a_terminator() {
        let m = b"OPTIONS sip:a@b SIP/2.0\nl: 0\n\n";
        assert_eq!(one(m), Ok(None));
    }

    #[test]
    fn terminator_straddling_reads_is_found() {
        let m = OPTIONS;
        for cut in 1..m.len() {
            let mut f = Framer::new(4096, 4096);
            let mut buf = BytesMut::from(&m[..cut]);
            assert_eq!(f.next_frame(&mut buf), Ok(None), "cut {cut}");
            buf.extend_from_slice(&m[cut..]);
            assert_eq!(f.next_frame(&mut buf), Ok(Some(msg(m))), "cut {cut}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator over an alphabet rich in framing characters.
        let alphabet = b"\r\n :l0123456789-Content-Length\tINVITE";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let mut data = Vec::new();
            let len = (state % 200) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                data.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let mut f = Framer::new(64, 128);
            let mut buf = BytesMut::new();
            for chunk in data.chunks(7) {
                buf.extend_from_slice(chunk);
                while let Ok(Some(_)) = f.next_frame(&mut buf) {}
            }
            state = state.wrapping_add(1);
        }
    }
}
