//! Number normalisation (E.164) and the classification of dial strings.
//!
//! Inputs are raw strings as they arrive in a Request-URI, a `tel:` URI, a From user
//! part or a phone's dial pad; the formats of the trunk come from the profile's
//! `[numbering]` table ([`crate::config::Numbering`]). Pure functions: no I/O, no clock.
//!
//! - [`to_e164`] accepts `+4721000000`, `004721000000`, national `21000000` (the country
//!   code is prepended after the national prefix is stripped), visual separators, `tel:`
//!   and `sip:` forms, %-escapes (`%2B47...`) and `phone-context`.
//! - [`to_national`] and [`to_international_dialled`] give the forms a carrier may want.
//! - [`classify_dialled`] sorts what a user dialled into extension, external number or
//!   feature code, and strips the per-call `#31#` prefix that hides the caller's number.

use crate::config::Numbering;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// Most digits an E.164 number may have (ITU-T E.164 s6.1).
pub const MAX_E164_DIGITS: usize = 15;

/// Fewest digits accepted in an E.164 number. The shortest numbers in service are 7
/// digits with their country code (Niue, +683 and four digits); anything shorter is a
/// short code or a typo, never a routable international number.
pub const MIN_E164_DIGITS: usize = 7;

/// The per-call prefix that hides the caller's number (GSM CLIR suppression, 3GPP TS
/// 22.030: `#31#` before the number withholds the presentation for that one call).
pub const HIDE_NUMBER_PREFIX: &str = "#31#";

/// The dial prefix that presents the caller's number for one call even when the user
/// withholds it by default (CLIR suppression, 3GPP TS 22.081: `*31#`).
pub const SHOW_NUMBER_PREFIX: &str = "*31#";

/// The caller's per-call choice of number presentation, carried by a dial prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PresentationChoice {
    /// No prefix: the user's setting applies.
    #[default]
    AsConfigured,
    /// `#31#`: withhold the number for this call.
    Withhold,
    /// `*31#`: present the number for this call.
    Present,
}

impl PresentationChoice {
    /// Whether the number is withheld, given the user's default.
    pub fn hides(self, hidden_by_default: bool) -> bool {
        match self {
            PresentationChoice::AsConfigured => hidden_by_default,
            PresentationChoice::Withhold => true,
            PresentationChoice::Present => false,
        }
    }
}

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Nothing left once the URI wrapping and separators are removed.
    #[error("empty number")]
    Empty,
    /// A character that is neither a digit nor a visual separator.
    #[error("character {found:?} at position {position} is not allowed in a number")]
    BadCharacter { position: usize, found: char },
    /// `+` anywhere but at the start.
    #[error("'+' is only allowed at the start of a number")]
    MisplacedPlus,
    /// A `%` not followed by two hex digits, or an escape that is not UTF-8.
    #[error("malformed %-escape in number")]
    BadEscape,
    /// More digits than E.164 allows.
    #[error("{digits} digits is longer than the E.164 maximum of 15")]
    TooLong { digits: usize },
    /// Fewer digits than any routable E.164 number has.
    #[error("{digits} digits is shorter than any E.164 number")]
    TooShort { digits: usize },
    /// The first digit after `+` is 0: no country code starts with 0.
    #[error("country code cannot start with 0")]
    ZeroCountryCode,
    /// A national number without the trunk's national prefix (for example `2079460000`
    /// where the UK format needs `020...`); guessing would ring the wrong party.
    #[error("national number lacks the national prefix {prefix:?}")]
    MissingNationalPrefix { prefix: String },
}

