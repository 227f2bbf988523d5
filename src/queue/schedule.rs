//! Opening hours and local dates in a tenant's time zone.
//!
//! Input: a [`Schedule`] (weekly ranges plus dated exceptions, in an IANA time zone) and a
//! wall-clock instant. The instant is converted to the zone's civil time with the `jiff`
//! crate's bundled tz database, so daylight-saving changes follow the zone's rules. An
//! unknown zone name is treated as UTC (the CLI rejects unknown names, see
//! [`valid_time_zone`]).

use std::time::SystemTime;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::model::Schedule;

/// A local date: (year, month 1..=12, day 1..=31).
pub type LocalDate = (i16, u8, u8);

/// Whether `name` is a time zone known to the bundled tz database.
pub fn valid_time_zone(name: &str) -> bool {
    TimeZone::get(name).is_ok()
}

/// Whether the schedule is open at `at`. A dated exception replaces the weekly ranges of
/// its date (several exceptions for one date: open when any of them is open).
pub fn is_open(schedule: &Schedule, at: SystemTime) -> bool {
    is_open_in(schedule, &zone(&schedule.time_zone), at)
}

/// The local date in zone `tz` (UTC when unknown) at `at`.
pub fn local_date(tz: &str, at: SystemTime) -> LocalDate {
    local_date_in(&zone(tz), at)
}

/// The time zone of that name, UTC when unknown.
pub(crate) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// [`is_open`] with the zone already resolved (the engine caches it per queue).
pub(crate) fn is_open_in(schedule: &Schedule, tz: &TimeZone, at: SystemTime) -> bool {
    let local = civil(tz, at);
    let date = date_of(&local);
    let minute =
        u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
    let mut excepted = false;
    for exception in schedule.exceptions.iter().filter(|e| e.date == date) {
        excepted = true;
        if let Some((open, close)) = exception.open {
            if open <= minute && minute < close {
                return true;
            }
        }
    }
    if excepted {
        return false;
    }
    let weekday = local.weekday().to_monday_zero_offset().unsigned_abs();
    schedule
        .weekly
        .iter()
        .any(|r| r.weekday == weekday && r.open_min <= minute && minute < r.close_min)
}

/// [`local_date`] with the zone already resolved.
pub(crate) fn local_date_in(tz: &TimeZone, at: SystemTime) -> LocalDate {
    date_of(&civil(tz, at))
}

fn civil(tz: &TimeZone, at: SystemTime) -> DateTime {
    // Out of jiff's range (years beyond ±9999) cannot come from a real clock.
    let ts = Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH);
    tz.to_datetime(ts)
}

