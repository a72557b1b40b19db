use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{BusinessHours, Limit, TimeError};

/// The calendar built into the service, so that a district without its own still counts China's
/// holidays; it is the same file the demo district deploys.
const CHINA_DEFAULT: &str = include_str!("../../../../deploy/districts/demo/calendar.toml");

/// A district's working-day calendar (工作日历): its time zone, official holidays (法定节假日) and
/// make-up working days (调休上班).
///
/// Monday to Friday are working days unless listed as holidays; Saturday and Sunday are not,
/// unless listed as make-up working days. Years the calendar does not [`cover`](Self::covers)
/// fall back to plain Monday to Friday, because a missing schedule must not stop the clocks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "CalendarFile")]
pub struct Calendar {
    timezone: Tz,
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    years: BTreeSet<i32>,
}

/// The calendar file as written (`deploy/districts/<code>/calendar.toml`); turn it into a
/// [`Calendar`] with `try_into`, which checks it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// IANA time zone name in which working days are counted; `Asia/Shanghai` when absent.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// One entry per year whose official schedule is known.
    #[serde(default)]
    pub years: Vec<CalendarYear>,
}

/// One year of a [`CalendarFile`], as published by the State Council (国务院办公厅).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    /// The year; every date below must fall inside it.
    pub year: i32,
    /// Every day off (放假), weekend days inside a holiday period included.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Weekend days that are working days (调休上班).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

fn default_timezone() -> String {
    "Asia/Shanghai".to_owned()
}

impl Calendar {
    /// A calendar from its parts; the covered years are those of the dates given.
    ///
    /// Refuses a date that is both a holiday and a make-up working day, and a make-up working day
    /// that is not a Saturday or Sunday (it would change nothing, so it is surely a typo).
    pub fn new(
        timezone: Tz,
        holidays: impl IntoIterator<Item = NaiveDate>,
        workdays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Calendar, TimeError> {
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        let workdays: BTreeSet<NaiveDate> = workdays.into_iter().collect();
        let mut problems = Vec::new();
        check_consistency(&holidays, &workdays, &mut problems);
        if !problems.is_empty() {
            return Err(TimeError::InvalidCalendar(problems));
        }
        let years = holidays.iter().chain(&workdays).map(Datelike::year).collect();
        Ok(Calendar { timezone, holidays, workdays, years })
    }

    /// China's official schedule (Asia/Shanghai), built in from
    /// `deploy/districts/demo/calendar.toml`.
    ///
    /// # Panics
    /// Only if the built-in file is malformed, which a unit test rules out.
    pub fn china_default() -> Calendar {
        CalendarFile::parse_plain(CHINA_DEFAULT).and_then(Calendar::try_from).expect("the built-in calendar is valid")
    }

    /// The district's calendar from the text of its `calendar` reference file, or China's
    /// built-in schedule when it names none.
    pub fn from_reference(text: Option<&str>) -> Result<Calendar, String> {
        match text {
            None => Ok(Calendar::china_default()),
            Some(text) => toml::from_str::<Calendar>(text).map_err(|e| e.to_string()),
        }
    }

    /// Whole working days completed between `from` and `to` (0 when `to` is not later), counted
    /// as [`deadline`](Self::deadline) counts them and at most `cap`: the return window (退回时限)
    /// asks "have two working days passed since dispatch?".
    pub fn working_days_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, cap: u32) -> u32 {
        (1..=cap).take_while(|n| self.deadline(from, Limit::WorkingDays(*n)) <= to).count() as u32
    }

