//! The `[lookup]` settings made ready to use: the URL template parsed, the credentials
//! turned into an `Authorization` header, numbers turned into their national form.

use std::fmt;
use std::time::Duration;

use hyper::header::HeaderValue;

use crate::config::{Config, LookupSettings, Numbering};

use super::LookupError;

/// Longest caller name passed on, in characters (a display name, not a document).
pub(crate) const MAX_NAME_CHARS: usize = 100;
/// Longest caller address passed on, in characters.
pub(crate) const MAX_ADDRESS_CHARS: usize = 200;

/// The validated `[lookup]` settings in the form the [`super::LookupService`] uses.
#[derive(Clone)]
pub struct LookupSettingsResolved {
    /// The directory service's URL template; `None` skips the HTTP step.
    pub(crate) template: Option<UrlTemplate>,
    /// `Authorization` header value (marked sensitive), if credentials are configured.
    pub(crate) auth: Option<HeaderValue>,
    /// JSON pointer to the name.
    pub(crate) name_pointer: String,
    /// JSON pointer to the address; empty: none.
    pub(crate) address_pointer: String,
    /// Bound on a whole lookup.
    pub(crate) budget: Duration,
    /// Bound on one HTTP request (may exceed the budget: the answer is still cached).
    pub(crate) request_timeout: Duration,
    /// Lifetime of a positive cache entry in seconds (0: not cached).
    pub(crate) cache_ttl_s: u64,
    /// Lifetime of a negative cache entry in seconds (0: not cached).
    pub(crate) negative_cache_ttl_s: u64,
    /// Most HTTP requests in flight.
    pub(crate) max_concurrent: usize,
    /// How `{national}` is formed.
    pub(crate) numbering: Numbering,
}

impl fmt::Debug for LookupSettingsResolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials are secret; the template is shown without its query string.
        f.debug_struct("LookupSettingsResolved")
            .field(
                "template",
                &self.template.as_ref().map(UrlTemplate::redacted),
            )
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("name_pointer", &self.name_pointer)
            .field("address_pointer", &self.address_pointer)
            .field("budget", &self.budget)
            .field("request_timeout", &self.request_timeout)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .field("negative_cache_ttl_s", &self.negative_cache_ttl_s)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

impl LookupSettingsResolved {
    /// Builds the resolved settings; `numbering` says how `{national}` is formed (the
    /// trunk's country code and national prefix).
    pub fn new(settings: &LookupSettings, numbering: &Numbering) -> Result<Self, LookupError> {
        let template = settings
            .url_template
            .as_deref()
            .map(UrlTemplate::parse)
            .transpose()?;
        let auth = match (&settings.username, &settings.bearer_token) {
            (Some(_), Some(_)) => return Err(LookupError::BadCredentials),
            (Some(user), None) => {
                let password = settings.password.as_deref().unwrap_or("");
                if user.contains(':') {
                    // RFC 7617 s2: the user-id cannot contain a colon.
                    return Err(LookupError::BadCredentials);
                }
                let encoded = base64(format!("{user}:{password}").as_bytes());
                Some(sensitive_header(&format!("Basic {encoded}"))?)
            }
            (None, Some(token)) => Some(sensitive_header(&format!("Bearer {token}"))?),
            (None, None) => None,
        };
        for pointer in [&settings.name_pointer, &settings.address_pointer] {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(LookupError::BadPointer);
            }
        }
        if settings.budget_ms == 0 || settings.request_timeout_ms == 0 {
            return Err(LookupError::ZeroTimeout);
        }
        Ok(Self {
            template,
            auth,
            name_pointer: settings.name_pointer.clone(),
            address_pointer: settings.address_pointer.clone(),
            budget: settings.budget(),
            request_timeout: settings.request_timeout(),
            cache_ttl_s: settings.cache_ttl_s,
            negative_cache_ttl_s: settings.negative_cache_ttl_s,
            max_concurrent: usize::try_from(settings.max_concurrent)
                .unwrap_or(usize::MAX)
                .max(1),
            numbering: numbering.clone(),
        })
    }

    /// Builds the resolved settings from the whole configuration: `[lookup]` with the
    /// numbering of the first trunk profile (the default numbering when there is none).
    pub fn from_config(config: &Config) -> Result<Self, LookupError> {
        let numbering = config
            .profiles
            .iter()
            .find_map(|p| p.trunk())
            .map(|t| t.numbering.clone())
            .unwrap_or_default();
        Self::new(&config.daemon.lookup, &numbering)
    }

    /// The time budget of one lookup.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Whether lookups go to an HTTP directory service (a URL template is configured).
    pub fn has_directory(&self) -> bool {
        self.template.is_some()
    }

    /// The national form of an E.164 number: the trunk's national prefix and the national
    /// significant number for a number in the trunk's country (`+4721000000` ->
    /// `21000000`), the international prefix and the digits otherwise (`+4687654321` ->
    /// `004687654321`).
    pub(crate) fn national(&self, e164: &str) -> String {
        let digits = e164.strip_prefix('+').unwrap_or(e164);
        let n = &self.numbering;
        match digits.strip_prefix(n.country_code.as_str()) {
            Some(rest) if !n.country_code.is_empty() => format!("{}{rest}", n.national_prefix),
            _ => format!("{}{digits}", n.international_prefix),
        }
    }
}

