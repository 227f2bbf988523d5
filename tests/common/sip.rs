//! A small SIP client for black-box tests: builds requests, frames and parses responses,
//! talks UDP and TCP on loopback, and computes RFC 7616 / RFC 8760 digest credentials
//! (MD5 and SHA-256) itself, so the tests do not trust the daemon's own code for any of it.
//!
//! Deliberately independent of `sentralbord::sip`: a bug shared by the daemon's parser and
//! the tests' parser would otherwise hide itself.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use md5::Md5;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::deadline;

/// How long a test waits for a final response before failing.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A random token for Call-IDs, tags and cnonces.
pub fn token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// A fresh RFC 3261 branch (magic cookie + random).
pub fn branch() -> String {
    format!("z9hG4bK-t{}", token())
}

/// The full name of a header given in compact form (RFC 3261 s7.3.3), lowercased.
fn canonical_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let full = match lower.as_str() {
        "v" => "via",
        "i" => "call-id",
        "m" => "contact",
        "f" => "from",
        "t" => "to",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        "o" => "event",
        "u" => "allow-events",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        _ => return lower,
    };
    full.to_owned()
}

/// The start line of a parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// The method token.
        method: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code.
        status: u16,
        /// The reason phrase (lossy UTF-8).
        reason: String,
    },
}

/// A parsed SIP message (the tests mostly see responses).
#[derive(Debug, Clone)]
pub struct SipMessage {
    /// Request or response line.
    pub start: StartLine,
    /// Headers in order: (name as sent, unfolded value).
    pub headers: Vec<(String, String)>,
    /// The body, exactly Content-Length octets when that header is present.
    pub body: Vec<u8>,
    /// The whole message as received.
    pub raw: Vec<u8>,
}

impl SipMessage {
    /// Status code, or 0 for a request.
    pub fn status(&self) -> u16 {
        match self.start {
            StartLine::Response { status, .. } => status,
            StartLine::Request { .. } => 0,
        }
    }

    /// All values of a header (compact forms match), in order; comma lists are not split.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let want = canonical_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| canonical_name(n) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The CSeq method, if present.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")
            .and_then(|v| v.split_whitespace().nth(1))
    }

    /// Every contact in every Contact header, split at top-level commas.
    pub fn contacts(&self) -> Vec<Contact> {
        self.headers("Contact")
            .into_iter()
            .flat_map(split_top_level_commas)
            .filter(|s| !s.trim().is_empty())
            .map(|s| Contact::parse(&s))
            .collect()
    }

    /// The message as lossy text, for assertion messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// One contact of a Contact header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The URI (without the angle brackets).
    pub uri: String,
    /// The `expires` header parameter, if any.
    pub expires: Option<u64>,
    /// The raw contact-param text.
    pub raw: String,
}

impl Contact {
    fn parse(s: &str) -> Contact {
        let raw = s.trim().to_owned();
        let (uri, params) = match (raw.find('<'), raw.find('>')) {
            (Some(a), Some(b)) if a < b => (raw[a + 1..b].to_owned(), raw[b + 1..].to_owned()),
            _ => match raw.find(';') {
                Some(i) => (raw[..i].to_owned(), raw[i..].to_owned()),
                None => (raw.clone(), String::new()),
            },
        };
        let expires = params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if k.trim().eq_ignore_ascii_case("expires") {
                v.trim().trim_matches('"').parse().ok()
            } else {
                None
            }
        });
        Contact { uri, expires, raw }
    }
}

/// Splits a header value at commas outside quotes and angle brackets.
pub fn split_top_level_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
    for ch in v.chars() {
        if escaped {
            escaped = false;
            cur.push(ch);
            continue;
        }
        match ch {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out
}

/// Why a byte buffer is not (yet) one SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed (stream transports).
    Incomplete,
    /// The bytes cannot be a SIP message.
    Invalid(String),
}