    /// The time zone in which working days are counted.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Whether the official schedule of `year` is configured; when it is not, that year counts
    /// Monday to Friday and the service should warn.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Whether `date` (in the district's time zone) is a working day (工作日).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match date.weekday() {
            Weekday::Sat | Weekday::Sun => self.workdays.contains(&date),
            _ => !self.holidays.contains(&date),
        }
    }

    /// The instant a `limit` started at `start` runs out (截止时间).
    ///
    /// Minutes, hours and days are elapsed time. Working days keep the local time of day: the
    /// deadline is the same wall-clock time N working days after the start day, so "3wd" from
    /// Friday 10:00 before 春节 ends at 10:00 on the third working day after it, and every working
    /// day in between counts whole. A start on a non-working day (a request filed on a Sunday or
    /// during a holiday) counts from 00:00 of the next working day, so the handler gets N full
    /// working days, as if it had arrived at the first moment anyone is at work; this also makes
    /// the result independent of when on the day off it arrived.
    ///
    /// If that wall-clock time does not exist on the day (a daylight-saving gap, not in China),
    /// it is read with the offset from before the gap, i.e. as far past the gap as it was into
    /// it; if it exists twice, the earlier one counts. Results beyond chrono's range saturate at
    /// [`DateTime::<Utc>::MAX_UTC`] rather than panic.
    ///
    /// Working hours (`wh`) count office hours ([`BusinessHours::office`]); [`Self::deadline_in`]
    /// counts them on a unit's own hours.
    pub fn deadline(&self, start: DateTime<Utc>, limit: Limit) -> DateTime<Utc> {
        self.deadline_in(start, limit, &BusinessHours::office())
    }

    /// [`Self::deadline`] with working hours counted on `hours` (a unit's business hours).
    pub fn deadline_in(&self, start: DateTime<Utc>, limit: Limit, hours: &BusinessHours) -> DateTime<Utc> {
        match limit {
            Limit::WorkingDays(n) => self.add_working_days(start, n).unwrap_or(DateTime::<Utc>::MAX_UTC),
            Limit::WorkingHours(n) => self.add_work(start, u64::from(n) * 3600, hours).unwrap_or(DateTime::<Utc>::MAX_UTC),
            elapsed => elapsed.elapsed().and_then(|span| start.checked_add_signed(span)).unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    fn add_working_days(&self, start: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        // Not `naive_local`, which panics at the very end of chrono's range.
        let utc = start.naive_utc();
        let local = utc.checked_add_offset(self.timezone.offset_from_utc_datetime(&utc).fix())?;
        let (mut day, time) = if self.is_working_day(local.date()) {
            (local.date(), local.time())
        } else {
            (self.next_working_day(local.date())?, NaiveTime::MIN)
        };
        for _ in 0..n {
            day = self.next_working_day(day)?;
        }
        // With zero working days, re-reading a repeated wall-clock time could land before the start.
        Some(self.to_utc(day.and_time(time))?.max(start))
    }

    fn next_working_day(&self, after: NaiveDate) -> Option<NaiveDate> {
        let mut day = after.succ_opt()?;
        while !self.is_working_day(day) {
            day = day.succ_opt()?;
        }
        Some(day)
    }

    pub(super) fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.to_utc()),
            LocalResult::None => {
                let before = self.timezone.offset_from_utc_datetime(&local.checked_sub_signed(TimeDelta::days(1))?);
                let offset = TimeDelta::seconds(before.fix().local_minus_utc().into());
                Some(local.checked_sub_signed(offset)?.and_utc())
            }
        }
    }
}

impl TryFrom<CalendarFile> for Calendar {
    type Error = TimeError;

    /// Checks the file and lists every problem: an unknown time zone, a year declared twice, a
    /// date outside its year, a date in both lists, a make-up working day on a weekday.
    fn try_from(file: CalendarFile) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        let timezone = file.timezone.parse::<Tz>();
        if timezone.is_err() {
            problems.push(format!("unknown time zone {:?}", file.timezone));
        }
        let mut years = BTreeSet::new();
        let mut holidays = BTreeSet::new();
        let mut workdays = BTreeSet::new();
        for entry in &file.years {
            if !years.insert(entry.year) {
                problems.push(format!("year {} is declared twice", entry.year));
            }
            for (kind, dates, set) in [("holiday", &entry.holidays, &mut holidays), ("make-up working day", &entry.workdays, &mut workdays)]
            {
                for &date in dates {
                    if date.year() != entry.year {
                        problems.push(format!("{kind} {date} is listed under year {}", entry.year));
                    }
                    set.insert(date);
                }
            }
        }
        check_consistency(&holidays, &workdays, &mut problems);
        match timezone {
            Ok(timezone) if problems.is_empty() => Ok(Calendar { timezone, holidays, workdays, years }),
            _ => Err(TimeError::InvalidCalendar(problems)),
        }
    }
}

