//! Fuzzes the TCP stream framer: arbitrary bytes fed in arbitrary chunk sizes.
//!
//! Input layout: byte 0 and 1 seed the chunk sizes, the rest is the stream.
//! Checked: no panic; every message frame is within the limits, starts with a
//! start-line (not a CRLF) and holds a complete header block; the consumed bytes are
//! exactly the frames plus skipped CRLF pairs; chunked framing gives the same frames and
//! the same final outcome as framing the whole stream at once; and the stateless
//! `next_frame` obeys the same accounting.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use sentralbord::transport::framing::{headers_end, next_frame, Frame, Framer, FramingError, PING};

const MAX_HEADER: usize = 16384;
const MAX_MESSAGE: usize = 65535;

/// What one framing run produced.
#[derive(Debug, PartialEq)]
struct Run {
    frames: Vec<Frame>,
    error: Option<FramingError>,
    /// Bytes the framer consumed (fed minus left in the buffer).
    consumed: usize,
}

/// Chunk sizes from a two-byte seed: a small xorshift so that sizes vary per chunk.
struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    fn new(a: u8, b: u8) -> Self {
        // 0 means "everything in one chunk"; otherwise chunks of 1..=max bytes, where
        // small maxima exercise byte-by-byte trickling and large ones whole messages.
        let max = match a {
            0 => usize::MAX,
            1..=127 => usize::from(a % 16) + 1,
            _ => usize::from(a) * 64,
        };
        Self {
            state: u32::from(b) << 8 | u32::from(a) | 1,
            max,
        }
    }

    fn next(&mut self) -> usize {
        if self.max == usize::MAX {
            return usize::MAX;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        (self.state as usize % self.max) + 1
    }
}

/// True when `gap` is nothing but CRLF pairs (what the framer may skip between frames).
fn only_crlf_pairs(gap: &[u8]) -> bool {
    gap.len().is_multiple_of(2) && gap.chunks(2).all(|c| c == b"\r\n")
}

/// Checks one frame against the stream: the bytes between the previous frame end and
/// this one must be CRLF pairs, then the frame bytes themselves.
fn check_frame(stream: &[u8], prev_end: usize, now_consumed: usize, frame: &Frame) {
    let body: &[u8] = match frame {
        Frame::Message(m) => m,
        Frame::KeepAlive => PING,
    };
    assert!(
        now_consumed >= prev_end + body.len(),
        "frame longer than the bytes consumed"
    );
    let gap_end = now_consumed - body.len();
    let gap = &stream[prev_end..gap_end];
    assert!(
        only_crlf_pairs(gap),
        "skipped bytes before a frame are not CRLF pairs: {gap:?}"
    );
    assert_eq!(
        &stream[gap_end..now_consumed],
        body,
        "frame is not the stream bytes"
    );
    if let Frame::Message(m) = frame {
        check_message(m, MAX_HEADER, MAX_MESSAGE);
    }
}

fn check_message(m: &[u8], max_header: usize, max_message: usize) {
    assert!(
        m.len() <= max_message,
        "message of {} bytes over the limit",
        m.len()
    );
    assert!(!m.starts_with(b"\r\n"), "message starts with a CRLF");
    let head = headers_end(m).expect("message frame without a blank line");
    assert!(
        head <= max_header,
        "header block of {head} bytes over the limit"
    );
}

/// Checks what an error leaves in the buffer.
fn check_error(err: &FramingError, buf: &[u8], max_header: usize) {
    assert!(!buf.starts_with(b"\r\n"), "error buffer starts with CRLF");
    match err {
        FramingError::HeadersTooLarge { limit } => {
            assert_eq!(*limit, max_header);
            assert!(
                buf.len() >= max_header,
                "headers too large on a short buffer"
            );
            assert!(
                headers_end(&buf[..max_header]).is_none(),
                "headers too large though the blank line is within the limit"
            );
        }
        _ => {
            // The caller answers 400/513 from the complete header block.
            let head = headers_end(buf).expect("error without a complete header block");
            assert!(head <= max_header);
        }
    }
}

/// Feeds `stream` to a fresh framer in chunks, checking every step.
fn run_framer(stream: &[u8], mut chunks: Chunks) -> Run {
    let mut framer = Framer::new(MAX_HEADER, MAX_MESSAGE);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut prev_end = 0usize;
    let mut frames = Vec::new();
    while fed < stream.len() {
        let n = chunks.next().min(stream.len() - fed);
        buf.put_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.len();
            match framer.next_frame(&mut buf) {
                Ok(Some(frame)) => {
                    let consumed = fed - buf.len();
                    check_frame(stream, prev_end, consumed, &frame);
                    prev_end = consumed;
                    frames.push(frame);
                }
                Ok(None) => {
                    // Only CRLFs may vanish without a frame.
                    let consumed = fed - buf.len();
                    let gap = &stream[prev_end..consumed];
                    assert!(
                        only_crlf_pairs(gap),
                        "bytes vanished without a frame: {gap:?}"
                    );
                    assert!(buf.len() <= before);
                    if !buf.is_empty() && !Framer::in_progress(&buf) {
                        assert!(PING.starts_with(&buf), "idle buffer is not a ping prefix");
                    }
                    break;
                }
                Err(err) => {
                    check_error(&err, &buf, MAX_HEADER);
                    return Run {
                        frames,
                        error: Some(err),
                        consumed: fed - buf.len(),
                    };
                }
            }
        }
    }
    Run {
        frames,
        error: None,
        consumed: fed - buf.len(),
    }
}

/// The stateless convenience function over the whole stream.
fn run_stateless(stream: &[u8]) {
    let mut buf = BytesMut::from(stream);
    let mut prev_end = 0usize;
    loop {
        match next_frame(&mut buf, MAX_MESSAGE) {
            Ok(Some(frame)) => {
                let consumed = stream.len() - buf.len();
                let body: &[u8] = match &frame {
                    Frame::Message(m) => {
                        check_message(m, MAX_MESSAGE, MAX_MESSAGE);
                        m
                    }
                    Frame::KeepAlive => PING,
                };
                let gap = &stream[prev_end..consumed - body.len()];
                assert!(
                    only_crlf_pairs(gap),
                    "skipped bytes are not CRLF pairs: {gap:?}"
                );
                prev_end = consumed;
            }
            Ok(None) => break,
            Err(err) => {
                check_error(&err, &buf, MAX_MESSAGE);
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let stream = &data[2..];
    let chunked = run_framer(stream, Chunks::new(data[0], data[1]));
    let whole = run_framer(stream, Chunks::new(0, 0));
    assert_eq!(
        chunked, whole,
        "chunked framing differs from whole-buffer framing"
    );
    run_stateless(stream);
});