/// Parses one message from the front of `buf`; returns it and the bytes it used.
/// Without Content-Length the body is the rest of the buffer (datagram semantics).
pub fn parse_message(buf: &[u8], stream: bool) -> Result<(SipMessage, usize), FrameError> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Err(FrameError::Incomplete);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = code
            .parse::<u16>()
            .map_err(|_| FrameError::Invalid(format!("bad status line {first:?}")))?;
        StartLine::Response {
            status,
            reason: reason.to_owned(),
        }
    } else {
        let method = first
            .split(' ')
            .next()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| FrameError::Invalid(format!("bad start line {first:?}")))?;
        StartLine::Request {
            method: method.to_owned(),
        }
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => return Err(FrameError::Invalid("continuation before any header".into())),
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        } else {
            return Err(FrameError::Invalid(format!(
                "header line without ':' {line:?}"
            )));
        }
    }
    let body_start = head_end + 4;
    let content_length = headers
        .iter()
        .find(|(n, _)| canonical_name(n) == "content-length")
        .map(|(_, v)| v.trim().parse::<usize>());
    let body_len = match content_length {
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(FrameError::Invalid("bad Content-Length".into())),
        None if stream => 0,
        None => buf.len() - body_start,
    };
    let end = body_start
        .checked_add(body_len)
        .ok_or_else(|| FrameError::Invalid("Content-Length overflow".into()))?;
    if end > buf.len() {
        return if stream {
            Err(FrameError::Incomplete)
        } else {
            Err(FrameError::Invalid(
                "Content-Length beyond the datagram".into(),
            ))
        };
    }
    Ok((
        SipMessage {
            start,
            headers,
            body: buf[body_start..end].to_vec(),
            raw: buf[..end].to_vec(),
        },
        end,
    ))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A SIP client over one transport.
pub trait SipClient {
    /// `UDP` or `TCP`, for Via headers.
    fn transport(&self) -> &'static str;
    /// The client's own address (for Via and Contact).
    fn local_addr(&self) -> SocketAddr;
    /// The daemon's address.
    fn server_addr(&self) -> SocketAddr;
    /// Sends raw bytes.
    fn send(&mut self, bytes: &[u8]);
    /// Receives the next message, or `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<SipMessage>;

    /// Sends a request and returns its final response (1xx skipped). Over UDP the request
    /// is retransmitted like RFC 3261 Timer E (500 ms, doubling, at most 4 s) until a
    /// response arrives. Panics after [`RESPONSE_TIMEOUT`].
    fn request(&mut self, bytes: &[u8]) -> SipMessage {
        let end = deadline(RESPONSE_TIMEOUT);
        let mut interval = Duration::from_millis(500);
        self.send(bytes);
        let mut next_retransmit = deadline(interval);
        let mut got_provisional = false;
        loop {
            let now = deadline(Duration::ZERO);
            if now >= end {
                panic!(
                    "no final response within {RESPONSE_TIMEOUT:?} over {} from {} to:\n{}",
                    self.transport(),
                    self.server_addr(),
                    String::from_utf8_lossy(bytes)
                );
            }
            let wait = end.min(next_retransmit).saturating_duration_since(now);
            match self.recv(wait.max(Duration::from_millis(1))) {
                Some(msg) if msg.status() >= 200 => return msg,
                Some(msg) if msg.status() >= 100 => got_provisional = true,
                Some(_) => {} // a request from the daemon: not what we wait for
                None => {}
            }
            if self.transport() == "UDP"
                && !got_provisional
                && deadline(Duration::ZERO) >= next_retransmit
            {
                self.send(bytes);
                interval = (interval * 2).min(Duration::from_secs(4));
                next_retransmit = deadline(interval);
            }
        }
    }
}

/// A UDP client on loopback (127.0.0.1, or ::1 for an IPv6 server; ephemeral port).
pub struct UdpClient {
    sock: UdpSocket,
    server: SocketAddr,
}

impl UdpClient {
    /// Binds loopback port 0, in the server's address family, for talking to `server`.
    pub fn new(server: SocketAddr) -> UdpClient {
        let local = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(local).expect("bind a loopback UDP socket");
        UdpClient { sock, server }
    }

    /// Receives one datagram from anyone, raw, or `None` after `timeout`.
    pub fn recv_raw(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set_read_timeout");
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                buf.truncate(n);
                Some((buf, from))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            // ECONNREFUSED from an earlier ICMP error: treat as "nothing now".
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => None,
            Err(e) => panic!("UDP recv failed: {e}"),
        }
    }
}