fn check_consistency(holidays: &BTreeSet<NaiveDate>, workdays: &BTreeSet<NaiveDate>, problems: &mut Vec<String>) {
    for date in holidays.intersection(workdays) {
        problems.push(format!("{date} is both a holiday and a make-up working day"));
    }
    for date in workdays {
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            problems.push(format!("make-up working day {date} is a {}, not a Saturday or Sunday", date.weekday()));
        }
    }
}

impl CalendarFile {
    /// Reads the plain subset of TOML that calendar files are written in (comments, `key = value`
    /// with strings, integers and arrays of strings over several lines, `[[years]]` headers).
    ///
    /// The built-in calendar goes through this so that the domain needs no TOML parser; district
    /// files read through serde with a full parser agree with it (a test checks the demo file).
    fn parse_plain(text: &str) -> Result<CalendarFile, TimeError> {
        #[derive(Default)]
        struct Entry {
            year: Option<i32>,
            holidays: Option<Vec<NaiveDate>>,
            workdays: Option<Vec<NaiveDate>>,
        }
        fn put<T>(slot: &mut Option<T>, value: T) -> Result<(), String> {
            match slot.replace(value) {
                Some(_) => Err("duplicate key".to_owned()),
                None => Ok(()),
            }
        }

        let invalid = |no: usize, msg: String| TimeError::InvalidCalendar(vec![format!("line {no}: {msg}")]);
        let mut timezone = None;
        let mut entries: Vec<Entry> = Vec::new();
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, strip_comment(l).trim()));
        while let Some((no, line)) = lines.next() {
            if line.is_empty() {
                continue;
            }
            if line == "[[years]]" {
                entries.push(Entry::default());
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(invalid(no, format!("expected `key = value` or `[[years]]`, found {line:?}")));
            };
            let (key, mut value) = (key.trim(), value.trim().to_owned());
            if value.starts_with('[') {
                while !value.ends_with(']') {
                    let (_, more) = lines.next().ok_or_else(|| invalid(no, "array is not closed".to_owned()))?;
                    value.push(' ');
                    value.push_str(more);
                }
            }
            let stored = match (entries.last_mut(), key) {
                (None, "timezone") => plain_string(&value).and_then(|tz| put(&mut timezone, tz.to_owned())),
                (Some(e), "year") => {
                    value.parse().map_err(|_| format!("year {value:?} is not an integer")).and_then(|y| put(&mut e.year, y))
                }
                (Some(e), "holidays") => plain_dates(&value).and_then(|d| put(&mut e.holidays, d)),
                (Some(e), "workdays") => plain_dates(&value).and_then(|d| put(&mut e.workdays, d)),
                _ => Err("unexpected key".to_owned()),
            };
            stored.map_err(|msg| invalid(no, format!("{key}: {msg}")))?;
        }
        let years = entries
            .into_iter()
            .map(|e| {
                Ok(CalendarYear {
                    year: e.year.ok_or_else(|| TimeError::InvalidCalendar(vec!["a [[years]] entry has no year".to_owned()]))?,
                    holidays: e.holidays.unwrap_or_default(),
                    workdays: e.workdays.unwrap_or_default(),
                })
            })
            .collect::<Result<_, TimeError>>()?;
        Ok(CalendarFile { timezone: timezone.unwrap_or_else(default_timezone), years })
    }
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

fn plain_string(value: &str) -> Result<&str, String> {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.contains(['"', '\\']))
        .ok_or_else(|| format!("expected a plain \"string\", found {value}"))
}

