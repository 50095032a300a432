//! Cron schedules as app.json's `cron[].schedule` (and Dokku, and Vixie cron) write them: five
//! fields (minute, hour, day of month, month, day of week) of `*`, numbers, ranges `a-b`, steps
//! `*/n` and `a-b/n`, lists `a,b`, month and day names (`jan`, `mon`), and the shorthands
//! `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. Times are UTC.
//! When both day fields are restricted, either matching is enough (as cron does).

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ScheduleError {
    #[error("{0:?} has {1} fields; a cron schedule has 5 (minute hour day-of-month month day-of-week) or is @daily, @hourly, ...")]
    FieldCount(String, usize),
    #[error("{field} field {value:?} is not valid: use *, N, A-B, */N, A-B/N or a list of them ({min}-{max})")]
    Field { field: &'static str, value: String, min: u32, max: u32 },
    #[error("{0:?} never runs: no date matches it")]
    Never(String),
}

/// A parsed schedule: for each field, a bit per allowed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Whether day of month and day of week were both restricted (then either may match).
    either_day: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(ScheduleError::FieldCount(text.to_string(), fields.len()));
        };
        let weekdays = field("day-of-week", weekday, 0, 7, &WEEKDAYS)?;
        let schedule = Schedule {
            text: text.to_string(),
            minutes: field("minute", minute, 0, 59, &[])?,
            hours: field("hour", hour, 0, 23, &[])?,
            days: field("day-of-month", day, 1, 31, &[])?,
            months: field("month", month, 1, 12, &MONTHS)?,
            // 7 is Sunday too
            weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
            either_day: !day.starts_with('*') && !weekday.starts_with('*'),
        };
        // Something must match within the next few years (`0 0 31 2 *` never does).
        if schedule.next_after(0).is_none() {
            return Err(ScheduleError::Never(text.to_string()));
        }
        Ok(schedule)
    }
}

/// One field's allowed values as bits; `names` (index + min) may stand for numbers.
fn field(name: &'static str, text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, ScheduleError> {
    let bad = || ScheduleError::Field { field: name, value: text.to_string(), min, max };
    let number = |s: &str| -> Result<u32, ScheduleError> {
        let lower = s.to_ascii_lowercase();
        let n = match names.iter().position(|n| *n == lower) {
            Some(i) => i as u32 + min,
            None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 2 => {
                s.parse().map_err(|_| bad())?
            }
            None => return Err(bad()),
        };
        if n < min || n > max {
            return Err(bad());
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| bad())?;
                if step == 0 || step > max {
                    return Err(bad());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                // `5/15` means 5, 20, 35, 50 (from 5 to the end, as cron reads it)
                None if step > 1 => (number(range)?, max),
                None => (number(range)?, number(range)?),
            },
        };
        if from > to {
            return Err(bad());
        }
        for n in (from..=to).step_by(step as usize) {
            bits |= 1 << n;
        }
    }
    Ok(bits)
}

fn has(bits: u64, n: i64) -> bool {
    bits & (1 << n) != 0
}

impl Schedule {
    /// The first time (Unix seconds, on a whole minute) strictly after `after` that matches;
    /// None when none does within five years.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut t = (after.div_euclid(60) + 1) * 60;
        let limit = t + 5 * 366 * 86400;
        while t < limit {
            let day_number = t.div_euclid(86400);
            let (_, month, day) = civil_from_days(day_number);
            if !has(self.months, month) {
                // the first day of the next month
                t = (day_number - day + 1 + days_in_month(t, month)) * 86400;
                continue;
            }
            let weekday = (day_number + 4).rem_euclid(7); // 1970-01-01 was a Thursday
            let day_ok = if self.either_day {
                has(self.days, day) || has(self.weekdays, weekday)
            } else {
                has(self.days, day) && has(self.weekdays, weekday)
            };
            if !day_ok {
                t = (day_number + 1) * 86400;
                continue;
            }
            let seconds = t.rem_euclid(86400);
            if !has(self.hours, seconds / 3600) {
                t = t - seconds % 3600 + 3600;
                continue;
            }
            if !has(self.minutes, seconds % 3600 / 60) {
                t += 60;
                continue;
            }
            return Some(t);
        }
        None
    }
}

fn days_in_month(t: i64, month: i64) -> i64 {
    let (year, _, _) = civil_from_days(t.div_euclid(86400));
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01, in the proleptic Gregorian
/// calendar: shifted so the year starts in March (the leap day comes last), counted in 400-year
/// eras of 146097 days.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-23 10:53 UTC` for Unix seconds.
pub fn format_utc(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time (tests only; by counting forward from a known day).
    fn at(text: &str) -> i64 {
        let (date, time) = text.split_once(' ').unwrap();
        let mut day = 0;
        while format_utc(day * 86400)[..10] != *date {
            day += 1;
        }
        let (h, m) = time.split_once(':').unwrap();
        day * 86400 + h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60
    }

    fn next(schedule: &str, after: &str) -> String {
        let s: Schedule = schedule.parse().unwrap();
        format_utc(s.next_after(at(after)).unwrap())
    }

    #[test]
    fn dates_are_counted_as_the_calendar_does() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_430_000), "2026-11-23 10:33:20 UTC");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn the_next_run_is_the_first_matching_minute_after() {
        assert_eq!(next("* * * * *", "2026-11-23 10:53"), "2026-11-23 10:54:00 UTC");
        assert_eq!(next("*/15 * * * *", "2026-11-23 10:53"), "2026-11-23 11:00:00 UTC");
        assert_eq!(next("5/20 * * * *", "2026-11-23 10:53"), "2026-11-23 11:05:00 UTC");
        assert_eq!(next("@daily", "2026-11-23 10:53"), "2026-11-24 00:00:00 UTC");
        assert_eq!(next("@hourly", "2026-12-31 23:30"), "2027-01-01 00:00:00 UTC");
        assert_eq!(next("@monthly", "2026-11-23 10:53"), "2026-12-01 00:00:00 UTC");
        assert_eq!(next("30 4 29 feb *", "2026-11-23 10:53"), "2028-02-29 04:30:00 UTC");
        // 2026-11-23 is a Monday; Sunday is 0 and 7
        assert_eq!(next("0 9 * * sun", "2026-11-23 10:53"), "2026-11-29 09:00:00 UTC");
        assert_eq!(next("0 9 * * 7", "2026-11-23 10:53"), "2026-11-29 09:00:00 UTC");
        assert_eq!(next("0 9 * * mon-fri", "2026-11-27 10:00"), "2026-11-30 09:00:00 UTC");
        // both day fields restricted: the 1st of the month or any Friday
        assert_eq!(next("0 0 1 * 5", "2026-11-23 10:53"), "2026-11-27 00:00:00 UTC");
        assert_eq!(next("0 12 1,15 jan-mar *", "2026-11-23 10:53"), "2027-01-01 12:00:00 UTC");
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (bad, says) in [
            ("* * * *", "has 4 fields"),
            ("@often", "has 1 fields"),
            ("60 * * * *", "minute field \"60\""),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "minute field"),
            ("5-1 * * * *", "minute field"),
            ("-1 * * * *", "minute field"),
            ("0 0 31 2 *", "never runs"),
            ("0 0 30 feb *", "never runs"),
        ] {
            let err = bad.parse::<Schedule>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