/// An E.164 number: `+` followed by 7 to 15 digits, the first one not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Parses the strict form `+` and digits (nothing else is accepted).
    pub fn parse(s: &str) -> Result<E164, NumberError> {
        let digits = s.strip_prefix('+').ok_or(NumberError::Empty)?;
        if let Some((position, found)) = s.char_indices().skip(1).find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(if found == '+' {
                NumberError::MisplacedPlus
            } else {
                NumberError::BadCharacter { position, found }
            });
        }
        E164::from_digits(digits)
    }

    /// Builds a number from its digits (country code first, no `+`), checking the length.
    fn from_digits(digits: &str) -> Result<E164, NumberError> {
        let n = digits.len();
        if n == 0 {
            return Err(NumberError::Empty);
        }
        if digits.starts_with('0') {
            return Err(NumberError::ZeroCountryCode);
        }
        if n > MAX_E164_DIGITS {
            return Err(NumberError::TooLong { digits: n });
        }
        if n < MIN_E164_DIGITS {
            return Err(NumberError::TooShort { digits: n });
        }
        let mut s = String::with_capacity(n + 1);
        s.push('+');
        s.push_str(digits);
        Ok(E164(s))
    }

    /// The number with its `+` (`+4721000000`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+` (`4721000000`).
    pub fn digits(&self) -> &str {
        self.0.get(1..).unwrap_or_default()
    }

    /// The national significant number when the number is in `numbering`'s country.
    pub fn national_significant(&self, numbering: &Numbering) -> Option<&str> {
        let cc = numbering.country_code.as_str();
        if cc.is_empty() {
            return None;
        }
        self.digits()
            .strip_prefix(cc)
            .filter(|rest| !rest.is_empty())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for E164 {
    type Err = NumberError;

    fn from_str(s: &str) -> Result<E164, NumberError> {
        E164::parse(s)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Normalises a number in any accepted written form to E.164.
pub fn to_e164(raw: &str, numbering: &Numbering) -> Result<E164, NumberError> {
    let (number, context) = unwrap_uri(raw)?;
    let number = strip_trunk_zero(&number, numbering);
    let compact = remove_separators(&number)?;
    if let Some(rest) = compact.strip_prefix('+') {
        return E164::from_digits(rest);
    }
    // A local number with a global phone-context (RFC 3966 s5.1.5): the context's
    // digits come first, as if they had been dialled.
    if let Some(ctx) = context {
        return E164::from_digits(&format!("{ctx}{compact}"));
    }
    let intl = numbering.international_prefix.as_str();
    // The international prefix is checked first: "00" also starts with the UK's "0".
    if !intl.is_empty() {
        if let Some(rest) = compact.strip_prefix(intl) {
            return E164::from_digits(rest);
        }
    }
    let nat = numbering.national_prefix.as_str();
    let national = if nat.is_empty() {
        compact.as_str()
    } else {
        compact
            .strip_prefix(nat)
            .ok_or_else(|| NumberError::MissingNationalPrefix {
                prefix: nat.to_owned(),
            })?
    };
    if national.is_empty() {
        return Err(NumberError::Empty);
    }
    E164::from_digits(&format!("{}{national}", numbering.country_code))
}

/// The national form (`21000000`, or `02079460000` with a `0` prefix) of a number in the
/// trunk's country; a foreign number comes back in its international dialled form.
pub fn to_national(e164: &E164, numbering: &Numbering) -> String {
    let intl = numbering.international_prefix.as_str();
    match e164.national_significant(numbering) {
        // A national form that begins like an international call would be read back as
        // one (+47 0012... would become 0012...); only the international form is safe.
        Some(nsn) => {
            let national = format!("{}{nsn}", numbering.national_prefix);
            if !intl.is_empty() && national.starts_with(intl) {
                to_international_dialled(e164, numbering)
            } else {
                national
            }
        }
        None => to_international_dialled(e164, numbering),
    }
}

/// The international dialled form: the international prefix and the digits (`004721000000`).
pub fn to_international_dialled(e164: &E164, numbering: &Numbering) -> String {
    format!("{}{}", numbering.international_prefix, e164.digits())
}

/// What a user dialled, once classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialled {
    /// An extension of the user's tenant (digits only, within the extension length range).
    Extension(String),
    /// A number outside the switch, normalised.
    External(E164),
    /// A service code starting with `*` or `#` (`*21*...#`), kept as dialled.
    FeatureCode(String),
    /// Not something the switch can route.
    Invalid,
}

/// A classified dial string with the per-call options its prefix carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialledWithOptions {
    /// What to route to.
    pub dialled: Dialled,
    /// The caller's presentation choice for this call (`#31#` or `*31#`).
    pub presentation: PresentationChoice,
}

/// Classifies a dial string from a user's phone (a Request-URI user part or digits).
///
/// Order: a leading [`HIDE_NUMBER_PREFIX`] or [`SHOW_NUMBER_PREFIX`] is removed and sets
/// `presentation`; then a
/// string starting with `*` or `#` is a feature code; digits only whose length lies in
/// `extension_len` are an extension (so keep extension lengths apart from national
/// number lengths); anything else must normalise with [`to_e164`].
pub fn classify_dialled(
    dialled: &str,
    numbering: &Numbering,
    extension_len: RangeInclusive<usize>,
) -> DialledWithOptions {
    let invalid = |presentation| DialledWithOptions {
        dialled: Dialled::Invalid,
        presentation,
    };
    // Phones escape '#' as %23 in URIs (RFC 3261 s25.1 does not allow it raw).
    let Ok((text, _)) = unwrap_uri(dialled) else {
        return invalid(PresentationChoice::AsConfigured);
    };
    let text = text.trim();
    let (rest, presentation) = if let Some(rest) = text.strip_prefix(HIDE_NUMBER_PREFIX) {
        (rest.trim_start(), PresentationChoice::Withhold)
    } else if let Some(rest) = text.strip_prefix(SHOW_NUMBER_PREFIX) {
        (rest.trim_start(), PresentationChoice::Present)
    } else {
        (text, PresentationChoice::AsConfigured)
    };
    let dialled = classify_rest(rest, numbering, extension_len);
    DialledWithOptions {
        dialled,
        presentation,
    }
}

fn classify_rest(
    rest: &str,
    numbering: &Numbering,
    extension_len: RangeInclusive<usize>,
) -> Dialled {
    if rest.starts_with(['*', '#']) {
        let ok = rest.len() > 1
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        return if ok {
            Dialled::FeatureCode(rest.to_owned())
        } else {
            Dialled::Invalid
        };
    }
    let Ok(compact) = remove_separators(rest) else {
        return Dialled::Invalid;
    };
    if !compact.is_empty()
        && compact.bytes().all(|b| b.is_ascii_digit())
        && extension_len.contains(&compact.len())
    {
        return Dialled::Extension(compact);
    }
    match to_e164(rest, numbering) {
        Ok(n) => Dialled::External(n),
        Err(_) => Dialled::Invalid,
    }
}

/// Removes a `tel:`/`sip:`/`sips:` wrapping, the host and URI parameters, and decodes
/// %-escapes. Returns the number text and the digits of a global `phone-context`.
fn unwrap_uri(raw: &str) -> Result<(String, Option<String>), NumberError> {
    let s = raw.trim();
    let lower_starts = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let body = if lower_starts("tel:") {
        &s[4..]
    } else if lower_starts("sip:") {
        user_part(&s[4..])
    } else if lower_starts("sips:") {
        user_part(&s[5..])
    } else {
        s
    };
    // User parameters (`;phone-context=+47`, `;isub=...`) follow the number.
    let (number, params) = match body.split_once(';') {
        Some((n, p)) => (n, p),
        None => (body, ""),
    };
    let context = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("phone-context") {
            return None;
        }
        let digits: String = v
            .trim()
            .strip_prefix('+')?
            .chars()
            .filter(|c| !is_separator(*c))
            .collect();
        digits.bytes().all(|b| b.is_ascii_digit()).then_some(digits)
    });
    Ok((percent_decode(number)?, context))
}

