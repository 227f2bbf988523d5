//! Input checks, each naming the field it rejects. Pure functions, no I/O.

use super::{Field, StoreError};

/// Shortest password accepted: SIP accounts are scanned and brute-forced from the
/// internet around the clock (toll fraud), so very short passwords are refused.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (characters).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest tenant or user display name accepted (characters).
pub const MAX_NAME_LEN: usize = 100;
/// Longest SIP username accepted (bytes).
pub const MAX_SIP_USERNAME_LEN: usize = 64;
/// Longest realm accepted (bytes): a DNS name at most.
pub const MAX_REALM_LEN: usize = 253;
/// Longest URI or header value accepted in a binding (bytes).
pub const MAX_BINDING_TEXT_LEN: usize = 4096;

/// Longest note on a directory contact accepted (characters).
pub const MAX_NOTE_LEN: usize = 1000;

fn invalid(field: Field, reason: &'static str) -> StoreError {
    StoreError::Invalid { field, reason }
}

/// Checks a display name (tenant or user): 1 to 100 characters, no control characters,
/// no leading or trailing white space.
pub fn display_name(field: Field, s: &str) -> Result<(), StoreError> {
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > MAX_NAME_LEN {
        return Err(invalid(field, "must be at most 100 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    if s.trim() != s {
        return Err(invalid(field, "must not start or end with white space"));
    }
    Ok(())
}

/// Checks an E.164 number: `+` then 8 to 15 digits, the first not 0.
pub fn e164(field: Field, s: &str) -> Result<(), StoreError> {
    let Some(digits) = s.strip_prefix('+') else {
        return Err(invalid(
            field,
            "must be in E.164 form: '+' then 8 to 15 digits",
        ));
    };
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            field,
            "must be in E.164 form: '+' then 8 to 15 digits",
        ));
    }
    // E.164 country codes never start with 0.
    if digits.starts_with('0') {
        return Err(invalid(field, "country code must not start with 0"));
    }
    Ok(())
}

/// Checks an extension: 2 to 6 ASCII digits (`util::EXTENSION_DIGITS`).
pub fn extension(s: &str) -> Result<(), StoreError> {
    if !crate::util::EXTENSION_DIGITS.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(Field::Extension, "must be 2 to 6 digits"));
    }
    Ok(())
}

/// Shortest and longest ring time before no-answer forwarding, seconds.
pub const NO_ANSWER_S: std::ops::RangeInclusive<u32> = 5..=120;

/// Checks a forwarding target: an E.164 number or an extension (2 to 6 digits).
pub fn forward_target(field: Field, s: &str) -> Result<(), StoreError> {
    if s.starts_with('+') {
        return e164(field, s);
    }
    if !crate::util::EXTENSION_DIGITS.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            field,
            "must be an E.164 number ('+' then 8 to 15 digits) or an extension of 2 to 6 digits",
        ));
    }
    Ok(())
}

/// Checks the ring time before no-answer forwarding: 5 to 120 seconds.
pub fn no_answer_seconds(s: u32) -> Result<(), StoreError> {
    if !NO_ANSWER_S.contains(&s) {
        return Err(invalid(Field::NoAnswerSeconds, "must be 5 to 120 seconds"));
    }
    Ok(())
}

/// Checks a SIP username: 1 to 64 RFC 3261 `token` characters except `%`.
///
/// `%` is left out because in a SIP URI's user part it starts an escape, so the URI form
/// and the digest username of the same account would differ.
pub fn sip_username(s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > MAX_SIP_USERNAME_LEN {
        return Err(invalid(Field::SipUsername, "must be 1 to 64 characters"));
    }
    let ok = s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
    });
    if !ok {
        return Err(invalid(
            Field::SipUsername,
            "may only contain letters, digits and - . ! * _ + ` ' ~",
        ));
    }
    Ok(())
}

/// Checks a digest realm: 1 to 253 printable ASCII characters, no `"` or `\` (it is sent
/// inside a quoted string) and no white space.
pub fn realm(s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > MAX_REALM_LEN {
        return Err(invalid(Field::Realm, "must be 1 to 253 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(invalid(
            Field::Realm,
            "must be printable ASCII without spaces, quotes or backslashes",
        ));
    }
    Ok(())
}

