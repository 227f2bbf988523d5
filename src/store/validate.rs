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

// ---- queues ----

/// Ring time of one offer, seconds.
pub const RING_TIMEOUT_S: std::ops::RangeInclusive<u32> = 1..=600;
/// Wrap-up time, seconds.
pub const WRAP_UP_S: std::ops::RangeInclusive<u32> = 0..=3600;
/// Maximum wait, seconds.
pub const MAX_WAIT_S: std::ops::RangeInclusive<u32> = 1..=86_400;
/// Maximum number of waiting callers.
pub const MAX_CALLERS: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Interval of position announcements, seconds.
pub const ANNOUNCE_EVERY_S: std::ops::RangeInclusive<u32> = 5..=3600;
/// A member's position.
pub const POSITION: std::ops::RangeInclusive<u32> = 0..=100_000;
/// Days queue history is kept.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;
/// Longest prompt name (bytes), as the prompt library allows.
pub const MAX_PROMPT_NAME_LEN: usize = 128;
/// Longest IANA time zone name accepted (bytes).
pub const MAX_TIME_ZONE_LEN: usize = 64;

fn in_range(
    field: Field,
    v: u32,
    range: &std::ops::RangeInclusive<u32>,
    reason: &'static str,
) -> Result<(), StoreError> {
    if range.contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, reason))
    }
}

/// Checks a queue's settings, each against its range, and its greeting's prompt name.
pub fn queue_settings(s: &super::QueueSettings) -> Result<(), StoreError> {
    ring_timeout(s.ring_timeout_s)?;
    in_range(
        Field::WrapUp,
        s.wrap_up_s,
        &WRAP_UP_S,
        "must be 0 to 3600 seconds",
    )?;
    if let Some(v) = s.max_wait_s {
        in_range(Field::MaxWait, v, &MAX_WAIT_S, "must be 1 to 86400 seconds")?;
    }
    if let Some(v) = s.max_callers {
        in_range(Field::MaxCallers, v, &MAX_CALLERS, "must be 1 to 10000")?;
    }
    if let Some(v) = s.announce_every_s {
        in_range(
            Field::AnnounceEvery,
            v,
            &ANNOUNCE_EVERY_S,
            "must be 5 to 3600 seconds",
        )?;
    }
    if let Some(g) = &s.greeting {
        prompt_name(Field::Greeting, g)?;
    }
    Ok(())
}

/// Checks a ring time (queue or member): 1 to 600 seconds.
pub fn ring_timeout(s: u32) -> Result<(), StoreError> {
    in_range(
        Field::RingTimeout,
        s,
        &RING_TIMEOUT_S,
        "must be 1 to 600 seconds",
    )
}

/// Checks a member's position: 0 to 100000.
pub fn position(p: u32) -> Result<(), StoreError> {
    in_range(Field::Position, p, &POSITION, "must be 0 to 100000")
}

/// Checks a queue history retention: 1 to 3650 days.
pub fn retention_days(d: u32) -> Result<(), StoreError> {
    in_range(
        Field::RetentionDays,
        d,
        &RETENTION_DAYS,
        "must be 1 to 3650 days",
    )
}

/// Checks a prompt name as the prompt library names them: segments of lowercase ASCII
/// letters, digits, `-` and `_`, separated by `/` ("queue/all-busy"), at most 128 bytes.
pub fn prompt_name(field: Field, s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_PROMPT_NAME_LEN
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be a prompt name: lowercase letters, digits, - and _ in segments \
             separated by / (e.g. queue/all-busy)",
        ))
    }
}

/// Checks an IANA time zone name against the bundled time zone database.
pub fn time_zone(s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > MAX_TIME_ZONE_LEN || jiff::tz::TimeZone::get(s).is_err() {
        return Err(invalid(
            Field::TimeZone,
            "unknown time zone (use an IANA name such as Europe/Oslo)",
        ));
    }
    Ok(())
}

/// Checks a range of minutes of a day: open in 0..1440, close in 1..=1440, open before
/// close.
pub fn day_range(field: Field, open_min: u16, close_min: u16) -> Result<(), StoreError> {
    if open_min >= 1440 || close_min > 1440 {
        return Err(invalid(field, "times must be 00:00 to 24:00"));
    }
    if open_min >= close_min {
        return Err(invalid(field, "opening time must be before closing time"));
    }
    Ok(())
}

/// Checks weekly opening hours: weekdays 0 to 6, each range valid, no two ranges of a
/// day overlapping.
pub fn weekly_hours(hours: &[super::WeeklyHours]) -> Result<(), StoreError> {
    let mut sorted = hours.to_vec();
    sorted.sort();
    for h in &sorted {
        if h.weekday > 6 {
            return Err(invalid(
                Field::Hours,
                "weekday must be 0 (Monday) to 6 (Sunday)",
            ));
        }
        day_range(Field::Hours, h.open_min, h.close_min)?;
    }
    for pair in sorted.windows(2) {
        if let [a, b] = pair {
            if a.weekday == b.weekday && b.open_min < a.close_min {
                return Err(invalid(Field::Hours, "ranges of the same day overlap"));
            }
        }
    }
    Ok(())
}

