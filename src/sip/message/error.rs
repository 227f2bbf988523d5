//! Parse errors of the SIP codec and their mapping to a SIP status (one place, RFC 3261 s8.2 / s21.4).

use thiserror::Error;

/// Why a message could not be parsed or failed the structural checks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("malformed start line")]
    StartLine,
    #[error("unsupported SIP version")]
    Version,
    #[error("malformed status code")]
    StatusCode,
    #[error("malformed Request-URI")]
    RequestUri,
    #[error("headers in the Request-URI")]
    RequestUriHeaders,
    #[error("malformed header line")]
    HeaderLine,
    #[error("no blank line after the headers")]
    Unterminated,
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("{0} value out of range")]
    OutOfRange(&'static str),
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    #[error("Content-Length larger than the message")]
    BodyTruncated,
    #[error("message larger than the limit")]
    TooLarge,
}

impl ParseError {
    /// The SIP status and reason phrase to answer a request that failed with this error.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::Version => (505, "Version Not Supported"),
            ParseError::TooLarge => (513, "Message Too Large"),
            ParseError::Empty | ParseError::StartLine => {
                (400, "Bad Request - Malformed Start Line")
            }
            ParseError::StatusCode => (400, "Bad Request - Malformed Status Code"),
            ParseError::RequestUri => (400, "Bad Request - Malformed Request-URI"),
            ParseError::RequestUriHeaders => (400, "Bad Request - Headers In Request-URI"),
            ParseError::HeaderLine => (400, "Bad Request - Malformed Header Line"),
            ParseError::Unterminated => (400, "Bad Request - Unterminated Headers"),
            ParseError::Missing(h) => (400, missing_reason(h)),
            ParseError::Duplicate(h) => (400, duplicate_reason(h)),
            ParseError::Malformed(h) => (400, malformed_reason(h)),
            ParseError::OutOfRange(h) => (400, range_reason(h)),
            ParseError::CSeqMethodMismatch => (400, "Bad Request - CSeq Method Mismatch"),
            ParseError::BodyTruncated => (400, "Bad Request - Content-Length Exceeds Body"),
        }
    }
}

// Reason phrases are static so the hot path builds no strings.
fn missing_reason(h: &str) -> &'static str {
    match h {
        "Via" => "Bad Request - Missing Via",
        "From" => "Bad Request - Missing From",
        "To" => "Bad Request - Missing To",
        "Call-ID" => "Bad Request - Missing Call-ID",
        "CSeq" => "Bad Request - Missing CSeq",
        _ => "Bad Request - Missing Header",
    }
}

fn duplicate_reason(h: &str) -> &'static str {
    match h {
        "From" => "Bad Request - Multiple From",
        "To" => "Bad Request - Multiple To",
        "Call-ID" => "Bad Request - Multiple Call-ID",
        "CSeq" => "Bad Request - Multiple CSeq",
        "Max-Forwards" => "Bad Request - Multiple Max-Forwards",
        "Content-Length" => "Bad Request - Multiple Content-Length",
        "Content-Type" => "Bad Request - Multiple Content-Type",
        _ => "Bad Request - Duplicate Header",
    }
}

fn malformed_reason(h: &str) -> &'static str {
    match h {
        "Via" => "Bad Request - Malformed Via",
        "From" => "Bad Request - Malformed From",
        "To" => "Bad Request - Malformed To",
        "Call-ID" => "Bad Request - Malformed Call-ID",
        "CSeq" => "Bad Request - Malformed CSeq",
        "Max-Forwards" => "Bad Request - Malformed Max-Forwards",
        "Content-Length" => "Bad Request - Malformed Content-Length",
        "Contact" => "Bad Request - Malformed Contact",
        "Expires" => "Bad Request - Malformed Expires",
        _ => "Bad Request - Malformed Header",
    }
}

fn range_reason(h: &str) -> &'static str {
    match h {
        "CSeq" => "Bad Request - CSeq Out Of Range",
        "Max-Forwards" => "Bad Request - Max-Forwards Out Of Range",
        "Content-Length" => "Bad Request - Content-Length Out Of Range",
        "Expires" => "Bad Request - Expires Out Of Range",
        _ => "Bad Request - Value Out Of Range",
    }
}