impl SipClient for UdpClient {
    fn transport(&self) -> &'static str {
        "UDP"
    }

    fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local_addr")
    }

    fn server_addr(&self) -> SocketAddr {
        self.server
    }

    fn send(&mut self, bytes: &[u8]) {
        self.sock
            .send_to(bytes, self.server)
            .expect("UDP send on loopback");
    }

    fn recv(&mut self, timeout: Duration) -> Option<SipMessage> {
        let end = deadline(timeout);
        loop {
            let left = end.saturating_duration_since(deadline(Duration::ZERO));
            if left.is_zero() {
                return None;
            }
            let (buf, from) = self.recv_raw(left)?;
            if from != self.server {
                continue; // not the daemon: ignore
            }
            match parse_message(&buf, false) {
                Ok((msg, _)) => return Some(msg),
                Err(e) => panic!(
                    "the daemon sent an unparseable datagram ({e:?}):\n{}",
                    String::from_utf8_lossy(&buf)
                ),
            }
        }
    }
}

/// A TCP client connected to the daemon.
pub struct TcpClient {
    stream: TcpStream,
    server: SocketAddr,
    buf: Vec<u8>,
    closed: bool,
}

impl TcpClient {
    /// Connects to `server` (at most 5 s).
    pub fn connect(server: SocketAddr) -> TcpClient {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .expect("TCP connect to the daemon");
        stream.set_nodelay(true).expect("nodelay");
        TcpClient {
            stream,
            server,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Half-closes the connection (no more bytes from us).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Whether the daemon closed the connection (seen by an earlier read).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl SipClient for TcpClient {
    fn transport(&self) -> &'static str {
        "TCP"
    }

    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    fn server_addr(&self) -> SocketAddr {
        self.server
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("TCP write to the daemon");
    }

    fn recv(&mut self, timeout: Duration) -> Option<SipMessage> {
        let end = deadline(timeout);
        loop {
            // RFC 5626 keep-alive CRLFs may precede a message.
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            match parse_message(&self.buf, true) {
                Ok((msg, used)) => {
                    self.buf.drain(..used);
                    return Some(msg);
                }
                Err(FrameError::Incomplete) => {}
                Err(FrameError::Invalid(e)) => {
                    panic!(
                        "the daemon sent an unparseable message over TCP ({e}):\n{}",
                        String::from_utf8_lossy(&self.buf)
                    )
                }
            }
            if self.closed {
                return None;
            }
            let left = end.saturating_duration_since(deadline(Duration::ZERO));
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set_read_timeout");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.closed = true
                }
                Err(e) => panic!("TCP read failed: {e}"),
            }
        }
    }
}

/// Digest hash algorithms of RFC 8760.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617 / RFC 8760).
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Parameters, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses a header value; `None` unless the scheme is Digest.
    pub fn parse(value: &str) -> Option<Challenge> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let params = split_top_level_commas(rest)
            .into_iter()
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_lowercase(), v.replace("\\\"", "\"")))
            })
            .collect();
        Some(Challenge { params })
    }

    /// A parameter value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The algorithm (MD5 when absent, RFC 7616 s3.3).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.get("algorithm") {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// Whether `stale=TRUE` (case-insensitive, RFC 7616).
    pub fn is_stale(&self) -> bool {
        self.get("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    /// Whether qop includes `auth`.
    pub fn offers_qop_auth(&self) -> bool {
        self.get("qop")
            .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")))
    }
}

/// Credentials for one digest computation.
pub struct Credentials<'a> {
    /// SIP username.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
    /// Method of the request being authorized.
    pub method: &'a str,
    /// digest-uri (the Request-URI).
    pub uri: &'a str,
    /// Nonce count (1 for the first use of a nonce).
    pub nc: u32,
}

/// Builds an `Authorization` header value answering `challenge` (RFC 7616 s3.4.1 with
/// qop=auth when offered, RFC 2069 style otherwise).
pub fn authorization(challenge: &Challenge, creds: &Credentials<'_>) -> String {
    let alg = challenge
        .algorithm()
        .expect("a challenge with a known algorithm");
    let realm = challenge.get("realm").unwrap_or_default();
    let nonce = challenge.get("nonce").unwrap_or_default();
    let ha1 = alg.hash(&format!("{}:{}:{}", creds.username, realm, creds.password));
    let ha2 = alg.hash(&format!("{}:{}", creds.method, creds.uri));
    let mut h = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}",
        creds.username,
        realm,
        nonce,
        creds.uri,
        alg.token()
    );
    if challenge.offers_qop_auth() {
        let cnonce = token();
        let nc = format!("{:08x}", creds.nc);
        let response = alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        h.push_str(&format!(
            ", response=\"{response}\", qop=auth, cnonce=\"{cnonce}\", nc={nc}"
        ));
    } else {
        let response = alg.hash(&format!("{ha1}:{nonce}:{ha2}"));
        h.push_str(&format!(", response=\"{response}\""));
    }
    if let Some(opaque) = challenge.get("opaque") {
        h.push_str(&format!(", opaque=\"{opaque}\""));
    }
    h
}