// ---- conferences ----

/// Digits of a room PIN.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 4..=12;
/// Participants of a room at once.
pub const MAX_PARTICIPANTS: std::ops::RangeInclusive<u32> = 2..=500;

/// Checks a room PIN (`Field::Pin` or `Field::ModeratorPin`): 4 to 12 ASCII digits,
/// what a phone's keypad can send.
pub fn pin(field: Field, digits: &str) -> Result<(), StoreError> {
    if !PIN_DIGITS.contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, "must be 4 to 12 digits"));
    }
    Ok(())
}

/// Checks a room's maximum number of participants: 2 to 500.
pub fn max_participants(n: u32) -> Result<(), StoreError> {
    in_range(
        Field::MaxParticipants,
        n,
        &MAX_PARTICIPANTS,
        "must be 2 to 500",
    )
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

    #[test]
    fn conference_checks() {
        for good in ["1234", "000000", "123456789012"] {
            assert!(pin(Field::Pin, good).is_ok(), "{good:?}");
        }
        for bad in ["", "123", "1234567890123", "12a4", " 1234", "١٢٣٤", "12#4"] {
            assert_eq!(
                field_of(pin(Field::ModeratorPin, bad)),
                Some(Field::ModeratorPin),
                "{bad:?}"
            );
        }
        assert!(max_participants(2).is_ok() && max_participants(500).is_ok());
        for bad in [0, 1, 501] {
            assert_eq!(
                field_of(max_participants(bad)),
                Some(Field::MaxParticipants)
            );
        }
    }

    #[test]
    fn queue_checks() {
        use crate::store::{QueueKind, QueueSettings, WeeklyHours};
        let ok = QueueSettings::defaults(QueueKind::Queue);
        assert!(queue_settings(&ok).is_ok());
        let with = |f: fn(&mut QueueSettings)| {
            let mut s = ok.clone();
            f(&mut s);
            field_of(queue_settings(&s))
        };
        assert_eq!(with(|s| s.ring_timeout_s = 0), Some(Field::RingTimeout));
        assert_eq!(with(|s| s.ring_timeout_s = 601), Some(Field::RingTimeout));
        assert_eq!(with(|s| s.wrap_up_s = 0), None);
        assert_eq!(with(|s| s.wrap_up_s = 3601), Some(Field::WrapUp));
        assert_eq!(with(|s| s.max_wait_s = Some(0)), Some(Field::MaxWait));
        assert_eq!(with(|s| s.max_callers = Some(0)), Some(Field::MaxCallers));
        assert_eq!(
            with(|s| s.announce_every_s = Some(4)),
            Some(Field::AnnounceEvery)
        );
        assert_eq!(with(|s| s.greeting = Some("queue/welcome".into())), None);
        assert_eq!(
            with(|s| s.greeting = Some("Queue/Welcome".into())),
            Some(Field::Greeting)
        );
        for bad in ["", "/a", "a/", "a//b", "a b", "a.wav", &"a".repeat(129)] {
            assert_eq!(
                field_of(prompt_name(Field::Greeting, bad)),
                Some(Field::Greeting),
                "{bad:?}"
            );
        }
        assert!(time_zone("Europe/Oslo").is_ok());
        assert!(time_zone("UTC").is_ok());
        for bad in ["", "Europe/Nowhere", "Mars/Base", &"x".repeat(65)] {
            assert_eq!(field_of(time_zone(bad)), Some(Field::TimeZone), "{bad:?}");
        }
        assert!(retention_days(1).is_ok() && retention_days(3650).is_ok());
        assert_eq!(field_of(retention_days(0)), Some(Field::RetentionDays));
        assert_eq!(field_of(position(100_001)), Some(Field::Position));
        let h = |weekday, open_min, close_min| WeeklyHours {
            weekday,
            open_min,
            close_min,
        };
        assert!(weekly_hours(&[h(0, 480, 720), h(0, 720, 960), h(1, 0, 1440)]).is_ok());
        assert!(weekly_hours(&[]).is_ok());
        for bad in [
            vec![h(7, 0, 60)],
            vec![h(0, 600, 600)],
            vec![h(0, 600, 500)],
            vec![h(0, 0, 1441)],
            vec![h(0, 1440, 1440)],
            vec![h(2, 480, 720), h(2, 700, 800)],
        ] {
            assert_eq!(field_of(weekly_hours(&bad)), Some(Field::Hours), "{bad:?}");
        }
    }
}