/// A header value that `hyper` keeps out of its debug output.
fn sensitive_header(value: &str) -> Result<HeaderValue, LookupError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| LookupError::BadCredentials)?;
    v.set_sensitive(true);
    Ok(v)
}

/// One piece of a URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Text copied as it is.
    Literal(String),
    /// `{number}`: the E.164 number, percent-encoded.
    Number,
    /// `{national}`: the national form, percent-encoded.
    National,
}

/// A parsed URL template with `{number}` and `{national}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlTemplate {
    segments: Vec<Segment>,
    /// The template cut before its query string: safe to log.
    redacted: String,
    /// Whether the scheme is `https`.
    https: bool,
}

impl UrlTemplate {
    /// Parses a template; it must be an http/https URL with at least one placeholder and
    /// no unknown ones, and expand to a valid URI.
    pub(crate) fn parse(text: &str) -> Result<Self, LookupError> {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        let https = lower.starts_with("https://");
        if !https && !lower.starts_with("http://") {
            return Err(LookupError::BadTemplate {
                reason: "must start with http:// or https://",
            });
        }
        let mut segments = Vec::new();
        let mut rest = text;
        let mut placeholders = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(LookupError::BadTemplate {
                reason: "has an unclosed {",
            })?;
            segments.push(match &after[..close] {
                "number" => Segment::Number,
                "national" => Segment::National,
                _ => {
                    return Err(LookupError::BadTemplate {
                        reason: "has a placeholder other than {number} or {national}",
                    })
                }
            });
            placeholders += 1;
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        if placeholders == 0 {
            return Err(LookupError::BadTemplate {
                reason: "has neither {number} nor {national}",
            });
        }
        let template = Self {
            segments,
            redacted: text
                .split_once('?')
                .map_or(text, |(head, _)| head)
                .to_owned(),
            https,
        };
        // A sample expansion must be a URI with a host, so a broken template fails at
        // start-up rather than on every call.
        let sample: hyper::Uri =
            template
                .expand("+4721000000", "21000000")
                .parse()
                .map_err(|_| LookupError::BadTemplate {
                    reason: "is not a valid URL",
                })?;
        if sample.host().is_none_or(str::is_empty) {
            return Err(LookupError::BadTemplate {
                reason: "has no host",
            });
        }
        Ok(template)
    }

    /// The URL for one number.
    pub(crate) fn expand(&self, e164: &str, national: &str) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Number => percent_encode_into(e164, &mut out),
                Segment::National => percent_encode_into(national, &mut out),
            }
        }
        out
    }

    /// The template without its query string (which may hold an API key), for logs.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Whether the template is an `https://` URL.
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }
}

/// Appends `value` percent-encoded (RFC 3986 s2.1): everything but the unreserved
/// characters, so `+` becomes `%2B` and cannot be read as a space by a query parser.
fn percent_encode_into(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Standard base64 with padding (RFC 4648 s4), for the basic-auth header.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// Whether `s` is an E.164 number as the engine hands it over: `+`, a non-zero digit and
/// at most 15 digits in all.
pub(crate) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A name or address from the service made safe to show: control characters (a CR/LF
/// would otherwise reach a SIP header) become spaces, runs of whitespace collapse, and
/// the text is cut to `max_chars`. `None` if nothing is left.
pub(crate) fn clean_text(raw: &str, max_chars: usize) -> Option<String> {
    let mut out = String::new();
    let mut count = 0;
    for word in raw.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
        }
        for ch in word.chars() {
            if count == max_chars {
                break;
            }
            out.push(ch);
            count += 1;
        }
        if count == max_chars {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}