fn date_of(local: &DateTime) -> LocalDate {
    (
        local.year(),
        local.month().unsigned_abs(),
        local.day().unsigned_abs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::model::{DateException, WeeklyRange};
    use std::time::Duration;

    /// Wall time of a UTC civil date-time.
    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> SystemTime {
        let ts = jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::UTC)
            .expect("valid test date")
            .timestamp();
        SystemTime::UNIX_EPOCH + Duration::from_secs(ts.as_second().unsigned_abs())
    }

    fn office_hours(tz: &str) -> Schedule {
        Schedule {
            time_zone: tz.into(),
            // Monday to Friday 08:00-16:00.
            weekly: (0..5)
                .map(|weekday| WeeklyRange {
                    weekday,
                    open_min: 8 * 60,
                    close_min: 16 * 60,
                })
                .collect(),
            exceptions: vec![],
        }
    }

    #[test]
    fn weekly_ranges_in_local_time_across_dst() {
        let s = office_hours("Europe/Oslo");
        // Winter (UTC+1): Monday 2025-01-06. 07:30 UTC = 08:30 local: open.
        assert!(is_open(&s, utc(2025, 1, 6, 7, 30)));
        // 06:59 UTC = 07:59 local: closed.
        assert!(!is_open(&s, utc(2025, 1, 6, 6, 59)));
        // 15:00 UTC = 16:00 local: closed (close is exclusive).
        assert!(!is_open(&s, utc(2025, 1, 6, 15, 0)));
        // Summer (UTC+2): Monday 2025-06-02. 06:30 UTC = 08:30 local: open.
        assert!(is_open(&s, utc(2025, 6, 2, 6, 30)));
        // 14:30 UTC = 16:30 local: closed, although it is before 16:00 UTC.
        assert!(!is_open(&s, utc(2025, 6, 2, 14, 30)));
        // Monday 2025-03-31, the day after the spring change: 06:00 UTC = 08:00 local.
        assert!(is_open(&s, utc(2025, 3, 31, 6, 0)));
        // Friday 2025-03-28, before the change: 06:30 UTC = 07:30 local, closed.
        assert!(!is_open(&s, utc(2025, 3, 28, 6, 30)));
        // Saturday: closed all day.
        assert!(!is_open(&s, utc(2025, 6, 7, 10, 0)));
    }

    #[test]
    fn several_ranges_per_day() {
        let s = Schedule {
            time_zone: "UTC".into(),
            weekly: vec![
                WeeklyRange {
                    weekday: 0,
                    open_min: 9 * 60,
                    close_min: 11 * 60,
                },
                WeeklyRange {
                    weekday: 0,
                    open_min: 12 * 60,
                    close_min: 1440,
                },
            ],
            exceptions: vec![],
        };
        assert!(is_open(&s, utc(2025, 1, 6, 10, 0)));
        assert!(!is_open(&s, utc(2025, 1, 6, 11, 30)));
        assert!(is_open(&s, utc(2025, 1, 6, 23, 59)));
        assert!(!is_open(&s, utc(2025, 1, 7, 0, 0)));
    }

    #[test]
    fn holiday_exceptions_replace_the_weekly_ranges() {
        let mut s = office_hours("Europe/Oslo");
        s.exceptions = vec![
            // Christmas Eve (Wednesday): open 08:00-12:00 only.
            DateException {
                date: (2025, 12, 24),
                open: Some((8 * 60, 12 * 60)),
            },
            // Christmas Day (Thursday): closed.
            DateException {
                date: (2025, 12, 25),
                open: None,
            },
            // A Saturday opened by exception.
            DateException {
                date: (2025, 12, 20),
                open: Some((10 * 60, 14 * 60)),
            },
        ];
        assert!(is_open(&s, utc(2025, 12, 24, 10, 0))); // 11:00 local
        assert!(!is_open(&s, utc(2025, 12, 24, 12, 0))); // 13:00 local
        assert!(!is_open(&s, utc(2025, 12, 25, 10, 0)));
        assert!(is_open(&s, utc(2025, 12, 26, 10, 0))); // ordinary Friday
        assert!(is_open(&s, utc(2025, 12, 20, 10, 0))); // 11:00 local
                                                        // The exception's date is the local date: 23:30 UTC on the 24th is the 25th in Oslo.
        s.exceptions[1].open = Some((0, 60));
        assert!(is_open(&s, utc(2025, 12, 24, 23, 30)));
    }

    #[test]
    fn unknown_zone_is_utc_and_flagged_invalid() {
        assert!(valid_time_zone("Europe/Oslo"));
        assert!(valid_time_zone("UTC"));
        assert!(!valid_time_zone("Mars/Olympus_Mons"));
        assert!(!valid_time_zone(""));
        let s = office_hours("Mars/Olympus_Mons");
        assert!(is_open(&s, utc(2025, 6, 2, 15, 30)));
        assert!(!is_open(&s, utc(2025, 6, 2, 16, 0)));
    }

    #[test]
    fn local_date_follows_the_zone() {
        let at = utc(2025, 6, 30, 22, 30);
        assert_eq!(local_date("UTC", at), (2025, 6, 30));
        assert_eq!(local_date("Europe/Oslo", at), (2025, 7, 1));
        assert_eq!(local_date("America/New_York", at), (2025, 6, 30));
        assert_eq!(local_date("nowhere", at), (2025, 6, 30));
    }
}