/// What a REGISTER carries (RFC 3261 s10.2).
#[derive(Debug, Clone)]
pub struct Register {
    /// User part of the address-of-record.
    pub user: String,
    /// Domain of the address-of-record and of the Request-URI.
    pub domain: String,
    /// Call-ID (keep it across refreshes).
    pub call_id: String,
    /// From tag (keep it across refreshes).
    pub from_tag: String,
    /// CSeq number.
    pub cseq: u32,
    /// Contact header value(s); `None` sends no Contact (a query).
    pub contact: Option<String>,
    /// Expires header, if any.
    pub expires: Option<u32>,
    /// Authorization header value, if any.
    pub authorization: Option<String>,
}

impl Register {
    /// A first REGISTER for `user@domain` binding `client`'s own address.
    pub fn new(user: &str, domain: &str, client: &dyn SipClient) -> Register {
        Register {
            user: user.to_owned(),
            domain: domain.to_owned(),
            call_id: format!("{}@127.0.0.1", token()),
            from_tag: token(),
            cseq: 1,
            contact: Some(format!(
                "<sip:{user}@{};transport={}>",
                client.local_addr(),
                client.transport().to_ascii_lowercase()
            )),
            expires: Some(600),
            authorization: None,
        }
    }

    /// The Request-URI (also the digest-uri).
    pub fn request_uri(&self) -> String {
        format!("sip:{}", self.domain)
    }

    /// Serializes the request for `client` (Via names the client's own socket, with rport).
    pub fn to_bytes(&self, client: &dyn SipClient) -> Vec<u8> {
        let mut m = format!(
            "REGISTER {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/{tp} {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n",
            ruri = self.request_uri(),
            tp = client.transport(),
            local = client.local_addr(),
            branch = branch(),
            user = self.user,
            domain = self.domain,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        if let Some(c) = &self.contact {
            m.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = self.expires {
            m.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &self.authorization {
            m.push_str(&format!("Authorization: {a}\r\n"));
        }
        m.push_str("User-Agent: sentralbord-tests\r\nContent-Length: 0\r\n\r\n");
        m.into_bytes()
    }
}

/// The digest challenges of a 401, in header order.
pub fn challenges(resp: &SipMessage) -> Vec<Challenge> {
    resp.headers("WWW-Authenticate")
        .into_iter()
        .filter_map(Challenge::parse)
        .collect()
}

/// The first challenge with `alg`, if any.
pub fn challenge_for(resp: &SipMessage, alg: Algorithm) -> Option<Challenge> {
    challenges(resp)
        .into_iter()
        .find(|c| c.algorithm() == Some(alg))
}

/// Sends `reg` unauthenticated, expects 401, answers the `alg` challenge with `password`
/// and returns (the 401, the final response to the authenticated REGISTER).
/// `reg.cseq` is advanced for each request sent.
pub fn register_with_digest(
    client: &mut dyn SipClient,
    reg: &mut Register,
    alg: Algorithm,
    password: &str,
) -> (SipMessage, SipMessage) {
    reg.authorization = None;
    let first = client.request(&reg.to_bytes(client));
    assert_eq!(
        first.status(),
        401,
        "unauthenticated REGISTER must be challenged:\n{}",
        first.text()
    );
    let challenge = challenge_for(&first, alg)
        .unwrap_or_else(|| panic!("no {} challenge in:\n{}", alg.token(), first.text()));
    reg.cseq += 1;
    let uri = reg.request_uri();
    reg.authorization = Some(authorization(
        &challenge,
        &Credentials {
            username: &reg.user,
            password,
            method: "REGISTER",
            uri: &uri,
            nc: 1,
        },
    ));
    let second = client.request(&reg.to_bytes(client));
    reg.cseq += 1;
    (first, second)
}

/// An OPTIONS addressed to the daemon itself.
pub fn options_request(client: &dyn SipClient) -> Vec<u8> {
    let server = client.server_addr();
    format!(
        "OPTIONS sip:{server} SIP/2.0\r\n\
         Via: SIP/2.0/{tp} {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={tag}\r\n\
         To: <sip:{server}>\r\n\
         Call-ID: {call_id}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        tp = client.transport(),
        local = client.local_addr(),
        branch = branch(),
        tag = token(),
        call_id = token(),
    )
    .into_bytes()
}