/// The user part of a sip URI body (`user@host;params` -> `user`); no `@` means none.
fn user_part(body: &str) -> &str {
    match body.split_once('@') {
        Some((user, _)) => user,
        // `sip:host` has no number; an empty user part is rejected later as Empty.
        None => "",
    }
}

fn percent_decode(s: &str) -> Result<String, NumberError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(NumberError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| NumberError::BadEscape)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| NumberError::BadEscape)?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| NumberError::BadEscape)
}

/// Visual separators of RFC 3966 (plus space, as written on business cards).
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | ' ' | '(' | ')' | '\t')
}

/// Drops the `(0)` of `+44 (0)20 7946 0000`: a trunk prefix written inside an
/// international number that must not be dialled.
fn strip_trunk_zero(number: &str, numbering: &Numbering) -> String {
    let nat = numbering.national_prefix.as_str();
    if nat.is_empty() || !number.trim_start().starts_with('+') {
        return number.to_owned();
    }
    number.replacen(&format!("({nat})"), "", 1)
}

/// Keeps `+` and digits, dropping separators; anything else is an error.
fn remove_separators(s: &str) -> Result<String, NumberError> {
    let mut out = String::with_capacity(s.len());
    for (position, c) in s.char_indices() {
        match c {
            '0'..='9' => out.push(c),
            '+' if out.is_empty() => out.push(c),
            '+' => return Err(NumberError::MisplacedPlus),
            c if is_separator(c) => {}
            found => return Err(NumberError::BadCharacter { position, found }),
        }
    }
    if out.is_empty() || out == "+" {
        return Err(NumberError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norway() -> Numbering {
        Numbering::default()
    }

    fn uk() -> Numbering {
        Numbering {
            country_code: "44".to_owned(),
            national_prefix: "0".to_owned(),
            international_prefix: "00".to_owned(),
        }
    }

    fn e(s: &str) -> E164 {
        E164::parse(s).expect("valid E.164 in test")
    }

    #[test]
    fn norwegian_forms_normalise() {
        let n = norway();
        for raw in [
            "+4721000000",
            "004721000000",
            "21000000",
            "21 00 00 00",
            "+47 21 00 00 00",
            "+47-21-00-00-00",
            "(+47) 21.00.00.00",
            "tel:+47-21-00-00-00",
            "tel:21000000;phone-context=+47",
            "sip:+4721000000@carrier.example;user=phone",
            "sip:%2B4721000000@carrier.example",
            "SIPS:004721000000@10.0.0.1:5061",
            "%2B4721000000",
            "  +4721000000  ",
        ] {
            assert_eq!(to_e164(raw, &n), Ok(e("+4721000000")), "{raw}");
        }
        // A mobile number and a foreign number dialled from Norway.
        assert_eq!(to_e164("912 34 567", &n), Ok(e("+4791234567")));
        assert_eq!(to_e164("0046812345678", &n), Ok(e("+46812345678")));
    }

    #[test]
    fn uk_national_prefix() {
        let n = uk();
        assert_eq!(to_e164("020 7946 0000", &n), Ok(e("+442079460000")));
        assert_eq!(to_e164("+44 (0)20 7946 0000", &n), Ok(e("+442079460000")));
        assert_eq!(to_e164("00442079460000", &n), Ok(e("+442079460000")));
        assert_eq!(to_e164("004721000000", &n), Ok(e("+4721000000")));
        assert_eq!(
            to_e164("2079460000", &n),
            Err(NumberError::MissingNationalPrefix {
                prefix: "0".to_owned()
            })
        );
        assert_eq!(to_e164("0", &n), Err(NumberError::Empty));
    }

    #[test]
    fn rejects_garbage_with_typed_errors() {
        let n = norway();
        assert_eq!(
            to_e164("2100000a", &n),
            Err(NumberError::BadCharacter {
                position: 7,
                found: 'a'
            })
        );
        assert_eq!(to_e164("47+21", &n), Err(NumberError::MisplacedPlus));
        assert_eq!(to_e164("++4721000000", &n), Err(NumberError::MisplacedPlus));
        assert_eq!(to_e164("", &n), Err(NumberError::Empty));
        assert_eq!(to_e164(" - ", &n), Err(NumberError::Empty));
        assert_eq!(to_e164("+", &n), Err(NumberError::Empty));
        assert_eq!(to_e164("sip:carrier.example", &n), Err(NumberError::Empty));
        assert_eq!(to_e164("%2", &n), Err(NumberError::BadEscape));
        assert_eq!(to_e164("%zz1", &n), Err(NumberError::BadEscape));
        assert_eq!(to_e164("%FF%FE", &n), Err(NumberError::BadEscape));
        assert_eq!(
            to_e164("+1234567890123456", &n),
            Err(NumberError::TooLong { digits: 16 })
        );
        assert_eq!(
            to_e164("+123456789012345", &n).map(|x| x.digits().len()),
            Ok(15)
        );
        assert_eq!(
            to_e164("+47123", &n),
            Err(NumberError::TooShort { digits: 5 })
        );
        assert_eq!(to_e164("112", &n), Err(NumberError::TooShort { digits: 5 }));
        assert_eq!(
            to_e164("+0471234567", &n),
            Err(NumberError::ZeroCountryCode)
        );
        assert_eq!(
            to_e164("000471234567", &n),
            Err(NumberError::ZeroCountryCode)
        );
        assert!(matches!(
            to_e164("21#00000", &n),
            Err(NumberError::BadCharacter { found: '#', .. })
        ));
        assert!(to_e164("21\u{00e6}0000", &n).is_err());
    }

    #[test]
    fn strict_parse_and_display() {
        let x = e("+4721000000");
        assert_eq!(x.to_string(), "+4721000000");
        assert_eq!(x.digits(), "4721000000");
        assert_eq!("+4721000000".parse::<E164>(), Ok(x.clone()));
        assert_eq!(E164::parse("4721000000"), Err(NumberError::Empty));
        assert_eq!(
            E164::parse("+47 21000000").map(|_| ()),
            Err(NumberError::BadCharacter {
                position: 3,
                found: ' '
            })
        );
        assert_eq!(E164::parse("+47+21000000"), Err(NumberError::MisplacedPlus));
        assert_eq!(x.national_significant(&norway()), Some("21000000"));
        assert_eq!(x.national_significant(&uk()), None);
    }

    #[test]
    fn national_and_international_both_ways() {
        let no = norway();
        let uk = uk();
        let oslo = e("+4721000000");
        let london = e("+442079460000");
        assert_eq!(to_national(&oslo, &no), "21000000");
        assert_eq!(to_international_dialled(&oslo, &no), "004721000000");
        assert_eq!(to_national(&london, &uk), "02079460000");
        // Abroad there is no national form: the international dialled form is used.
        assert_eq!(to_national(&london, &no), "00442079460000");
        assert_eq!(to_national(&oslo, &uk), "004721000000");
        // A national form that would read as international is not used.
        let odd = e("+4700123456");
        assert_eq!(to_national(&odd, &no), "004700123456");
        let odd_uk = e("+440123456789");
        assert_eq!(to_national(&odd_uk, &uk), "00440123456789");
        assert_eq!(to_national(&e("+44123456789"), &uk), "0123456789");
        // Round trips.
        for (n, num) in [
            (&no, &oslo),
            (&uk, &london),
            (&no, &london),
            (&uk, &oslo),
            (&no, &odd),
            (&uk, &odd_uk),
        ] {
            assert_eq!(to_e164(&to_national(num, n), n).as_ref(), Ok(num));
            assert_eq!(
                to_e164(&to_international_dialled(num, n), n).as_ref(),
                Ok(num)
            );
        }
    }

    #[test]
    fn classify_extensions_numbers_and_codes() {
        let n = norway();
        let c = |s: &str| classify_dialled(s, &n, 2..=5);
        assert_eq!(c("201").dialled, Dialled::Extension("201".to_owned()));
        assert_eq!(c("20-01").dialled, Dialled::Extension("2001".to_owned()));
        assert_eq!(c("21000000").dialled, Dialled::External(e("+4721000000")));
        assert_eq!(
            c("+4721000000").dialled,
            Dialled::External(e("+4721000000"))
        );
        assert_eq!(
            c("004721000000").dialled,
            Dialled::External(e("+4721000000"))
        );
        assert_eq!(
            c("*21*91234567#").dialled,
            Dialled::FeatureCode("*21*91234567#".to_owned())
        );
        assert_eq!(
            c("%2321%23").dialled,
            Dialled::FeatureCode("#21#".to_owned())
        );
        assert_eq!(c("*").dialled, Dialled::Invalid);
        assert_eq!(c("*21*abc#").dialled, Dialled::Invalid);
        assert_eq!(c("1").dialled, Dialled::Invalid);
        assert_eq!(c("alice").dialled, Dialled::Invalid);
        assert_eq!(c("").dialled, Dialled::Invalid);
        assert_eq!(c("%zz").dialled, Dialled::Invalid);
        assert_eq!(c("21000000").presentation, PresentationChoice::AsConfigured);
    }

    #[test]
    fn hide_number_prefix() {
        let n = norway();
        let c = |s: &str| classify_dialled(s, &n, 3..=4);
        let r = c("#31#21000000");
        assert_eq!(r.dialled, Dialled::External(e("+4721000000")));
        assert_eq!(r.presentation, PresentationChoice::Withhold);
        let r = c("%2331%23+4721000000");
        assert_eq!(r.dialled, Dialled::External(e("+4721000000")));
        assert_eq!(r.presentation, PresentationChoice::Withhold);
        let r = c("#31#201");
        assert_eq!(r.dialled, Dialled::Extension("201".to_owned()));
        assert_eq!(r.presentation, PresentationChoice::Withhold);
        // The prefix alone dials nothing.
        let r = c("#31#");
        assert_eq!(r.dialled, Dialled::Invalid);
        assert_eq!(r.presentation, PresentationChoice::Withhold);
        // `#31` without the closing '#' is an ordinary feature code.
        let r = c("#31");
        assert_eq!(r.dialled, Dialled::FeatureCode("#31".to_owned()));
        assert_eq!(r.presentation, PresentationChoice::AsConfigured);
        // `*31#` presents the number for one call, over a default of hidden.
        let r = c("*31#21000000");
        assert_eq!(r.dialled, Dialled::External(e("+4721000000")));
        assert_eq!(r.presentation, PresentationChoice::Present);
        assert!(!r.presentation.hides(true));
        assert!(PresentationChoice::AsConfigured.hides(true));
        assert!(PresentationChoice::Withhold.hides(false));
        // `*31` alone is a feature code, not the prefix.
        assert_eq!(c("*31").dialled, Dialled::FeatureCode("*31".to_owned()));
    }

    /// Deterministic garbage (multi-byte characters included, to catch slicing at a
    /// non-boundary) never panics and never yields an invalid E.164.
    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "+0123456789#*%2Bb-.() ;=@:telsipTELæ€\u{0}"
            .chars()
            .collect();
        let mut seed: u64 = 42;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        for n in [norway(), uk()] {
            for _ in 0..5000 {
                let len = next() % 24;
                let s: String = (0..len)
                    .map(|_| alphabet[next() % alphabet.len()])
                    .collect();
                if let Ok(x) = to_e164(&s, &n) {
                    assert_eq!(E164::parse(x.as_str()), Ok(x.clone()), "{s:?}");
                    assert_eq!(to_e164(&to_national(&x, &n), &n), Ok(x.clone()), "{s:?}");
                }
                if let Dialled::External(x) = classify_dialled(&s, &n, 2..=5).dialled {
                    assert!(E164::parse(x.as_str()).is_ok(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn uk_classification() {
        let n = uk();
        let c = |s: &str| classify_dialled(s, &n, 3..=4).dialled;
        assert_eq!(c("020 7946 0000"), Dialled::External(e("+442079460000")));
        assert_eq!(c("2001"), Dialled::Extension("2001".to_owned()));
        assert_eq!(c("2079460000"), Dialled::Invalid);
    }
}
