//! Opening hours as people write them: `mon-fri 08:00-16:00, sat 10:00-14:00`, and
//! back. Pure functions.
//!
//! Grammar: items separated by `,`; an item is a day or a forward day range
//! (`mon`, `mon-fri`; English three-letter or full names, any case) followed by one or
//! more time ranges `HH:MM-HH:MM` separated by spaces (`mon 08:00-11:30 12:00-16:00`).
//! Times run from 00:00 to 24:00; a range must open before it closes, and ranges of the
//! same day must not overlap.

use std::fmt;

use crate::store::WeeklyHours;

/// Day names as written, Monday first (index = weekday number).
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Why opening hours text was refused; the message quotes the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoursError {
    /// Nothing given.
    Empty,
    /// A day name that is not one.
    UnknownDay(String),
    /// A day range that goes backwards (`fri-mon`).
    BackwardDays(String),
    /// An item with days but no time range.
    NoTimes(String),
    /// Something that is not `HH:MM-HH:MM`.
    BadRange(String),
    /// A time that is not `HH:MM` between 00:00 and 24:00.
    BadTime(String),
    /// A range whose opening is not before its closing.
    NotBeforeClose(String),
    /// Two ranges of the same day overlap.
    Overlap(&'static str),
}

impl fmt::Display for HoursError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoursError::Empty => {
                f.write_str("no opening hours given (e.g. \"mon-fri 08:00-16:00\")")
            }
            HoursError::UnknownDay(d) => write!(
                f,
                "{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri)"
            ),
            HoursError::BackwardDays(d) => write!(f, "day range {d:?} goes backwards"),
            HoursError::NoTimes(i) => {
                write!(f, "{i:?} has no time range (e.g. \"mon-fri 08:00-16:00\")")
            }
            HoursError::BadRange(r) => write!(f, "{r:?} is not a time range HH:MM-HH:MM"),
            HoursError::BadTime(t) => write!(f, "{t:?} is not a time from 00:00 to 24:00"),
            HoursError::NotBeforeClose(r) => {
                write!(
                    f,
                    "in {r:?} the opening time is not before the closing time"
                )
            }
            HoursError::Overlap(day) => write!(f, "ranges on {day} overlap"),
        }
    }
}

impl std::error::Error for HoursError {}

fn day_index(s: &str) -> Result<u8, HoursError> {
    let lower = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == lower)
        .or_else(|| FULL_DAYS.iter().position(|d| *d == lower))
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| HoursError::UnknownDay(s.to_owned()))
}