/// Checks a password: 8 to 128 characters, no control characters.
pub fn password(s: &str) -> Result<(), StoreError> {
    let n = s.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(invalid(Field::Password, "must be at least 8 characters"));
    }
    if n > MAX_PASSWORD_LEN {
        return Err(invalid(Field::Password, "must be at most 128 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(
            Field::Password,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a required text field of a binding: non-empty, at most 4096 bytes, no control
/// characters (a SIP header value never holds CR, LF or NUL once unfolded).
pub fn binding_text(field: Field, s: &str) -> Result<(), StoreError> {
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    binding_text_opt(field, s)
}

/// Like [`binding_text`] but allows the empty string.
pub fn binding_text_opt(field: Field, s: &str) -> Result<(), StoreError> {
    if s.len() > MAX_BINDING_TEXT_LEN {
        return Err(invalid(field, "must be at most 4096 bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks a contact's note: at most 1000 characters; line breaks and tabs are allowed,
/// other control characters are not.
pub fn note(s: &str) -> Result<(), StoreError> {
    if s.chars().count() > MAX_NOTE_LEN {
        return Err(invalid(Field::Note, "must be at most 1000 characters"));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(Field::Note, "must not contain control characters"));
    }
    Ok(())
}

/// Makes text from the network (a SIP display name, an external directory's answer)
/// storable without refusing it: control characters become spaces, the ends are
/// trimmed and it is cut to `max_chars` characters. `None` if nothing is left.
///
/// Refusing instead would let a remote party keep its call out of the call log by
/// sending an odd name.
pub fn clean_text(s: &str, max_chars: usize) -> Option<String> {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim();
    let cut: String = trimmed.chars().take(max_chars).collect();
    let cut = cut.trim_end();
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// Checks a q-value: finite, between 0 and 1.
pub fn q_value(q: f32) -> Result<(), StoreError> {
    if !(0.0..=1.0).contains(&q) {
        return Err(invalid(Field::Q, "must be between 0 and 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<(), StoreError>) -> Option<Field> {
        match r {
            Err(StoreError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn e164_accepts_and_rejects() {
        assert!(e164(Field::Number, "+4721000000").is_ok());
        assert!(e164(Field::Number, "+12025550123").is_ok());
        assert!(e164(Field::Number, "+123456789012345").is_ok());
        for bad in [
            "",
            "+",
            "4721000000",
            "+4721",
            "+1234567",
            "+1234567890123456",
            "+47 21000000",
            "+4721000a00",
            "++4721000000",
            "+0721000000",
            "+472100000\n",
            "+٤٧٢١٠٠٠٠٠٠",
        ] {
            assert_eq!(
                field_of(e164(Field::Mobile, bad)),
                Some(Field::Mobile),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extension_rules() {
        assert!(extension("10").is_ok());
        assert!(extension("123456").is_ok());
        for bad in ["", "1", "1234567", "12345678", "1a", "+12", " 12", "١٢"] {
            assert_eq!(field_of(extension(bad)), Some(Field::Extension), "{bad:?}");
        }
    }

    #[test]
    fn forward_target_and_no_answer_rules() {
        for good in ["+4790000001", "10", "123456"] {
            assert!(forward_target(Field::ForwardBusy, good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "1",
            "1234567",
            "4790000001x",
            "+47",
            "+0790000001",
            " 10",
            "sip:a@b",
        ] {
            assert_eq!(
                field_of(forward_target(Field::ForwardBusy, bad)),
                Some(Field::ForwardBusy),
                "{bad:?}"
            );
        }
        assert!(no_answer_seconds(5).is_ok());
        assert!(no_answer_seconds(120).is_ok());
        for bad in [0, 4, 121, u32::MAX] {
            assert_eq!(
                field_of(no_answer_seconds(bad)),
                Some(Field::NoAnswerSeconds),
                "{bad}"
            );
        }
    }

    #[test]
    fn sip_username_rules() {
        assert!(sip_username("alice").is_ok());
        assert!(sip_username("a.b-c_d+e!*~'`9").is_ok());
        assert!(sip_username(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a:b", "a@b", "a%20", "a\"", "æ", &"a".repeat(65)] {
            assert_eq!(
                field_of(sip_username(bad)),
                Some(Field::SipUsername),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn realm_rules() {
        assert!(realm("sip.example.no").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "ø", &"r".repeat(254)] {
            assert_eq!(field_of(realm(bad)), Some(Field::Realm), "{bad:?}");
        }
    }

    #[test]
    fn password_rules() {
        assert!(password("correct horse").is_ok());
        assert!(password("12345678").is_ok());
        for bad in ["", "1234567", "abc\ndefgh", &"p".repeat(129)] {
            assert_eq!(field_of(password(bad)), Some(Field::Password), "{bad:?}");
        }
    }

    #[test]
    fn display_name_rules() {
        assert!(display_name(Field::TenantName, "Bedrift AS").is_ok());
        assert!(display_name(Field::TenantName, "Ærlig Øl & Å").is_ok());
        for bad in ["", " acme", "acme ", "a\tb", &"x".repeat(101)] {
            assert_eq!(
                field_of(display_name(Field::TenantName, bad)),
                Some(Field::TenantName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn note_and_clean_text() {
        assert!(note("line one\nline two\ttab").is_ok());
        assert!(note(&"n".repeat(1000)).is_ok());
        assert_eq!(field_of(note(&"n".repeat(1001))), Some(Field::Note));
        assert_eq!(field_of(note("bell\u{7}")), Some(Field::Note));
        assert_eq!(
            clean_text("  Ola\r\nNordmann ", 100).as_deref(),
            Some("Ola  Nordmann")
        );
        assert_eq!(clean_text("\u{0}\t ", 100), None);
        assert_eq!(clean_text("Ærlig Øl", 4).as_deref(), Some("Ærli"));
        assert_eq!(
            clean_text("ab cd", 3).as_deref(),
            Some("ab"),
            "no trailing blank"
        );
    }

    #[test]
    fn q_and_binding_text() {
        assert!(q_value(0.0).is_ok());
        assert!(q_value(1.0).is_ok());
        assert!(q_value(1.1).is_err());
        assert!(q_value(-0.1).is_err());
        assert!(q_value(f32::NAN).is_err());
        assert!(binding_text(Field::Contact, "").is_err());
        assert!(binding_text_opt(Field::ContactParams, "").is_ok());
        assert!(binding_text(Field::Contact, "sip:a@b\r\n").is_err());
        assert!(binding_text(Field::Contact, &"x".repeat(4097)).is_err());
    }
}