fn plain_dates(value: &str) -> Result<Vec<NaiveDate>, String> {
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).ok_or("expected an array")?;
    let mut items: Vec<&str> = inner.split(',').map(str::trim).collect();
    if items.last() == Some(&"") {
        items.pop(); // a trailing comma, or an empty array
    }
    items
        .into_iter()
        .map(|item| {
            let text = plain_string(item)?;
            text.parse().map_err(|_| format!("{text:?} is not a date YYYY-MM-DD"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{Asia::Shanghai, Europe::Berlin};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// An instant given as Beijing wall-clock time, "YYYY-MM-DD HH:MM".
    fn bj(s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        Shanghai.from_local_datetime(&naive).unwrap().to_utc()
    }

    fn china() -> Calendar {
        Calendar::china_default()
    }

    fn wd(calendar: &Calendar, start: &str, n: u32) -> DateTime<Utc> {
        calendar.deadline(bj(start), Limit::WorkingDays(n))
    }

    /// The official schedules exactly as the State Council notices give them: (first, last) day
    /// of each period off, and the make-up working days.
    #[allow(clippy::type_complexity)]
    const OFFICIAL: [(i32, &[(&str, &str)], &[&str]); 2] = [
        (
            2025,
            &[
                ("2025-01-01", "2025-01-01"),
                ("2025-01-28", "2025-02-04"),
                ("2025-04-04", "2025-04-06"),
                ("2025-05-01", "2025-05-05"),
                ("2025-05-31", "2025-06-02"),
                ("2025-10-01", "2025-10-08"),
            ],
            &["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
        ),
        (
            2026,
            &[
                ("2026-01-01", "2026-01-03"),
                ("2026-02-15", "2026-02-23"),
                ("2026-04-04", "2026-04-06"),
                ("2026-05-01", "2026-05-05"),
                ("2026-06-19", "2026-06-21"),
                ("2026-09-25", "2026-09-27"),
                ("2026-10-01", "2026-10-07"),
            ],
            &["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
        ),
    ];

    #[test]
    fn built_in_calendar_matches_the_official_schedule_on_every_day() {
        let calendar = china();
        assert_eq!(calendar.timezone(), Shanghai);
        for (year, periods, makeup) in OFFICIAL {
            assert!(calendar.covers(year));
            let mut working = 0;
            for day in date(&format!("{year}-01-01")).iter_days().take_while(|d| d.year() == year) {
                let off = periods.iter().any(|&(a, b)| date(a) <= day && day <= date(b));
                let expected = if off {
                    false
                } else if makeup.iter().any(|&m| date(m) == day) {
                    true
                } else {
                    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
                };
                assert_eq!(calendar.is_working_day(day), expected, "{day} {}", day.weekday());
                working += u32::from(expected);
            }
            // 248 working days in each of 2025 and 2026, as the notices work out.
            assert_eq!(working, 248, "{year}");
        }
    }

    #[test]
    fn spot_checks_around_the_holidays() {
        let c = china();
        let working = |s: &str| c.is_working_day(date(s));
        // 春节 2026: make-up Saturday before, nine days off, back on Tuesday, make-up Saturday after.
        assert!(working("2026-02-13") && working("2026-02-14"));
        assert!(!working("2026-02-15") && !working("2026-02-18") && !working("2026-02-23"));
        assert!(working("2026-02-24") && !working("2026-02-21") && working("2026-02-28"));
        assert!(!working("2026-03-01"));
        // 国庆 2026: make-up Sunday 20 Sep, 中秋 weekend, seven days off, make-up Saturday 10 Oct.
        assert!(working("2026-09-20") && !working("2026-09-25") && working("2026-09-30"));
        assert!(!working("2026-10-01") && !working("2026-10-07"));
        assert!(working("2026-10-08") && working("2026-10-09") && working("2026-10-10") && !working("2026-10-11"));
        // Year end: 元旦 2026 is Thursday to Saturday, then a make-up Sunday.
        assert!(working("2025-12-31") && !working("2026-01-01") && !working("2026-01-03") && working("2026-01-04"));
    }

    #[test]
    fn uncovered_years_fall_back_to_monday_to_friday() {
        let c = china();
        assert!(!c.covers(2023) && !c.covers(2027) && c.covers(2024));
        assert!(c.is_working_day(date("2027-01-01"))); // a Friday; its holiday is not configured
        assert!(c.is_working_day(date("2023-10-02"))); // a Monday of 国庆 2023, not configured
        assert!(!c.is_working_day(date("2027-01-02")));
        assert!(!c.is_working_day(date("2023-12-31")));
        // 2024 is configured: 国庆 off, the make-up Saturday at work.
        assert!(!c.is_working_day(date("2024-10-01")) && c.is_working_day(date("2024-10-12")));
    }

    #[test]
    fn the_demo_file_reads_the_same_with_a_full_toml_parser() {
        let full: CalendarFile = toml::from_str(CHINA_DEFAULT).unwrap();
        assert_eq!(CalendarFile::parse_plain(CHINA_DEFAULT).unwrap(), full);
        let via_serde: Calendar = toml::from_str(CHINA_DEFAULT).unwrap();
        assert_eq!(via_serde, china());
    }

    #[test]
    fn plain_parser_handles_comments_arrays_and_defaults() {
        let text = r#"
            # comment
            [[years]]   # trailing comment
            year = 2030
            holidays = ["2030-01-01",]
            workdays = [
                "2030-01-05",   # a Saturday
            ]
            [[years]]
            year = 2031
            holidays = []
        "#;
        let file = CalendarFile::parse_plain(text).unwrap();
        assert_eq!(file.timezone, "Asia/Shanghai");
        assert_eq!(file, toml::from_str(text).unwrap());
        assert_eq!(file.years[0].holidays, vec![date("2030-01-01")]);
        assert_eq!(file.years[0].workdays, vec![date("2030-01-05")]);
        assert!(file.years[1].holidays.is_empty() && file.years[1].workdays.is_empty());
    }

    #[test]
    fn plain_parser_refuses_what_it_does_not_understand() {
        let cases = [
            ("timezone = Asia/Shanghai", "line 1: timezone: expected a plain"),
            ("zone = \"UTC\"", "line 1: zone: unexpected key"),
            ("[[years]]\ntimezone = \"UTC\"", "line 2: timezone: unexpected key"),
            ("year = 2026", "line 1: year: unexpected key"),
            ("[[years]]\nyear = \"2026\"", "line 2: year: year \"\\\"2026\\\"\" is not an integer"),
            ("[[years]]\nyear = 2026\nyear = 2027", "line 3: year: duplicate key"),
            ("[[years]]\nholidays = [\n\"2026-01-01\",", "line 2: array is not closed"),
            ("[[years]]\nholidays = [\"2026-13-01\"]", "is not a date"),
            ("[[years]]\nholidays = [2026-01-01]", "expected a plain"),
            ("[[years]]\nholidays = [\"2026-01-01\",,\"2026-01-02\"]", "expected a plain"),
            ("[years]", "expected `key = value`"),
            ("[[years]]\nholidays = []", "a [[years]] entry has no year"),
        ];
        for (text, want) in cases {
            let err = CalendarFile::parse_plain(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_file_is_checked_and_every_problem_reported() {
        let text = r#"
            timezone = "Asia/Beijing"
            [[years]]
            year = 2026
            holidays = ["2026-01-01", "2025-12-31", "2026-01-04"]
            workdays = ["2026-01-04", "2026-01-06"]
            [[years]]
            year = 2026
        "#;
        let file: CalendarFile = toml::from_str(text).unwrap();
        let Err(TimeError::InvalidCalendar(problems)) = Calendar::try_from(file) else { panic!() };
        assert_eq!(
            problems,
            [
                "unknown time zone \"Asia/Beijing\"",
                "holiday 2025-12-31 is listed under year 2026",
                "year 2026 is declared twice",
                "2026-01-04 is both a holiday and a make-up working day",
                "make-up working day 2026-01-06 is a Tue, not a Saturday or Sunday",
            ]
        );
        let err = toml::from_str::<Calendar>("timezone = \"Mars/Olympus\"").unwrap_err().to_string();
        assert!(err.contains("unknown time zone"), "{err}");
        assert!(toml::from_str::<Calendar>("[[years]]\nyear = 2026\nholiday = []").is_err());
    }

    #[test]
    fn holidays_on_weekends_and_empty_files_are_fine() {
        let c: Calendar = toml::from_str("[[years]]\nyear = 2026\nholidays = [\"2026-01-03\"]").unwrap();
        assert_eq!(c.timezone(), Shanghai);
        assert!(c.covers(2026) && !c.is_working_day(date("2026-01-03")));
        let empty: Calendar = toml::from_str("").unwrap();
        assert!(!empty.covers(2026) && empty.is_working_day(date("2026-01-01")));
    }

    #[test]
    fn new_checks_the_same_rules_and_covers_the_years_it_is_given() {
        let c = Calendar::new(Shanghai, [date("2030-10-01")], [date("2031-01-04")]).unwrap();
        assert!(c.covers(2030) && c.covers(2031) && !c.covers(2032));
        assert!(!c.is_working_day(date("2030-10-01")) && c.is_working_day(date("2031-01-04")));
        let err = Calendar::new(Shanghai, [date("2026-01-04")], [date("2026-01-04"), date("2026-01-05")]);
        let Err(TimeError::InvalidCalendar(problems)) = err else { panic!("{err:?}") };
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn elapsed_limits_ignore_the_calendar() {
        let c = china();
        let start = bj("2026-02-14 23:30");
        assert_eq!(c.deadline(start, Limit::Minutes(10)), bj("2026-02-14 23:40"));
        assert_eq!(c.deadline(start, Limit::Hours(1)), bj("2026-02-15 00:30"));
        assert_eq!(c.deadline(start, Limit::Hours(72)), bj("2026-02-17 23:30"));
        assert_eq!(c.deadline(start, Limit::Days(4)), bj("2026-02-18 23:30"));
        assert_eq!(c.deadline(start, Limit::IMMEDIATE), start);
    }

    #[test]
    fn working_days_keep_the_time_of_day() {
        let c = china();
        assert_eq!(wd(&c, "2026-03-02 09:15", 1), bj("2026-03-03 09:15"));
        assert_eq!(wd(&c, "2026-03-06 09:15", 1), bj("2026-03-09 09:15")); // Friday → Monday
        assert_eq!(wd(&c, "2026-03-04 16:00", 3), bj("2026-03-09 16:00"));
        assert_eq!(wd(&c, "2026-03-04 16:00", 0), bj("2026-03-04 16:00"));
    }

    #[test]
    fn working_days_across_spring_festival_2026() {
        let c = china();
        // Friday before: Saturday 14th is a make-up day, then nine days off.
        assert_eq!(wd(&c, "2026-02-13 10:00", 1), bj("2026-02-14 10:00"));
        assert_eq!(wd(&c, "2026-02-13 10:00", 2), bj("2026-02-24 10:00"));
        assert_eq!(wd(&c, "2026-02-13 10:00", 3), bj("2026-02-25 10:00"));
        // From the make-up Saturday itself, counted like any working day.
        assert_eq!(wd(&c, "2026-02-14 08:30", 1), bj("2026-02-24 08:30"));
        // Received during the holiday: counts from 00:00 on Tuesday 24th.
        assert_eq!(wd(&c, "2026-02-16 15:00", 1), bj("2026-02-25 00:00"));
        assert_eq!(wd(&c, "2026-02-16 15:00", 0), bj("2026-02-24 00:00"));
        assert_eq!(wd(&c, "2026-02-23 23:59", 3), bj("2026-02-27 00:00"));
        // The make-up Saturday after: Friday → Saturday, Saturday → Monday.
        assert_eq!(wd(&c, "2026-02-27 11:00", 1), bj("2026-02-28 11:00"));
        assert_eq!(wd(&c, "2026-02-28 11:00", 1), bj("2026-03-02 11:00"));
        // An ordinary Saturday is a day off.
        assert_eq!(wd(&c, "2026-03-07 10:00", 1), bj("2026-03-10 00:00"));
    }

    #[test]
    fn working_days_across_national_day_2026() {
        let c = china();
        // Make-up Sunday 20 Sep.
        assert_eq!(wd(&c, "2026-09-18 10:00", 1), bj("2026-09-20 10:00"));
        assert_eq!(wd(&c, "2026-09-19 10:00", 1), bj("2026-09-21 00:00"));
        // 中秋 Friday to Sunday.
        assert_eq!(wd(&c, "2026-09-24 10:00", 1), bj("2026-09-28 10:00"));
        // 国庆: 1–7 Oct off, make-up Saturday 10 Oct.
        assert_eq!(wd(&c, "2026-09-30 14:00", 1), bj("2026-10-08 14:00"));
        assert_eq!(wd(&c, "2026-09-30 14:00", 3), bj("2026-10-10 14:00"));
        assert_eq!(wd(&c, "2026-09-30 14:00", 4), bj("2026-10-12 14:00"));
        assert_eq!(wd(&c, "2026-10-03 09:00", 3), bj("2026-10-12 00:00"));
    }

    #[test]
    fn a_start_at_23_59_local_stays_on_its_local_day() {
        let c = china();
        // 23:59 in Beijing is 15:59 UTC the same date; the local date decides.
        let start = bj("2026-09-30 23:59");
        assert_eq!(start, "2026-09-30T15:59:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(c.deadline(start, Limit::WorkingDays(1)), bj("2026-10-08 23:59"));
        assert_eq!(wd(&c, "2026-02-13 23:59", 1), bj("2026-02-14 23:59"));
        // One minute later it is 1 October in Beijing although still 30 September in UTC.
        let start = "2026-09-30T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(c.deadline(start, Limit::WorkingDays(1)), bj("2026-10-09 00:00"));
    }

    #[test]
    fn working_days_across_year_ends() {
        let c = china();
        // 2025 → 2026: 元旦 Thursday to Saturday, make-up Sunday 4 Jan.
        assert_eq!(wd(&c, "2025-12-31 18:00", 1), bj("2026-01-04 18:00"));
        assert_eq!(wd(&c, "2025-12-31 18:00", 2), bj("2026-01-05 18:00"));
        assert_eq!(wd(&c, "2026-01-01 18:00", 1), bj("2026-01-05 00:00"));
        // 2026 → 2027: 2027 is not configured, so 1 Jan 2027 (Friday) counts as a working day.
        assert_eq!(wd(&c, "2026-12-31 10:00", 1), bj("2027-01-01 10:00"));
        assert_eq!(wd(&c, "2026-12-31 10:00", 2), bj("2027-01-04 10:00"));
        // 2024 → 2025.
        assert_eq!(wd(&c, "2024-12-31 10:00", 1), bj("2025-01-02 10:00"));
    }

    #[test]
    fn fifty_working_days_for_escalation() {
        let c = china();
        assert_eq!(wd(&c, "2026-01-05 09:00", 50), bj("2026-03-20 09:00")); // across 春节
        assert_eq!(wd(&c, "2026-08-20 09:00", 50), bj("2026-11-04 09:00")); // across 中秋 and 国庆
        assert_eq!(wd(&c, "2025-12-01 09:00", 50), bj("2026-02-10 09:00")); // across the year end
    }

    #[test]
    fn a_missing_wall_clock_time_moves_past_the_gap_and_a_repeated_one_takes_the_earlier() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Berlin springs forward on Sunday 29 Mar 2026 (02:00 → 03:00) and falls back on Sunday
        // 25 Oct 2026 (03:00 → 02:00); make those Sundays working days to land on them.
        let c = Calendar::new(Berlin, [], [date("2026-03-29"), date("2026-10-25")]).unwrap();
        // Friday 02:30 CET (UTC+1); Sunday 02:30 does not exist and reads as 03:30 CEST.
        assert_eq!(c.deadline(at("2026-03-27T01:30:00Z"), Limit::WorkingDays(1)), at("2026-03-29T01:30:00Z"));
        // Friday 02:30 CEST (UTC+2); Sunday 02:30 happens twice, the first is 00:30 UTC.
        assert_eq!(c.deadline(at("2026-10-23T00:30:00Z"), Limit::WorkingDays(1)), at("2026-10-25T00:30:00Z"));
        // Zero working days from the second 02:30 never lands before the start.
        let second = at("2026-10-25T01:30:00Z");
        assert_eq!(c.deadline(second, Limit::WorkingDays(0)), second);
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let c = china();
        let late = DateTime::<Utc>::MAX_UTC - TimeDelta::minutes(1);
        assert_eq!(c.deadline(late, Limit::Hours(1)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(c.deadline(late, Limit::WorkingDays(3)), DateTime::<Utc>::MAX_UTC);
    }
}