/// Parses `HH:MM` (hour 0 to 24, one or two digits; 24 only as 24:00) into minutes.
fn parse_time(s: &str) -> Result<u16, HoursError> {
    let bad = || HoursError::BadTime(s.to_owned());
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let digits = |p: &str, max_len: usize| {
        !p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Parses one time range `HH:MM-HH:MM` into (open, close) minutes, open before close.
pub fn parse_range(s: &str) -> Result<(u16, u16), HoursError> {
    let (open, close) = s
        .split_once('-')
        .ok_or_else(|| HoursError::BadRange(s.to_owned()))?;
    let (open, close) = (parse_time(open.trim())?, parse_time(close.trim())?);
    if open >= close {
        return Err(HoursError::NotBeforeClose(s.to_owned()));
    }
    Ok((open, close))
}

/// Parses weekly opening hours text (see the module docs) into ranges sorted by day and
/// time.
pub fn parse_weekly_hours(text: &str) -> Result<Vec<WeeklyHours>, HoursError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let mut words = item.split_whitespace();
        let days = words.next().unwrap_or_default();
        let (first, last) = match days.split_once('-') {
            Some((a, b)) => (day_index(a)?, day_index(b)?),
            None => {
                let d = day_index(days)?;
                (d, d)
            }
        };
        if last < first {
            return Err(HoursError::BackwardDays(days.to_owned()));
        }
        let ranges = words.map(parse_range).collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err(HoursError::NoTimes(item.to_owned()));
        }
        for weekday in first..=last {
            for &(open_min, close_min) in &ranges {
                out.push(WeeklyHours {
                    weekday,
                    open_min,
                    close_min,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(HoursError::Empty);
    }
    out.sort();
    for pair in out.windows(2) {
        if let [a, b] = pair {
            if a.weekday == b.weekday && b.open_min < a.close_min {
                let day = DAYS.get(usize::from(a.weekday)).copied().unwrap_or("?");
                return Err(HoursError::Overlap(day));
            }
        }
    }
    Ok(out)
}

/// Formats minutes of the day as `HH:MM`.
pub fn format_time(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// Formats a time range as `HH:MM-HH:MM`.
pub fn format_range(open: u16, close: u16) -> String {
    format!("{}-{}", format_time(open), format_time(close))
}

/// Formats weekly hours the way [`parse_weekly_hours`] reads them, consecutive days with
/// the same ranges joined (`mon-fri 08:00-16:00, sat 10:00-14:00`); "" when empty.
pub fn format_weekly_hours(hours: &[WeeklyHours]) -> String {
    let mut per_day: [Vec<(u16, u16)>; 7] = Default::default();
    let mut sorted = hours.to_vec();
    sorted.sort();
    for h in sorted {
        if let Some(day) = per_day.get_mut(usize::from(h.weekday)) {
            day.push((h.open_min, h.close_min));
        }
    }
    let mut items = Vec::new();
    let mut day = 0;
    while day < 7 {
        if per_day[day].is_empty() {
            day += 1;
            continue;
        }
        let mut end = day;
        while end + 1 < 7 && per_day[end + 1] == per_day[day] {
            end += 1;
        }
        let days = if end == day {
            DAYS[day].to_owned()
        } else {
            format!("{}-{}", DAYS[day], DAYS[end])
        };
        let ranges: Vec<String> = per_day[day]
            .iter()
            .map(|&(o, c)| format_range(o, c))
            .collect();
        items.push(format!("{days} {}", ranges.join(" ")));
        day = end + 1;
    }
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(weekday: u8, open: &str, close: &str) -> WeeklyHours {
        WeeklyHours {
            weekday,
            open_min: parse_time(open).expect("open"),
            close_min: parse_time(close).expect("close"),
        }
    }

    #[test]
    fn parses_days_ranges_and_items() {
        let mut expected: Vec<WeeklyHours> = (0..5).map(|d| h(d, "08:00", "16:00")).collect();
        expected.push(h(5, "10:00", "14:00"));
        assert_eq!(
            parse_weekly_hours("mon-fri 08:00-16:00, sat 10:00-14:00"),
            Ok(expected)
        );
        assert_eq!(
            parse_weekly_hours("Sunday 0:00-24:00,, MON 8:30-11:30 12:00-15:45 "),
            Ok(vec![
                h(0, "08:30", "11:30"),
                h(0, "12:00", "15:45"),
                h(6, "00:00", "24:00")
            ])
        );
        assert_eq!(
            parse_weekly_hours("wed 09:00-10:00, wed 10:00-11:00"),
            Ok(vec![h(2, "09:00", "10:00"), h(2, "10:00", "11:00")]),
            "touching ranges do not overlap"
        );
        assert_eq!(parse_range("9:05-17:30"), Ok((545, 1050)));
    }

    #[test]
    fn refuses_bad_text_naming_the_part() {
        let err = |s: &str| parse_weekly_hours(s).expect_err(s);
        assert_eq!(
            err("mon-fri 25:00-16:00"),
            HoursError::BadTime("25:00".into())
        );
        assert_eq!(err("mon 24:30-24:45"), HoursError::BadTime("24:30".into()));
        assert_eq!(err("mon 08:60-09:00"), HoursError::BadTime("08:60".into()));
        assert_eq!(err("mon 8-16"), HoursError::BadTime("8".into()));
        assert_eq!(err("mon 08:0-09:00"), HoursError::BadTime("08:0".into()));
        assert_eq!(
            err("mon 008:00-09:00"),
            HoursError::BadTime("008:00".into())
        );
        assert_eq!(
            err("mon 16:00-08:00"),
            HoursError::NotBeforeClose("16:00-08:00".into())
        );
        assert_eq!(
            err("mon 08:00-08:00"),
            HoursError::NotBeforeClose("08:00-08:00".into())
        );
        assert_eq!(err("mon 08:00"), HoursError::BadRange("08:00".into()));
        assert_eq!(err("mon-fri"), HoursError::NoTimes("mon-fri".into()));
        assert_eq!(
            err("fri-mon 08:00-16:00"),
            HoursError::BackwardDays("fri-mon".into())
        );
        assert_eq!(err("man 08:00-16:00"), HoursError::UnknownDay("man".into()));
        assert_eq!(err("08:00-16:00"), HoursError::UnknownDay("08:00".into()));
        assert_eq!(err(" , "), HoursError::Empty);
        assert_eq!(err(""), HoursError::Empty);
        assert_eq!(
            err("mon-fri 08:00-16:00, wed 12:00-18:00"),
            HoursError::Overlap("wed")
        );
        assert_eq!(
            err("mon-fri 25:00-16:00").to_string(),
            "\"25:00\" is not a time from 00:00 to 24:00"
        );
    }

    #[test]
    fn formats_back_to_what_it_parses() {
        for text in [
            "mon-fri 08:00-16:00, sat 10:00-14:00",
            "mon 08:30-11:30 12:00-15:45, tue-wed 08:00-16:00, fri 08:00-16:00, sun 00:00-24:00",
            "sat-sun 10:00-12:00",
        ] {
            let parsed = parse_weekly_hours(text).expect(text);
            assert_eq!(format_weekly_hours(&parsed), text);
        }
        assert_eq!(format_weekly_hours(&[]), "");
    }
}
