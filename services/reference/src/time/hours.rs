//! Business hours (办公时间): when a unit is at work, for limits counted in working hours (`"8wh"`).
//! A 12345 hotline answers around the clock (24×7); a bureau's office works on working days with a
//! lunch break (5×8). Working days are the calendar's (holidays and make-up days included).

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use serde::Deserialize;

use super::{Calendar, Limit, TimeError};

const DAY_SECONDS: u32 = 24 * 60 * 60;

/// On which days the hours apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenDays {
    /// The calendar's working days (工作日).
    Working,
    /// Every day of the year, holidays included (全年无休).
    Every,
    /// Monday to Saturday, whatever the calendar says (some service windows).
    MondayToSaturday,
}

/// The hours a unit works: on [`OpenDays`], during each of `periods` (seconds of the local day,
/// `[start, end)`, sorted and apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub days: OpenDays,
    periods: Vec<(u32, u32)>,
}

/// A set of business hours as the district file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursEntry {
    /// "working" (the calendar's working days), "every" (every day) or "monday-saturday".
    pub days: String,
    /// "09:00-12:00", "14:00-18:00"; "00:00-24:00" for the whole day.
    pub periods: Vec<String>,
}

impl BusinessHours {
    /// Around the clock, every day (24×7): a hotline, the centre's duty desk.
    pub fn always() -> Self {
        BusinessHours { days: OpenDays::Every, periods: vec![(0, DAY_SECONDS)] }
    }

    /// The whole of every working day, 00:00–24:00: how working-day limits (`wd`) count time.
    pub fn working_days() -> Self {
        BusinessHours { days: OpenDays::Working, periods: vec![(0, DAY_SECONDS)] }
    }

    /// An office on working days, 09:00–12:00 and 14:00–18:00 (5×8 with a lunch break).
    pub fn office() -> Self {
        BusinessHours { days: OpenDays::Working, periods: vec![(9 * 3600, 12 * 3600), (14 * 3600, 18 * 3600)] }
    }

    /// Checks an entry: known days, periods "HH:MM-HH:MM" in order, not overlapping, not empty.
    pub fn from_entry(name: &str, entry: &HoursEntry) -> Result<Self, TimeError> {
        let mut problems = Vec::new();
        let days = match entry.days.trim() {
            "working" => Some(OpenDays::Working),
            "every" => Some(OpenDays::Every),
            "monday-saturday" => Some(OpenDays::MondayToSaturday),
            other => {
                problems.push(format!("hours {name:?}: days {other:?} is not one of working, every, monday-saturday"));
                None
            }
        };
        let mut periods = Vec::new();
        for p in &entry.periods {
            match parse_period(p) {
                Ok(period) => periods.push(period),
                Err(why) => problems.push(format!("hours {name:?}: period {p:?} {why}")),
            }
        }
        periods.sort_unstable();
        if periods.windows(2).any(|w| w[0].1 > w[1].0) {
            problems.push(format!("hours {name:?}: periods overlap"));
        }
        if entry.periods.is_empty() {
            problems.push(format!("hours {name:?}: no periods: a unit that is never at work would never meet a limit"));
        }
        match days {
            Some(days) if problems.is_empty() => Ok(BusinessHours { days, periods }),
            _ => Err(TimeError::InvalidCalendar(problems)),
        }
    }

    /// Seconds of work in one open day.
    pub fn seconds_per_day(&self) -> u32 {
        self.periods.iter().map(|(s, e)| e - s).sum()
    }

    fn open_on(&self, calendar: &Calendar, date: NaiveDate) -> bool {
        match self.days {
            OpenDays::Working => calendar.is_working_day(date),
            OpenDays::Every => true,
            OpenDays::MondayToSaturday => date.weekday() != Weekday::Sun,
        }
    }

    /// Whether the unit is at work at local `time` on `date`.
    pub fn is_open(&self, calendar: &Calendar, date: NaiveDate, time: NaiveTime) -> bool {
        let s = time.num_seconds_from_midnight();
        self.open_on(calendar, date) && self.periods.iter().any(|(a, b)| *a <= s && s < *b)
    }
}

impl fmt::Display for BusinessHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = match self.days {
            OpenDays::Working => "工作日",
            OpenDays::Every => "每天",
            OpenDays::MondayToSaturday => "周一至周六",
        };
        let hm = |s: u32| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
        let periods: Vec<String> = self.periods.iter().map(|(a, b)| format!("{}–{}", hm(*a), hm(*b))).collect();
        write!(f, "{days} {}", periods.join("、"))
    }
}

fn parse_period(text: &str) -> Result<(u32, u32), &'static str> {
    let (a, b) = text.trim().split_once('-').ok_or("is not \"HH:MM-HH:MM\"")?;
    let at = |t: &str| -> Result<u32, &'static str> {
        let (h, m) = t.trim().split_once(':').ok_or("is not \"HH:MM-HH:MM\"")?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| "has a bad hour")?, m.parse().map_err(|_| "has a bad minute")?);
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err("has a time of day that does not exist");
        }
        Ok(h * 3600 + m * 60)
    };
    let (a, b) = (at(a)?, at(b)?);
    if a >= b { Err("ends before it starts") } else { Ok((a, b)) }
}

/// The district's named business hours (`[sla_timer.business_hours]`): the sets, which one
/// applies by default, and which units keep other hours.
#[derive(Debug, Clone)]
pub struct HoursBook {
    sets: BTreeMap<String, BusinessHours>,
    default: String,
}

impl Default for HoursBook {
    fn default() -> Self {
        let sets = BTreeMap::from([("office".to_string(), BusinessHours::office()), ("always".to_string(), BusinessHours::always())]);
        HoursBook { sets, default: "office".into() }
    }
}

impl HoursBook {
    /// The built-in sets ("office", "always") with the district's added or replaced, and the
    /// default named; every problem at once.
    pub fn new(entries: &BTreeMap<String, HoursEntry>, default: Option<&str>) -> Result<Self, TimeError> {
        let mut book = HoursBook::default();
        let mut problems = Vec::new();
        for (name, entry) in entries {
            match BusinessHours::from_entry(name, entry) {
                Ok(hours) => {
                    book.sets.insert(name.clone(), hours);
                }
                Err(TimeError::InvalidCalendar(p)) => problems.extend(p),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if let Some(default) = default {
            book.default = default.to_string();
        }
        if !book.sets.contains_key(&book.default) {
            problems.push(format!("default hours {:?} are not defined", book.default));
        }
        if problems.is_empty() { Ok(book) } else { Err(TimeError::InvalidCalendar(problems)) }
    }

    /// The set named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&BusinessHours> {
        self.sets.get(name)
    }

    /// The default set and its name.
    pub fn default_hours(&self) -> (&str, &BusinessHours) {
        (&self.default, &self.sets[&self.default])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }
}

impl Calendar {
    /// The local date and second of the day of `t`.
    fn local_parts(&self, t: DateTime<Utc>) -> (NaiveDate, u32) {
        let local = t.with_timezone(&self.timezone()).naive_local();
        (local.date(), local.time().num_seconds_from_midnight())
    }

    fn at_second(&self, date: NaiveDate, second: u32) -> Option<DateTime<Utc>> {
        let local: NaiveDateTime = date.and_hms_opt(0, 0, 0)?.checked_add_signed(TimeDelta::seconds(second.into()))?;
        self.to_utc(local)
    }

    /// The instant `seconds` of work after `start` under `hours` (N working hours, 工作小时): work
    /// is counted only inside the periods of open days; a start outside them counts from the next
    /// period. `None` beyond about ten years of searching, or past chrono's range.
    pub fn add_work(&self, start: DateTime<Utc>, seconds: u64, hours: &BusinessHours) -> Option<DateTime<Utc>> {
        if seconds == 0 {
            return Some(start);
        }
        let (mut day, mut from) = self.local_parts(start);
        let mut left = seconds;
        // Ten years of days: a set with no open day in reach is a configuration error.
        for _ in 0..3700 {
            if hours.open_on(self, day) {
                for &(a, b) in &hours.periods {
                    let begin = a.max(from);
                    if begin >= b {
                        continue;
                    }
                    let available = u64::from(b - begin);
                    if left <= available {
                        let end = begin + u32::try_from(left).expect("at most a day");
                        return self.at_second(day, end).map(|t| t.max(start));
                    }
                    left -= available;
                }
            }
            day = day.succ_opt()?;
            from = 0;
        }
        None
    }

    /// Where `deadline`, counted in `limit`, lies once a pause from `paused` to `resumed` is
    /// taken out (挂起): the time the limit would have counted during the pause is added back,
    /// so an elapsed limit moves by the whole pause, a working-day limit by the working days in
    /// it (a pause over a weekend costs nothing), a working-hour limit by the work on `hours`.
    pub fn after_pause(
        &self,
        deadline: DateTime<Utc>,
        paused: DateTime<Utc>,
        resumed: DateTime<Utc>,
        limit: Limit,
        hours: &BusinessHours,
    ) -> DateTime<Utc> {
        if resumed <= paused {
            return deadline;
        }
        let counted = match limit {
            Limit::WorkingDays(_) => BusinessHours::working_days(),
            Limit::WorkingHours(_) => hours.clone(),
            _ => return deadline.checked_add_signed(resumed - paused).unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let lost = self.work_between(paused, resumed, &counted);
        self.add_work(deadline, lost, &counted).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Seconds of work under `hours` between `a` and `b` (0 when `b` is not later).
    pub fn work_between(&self, a: DateTime<Utc>, b: DateTime<Utc>, hours: &BusinessHours) -> u64 {
        if b <= a {
            return 0;
        }
        let (mut day, from) = self.local_parts(a);
        let (last, to) = self.local_parts(b);
        let mut total = 0u64;
        let mut first = true;
        while day <= last {
            if hours.open_on(self, day) {
                let lo = if first { from } else { 0 };
                let hi = if day == last { to } else { DAY_SECONDS };
                for &(s, e) in &hours.periods {
                    let (s, e) = (s.max(lo), e.min(hi));
                    if s < e {
                        total += u64::from(e - s);
                    }
                }
            }
            first = false;
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        total
    }

    /// The years between `a` and `b` (local) whose official schedule the calendar lacks: limits
    /// counted across them treat them as plain Monday to Friday, which must be reported.
    pub fn uncovered_years(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Vec<i32> {
        let (from, to) = (self.local_parts(a.min(b)).0.year(), self.local_parts(a.max(b)).0.year());
        (from..=to).filter(|y| !self.covers(*y)).collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn bj(s: &str) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.from_local_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()).unwrap().to_utc()
    }

    fn china() -> Calendar {
        Calendar::china_default()
    }

    /// The reference: minute by minute, is the unit at work in the minute starting here?
    fn open_minute(calendar: &Calendar, hours: &BusinessHours, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&calendar.timezone()).naive_local();
        hours.is_open(calendar, local.date(), local.time())
    }

    fn brute_add(calendar: &Calendar, hours: &BusinessHours, start: DateTime<Utc>, minutes: u64) -> DateTime<Utc> {
        let (mut t, mut left) = (start, minutes);
        while left > 0 {
            if open_minute(calendar, hours, t) {
                left -= 1;
            }
            t += Duration::minutes(1);
        }
        t
    }

    fn brute_between(calendar: &Calendar, hours: &BusinessHours, a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
        let mut t = a;
        let mut n = 0;
        while t < b {
            n += u64::from(open_minute(calendar, hours, t));
            t += Duration::minutes(1);
        }
        n * 60
    }

    #[test]
    fn an_office_day_has_a_lunch_break() {
        let c = china();
        let office = BusinessHours::office();
        assert_eq!(office.seconds_per_day(), 7 * 3600);
        // Monday 2026-12-07 11:00 + 2 working hours = 15:00 (the lunch break does not count).
        assert_eq!(c.add_work(bj("2026-12-07 11:00"), 2 * 3600, &office), Some(bj("2026-12-07 15:00")));
        // Filed at lunch: work starts at 14:00.
        assert_eq!(c.add_work(bj("2026-12-07 12:30"), 3600, &office), Some(bj("2026-12-07 15:00")));
        // Friday 17:00 + 8 working hours: 1 h on Friday, 7 h on Monday → Monday 18:00.
        assert_eq!(c.add_work(bj("2026-12-11 17:00"), 8 * 3600, &office), Some(bj("2026-12-14 18:00")));
        // Exactly the end of a period is the deadline, not the next morning.
        assert_eq!(c.add_work(bj("2026-12-07 09:00"), 3 * 3600, &office), Some(bj("2026-12-07 12:00")));
        assert_eq!(c.work_between(bj("2026-12-07 08:00"), bj("2026-12-08 10:00"), &office), 8 * 3600);
    }

    #[test]
    fn working_hours_skip_holidays_and_count_make_up_days() {
        let c = china();
        let office = BusinessHours::office();
        // 国庆节 2026: 10-01..07 off, Saturday 10-10 a make-up working day.
        assert_eq!(c.add_work(bj("2026-09-30 17:00"), 2 * 3600, &office), Some(bj("2026-10-08 10:00")));
        assert_eq!(c.add_work(bj("2026-10-09 17:00"), 2 * 3600, &office), Some(bj("2026-10-10 10:00")), "调休 Saturday works");
        // The hotline does not stop for holidays.
        assert_eq!(c.add_work(bj("2026-09-30 23:00"), 2 * 3600, &BusinessHours::always()), Some(bj("2026-10-01 01:00")));
        // Spring festival 2024 (2-10..17 off, Sunday 2-04 and 2-18 at work).
        // 除夕 2024-02-09 is a Friday at work; after hours the next hour of work is the make-up Sunday.
        assert_eq!(c.add_work(bj("2024-02-09 17:00"), 3600, &office), Some(bj("2024-02-09 18:00")));
        assert_eq!(c.add_work(bj("2024-02-09 18:00"), 3600, &office), Some(bj("2024-02-18 10:00")));
    }

    #[test]
    fn agrees_with_a_minute_by_minute_reference() {
        let c = china();
        let sets = [BusinessHours::office(), BusinessHours::always(), {
            let entry = HoursEntry { days: "monday-saturday".into(), periods: vec!["08:30-11:45".into(), "13:15-17:00".into()] };
            BusinessHours::from_entry("window", &entry).unwrap()
        }];
        // A deterministic walk over 2024–2026, month and year ends and holidays included.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let origin = bj("2024-01-01 00:00");
        for i in 0..400 {
            let hours = &sets[i % sets.len()];
            let start = origin + Duration::minutes(next(3 * 366 * 24 * 60) as i64);
            let minutes = next(4 * 24 * 60);
            let expected = brute_add(&c, hours, start, minutes);
            assert_eq!(c.add_work(start, minutes * 60, hours), Some(expected), "{hours} from {start} + {minutes} min");
            let end = start + Duration::minutes(next(6 * 24 * 60) as i64);
            assert_eq!(c.work_between(start, end, hours), brute_between(&c, hours, start, end), "{hours} {start}..{end}");
        }
        // Around year ends, every hour of the night.
        for start in (0..48).map(|h| bj("2025-12-31 00:00") + Duration::hours(h)) {
            for hours in &sets {
                assert_eq!(c.add_work(start, 600 * 60, hours), Some(brute_add(&c, hours, start, 600)), "{hours} from {start}");
            }
        }
    }

    #[test]
    fn hours_are_checked_and_named_in_errors() {
        let bad = HoursEntry { days: "weekdays".into(), periods: vec!["18:00-09:00".into(), "25:00-26:00".into(), "9-12".into()] };
        let Err(TimeError::InvalidCalendar(problems)) = BusinessHours::from_entry("shop", &bad) else { panic!() };
        let all = problems.join("\n");
        for part in ["days \"weekdays\"", "\"18:00-09:00\" ends before it starts", "\"25:00-26:00\" has a time of day", "\"9-12\""] {
            assert!(all.contains(part), "{part} in {all}");
        }
        let overlap = HoursEntry { days: "working".into(), periods: vec!["09:00-12:00".into(), "11:00-13:00".into()] };
        assert!(BusinessHours::from_entry("x", &overlap).is_err());
        let book = HoursBook::new(&BTreeMap::new(), Some("nights")).unwrap_err();
        assert!(book.to_string().contains("default hours \"nights\""), "{book}");
        let book = HoursBook::new(&BTreeMap::new(), None).unwrap();
        assert_eq!(book.default_hours().0, "office");
        assert_eq!(book.get("always"), Some(&BusinessHours::always()));
        assert_eq!(BusinessHours::office().to_string(), "工作日 09:00–12:00、14:00–18:00");
    }

    #[test]
    fn a_pause_gives_back_what_the_limit_would_have_counted() {
        let c = china();
        let office = BusinessHours::office();
        // Elapsed limits move by the whole pause.
        let d = c.after_pause(bj("2026-03-03 09:00"), bj("2026-03-02 10:00"), bj("2026-03-02 12:30"), Limit::Hours(24), &office);
        assert_eq!(d, bj("2026-03-03 11:30"));
        // Working days: a pause over a weekend costs nothing…
        let d = c.after_pause(bj("2026-03-10 09:00"), bj("2026-03-07 10:00"), bj("2026-03-08 20:00"), Limit::WorkingDays(3), &office);
        assert_eq!(d, bj("2026-03-10 09:00"));
        let d = c.after_pause(bj("2026-03-10 09:00"), bj("2026-03-06 18:00"), bj("2026-03-09 00:00"), Limit::WorkingDays(3), &office);
        assert_eq!(d, bj("2026-03-10 15:00"), "Friday 18:00–24:00 is six hours of a working day");
        // …a whole working day costs one, and a holiday in the way is skipped (清明 4–6 April 2026).
        let d = c.after_pause(bj("2026-04-03 10:00"), bj("2026-04-02 10:00"), bj("2026-04-03 10:00"), Limit::WorkingDays(2), &office);
        assert_eq!(d, bj("2026-04-07 10:00"));
        // Working hours on the unit's hours: a lunch-time pause costs nothing.
        let d = c.after_pause(bj("2026-03-02 17:00"), bj("2026-03-02 12:00"), bj("2026-03-02 14:00"), Limit::WorkingHours(4), &office);
        assert_eq!(d, bj("2026-03-02 17:00"));
        let d = c.after_pause(bj("2026-03-02 17:00"), bj("2026-03-02 11:00"), bj("2026-03-02 15:00"), Limit::WorkingHours(4), &office);
        assert_eq!(d, bj("2026-03-03 10:00"), "two hours of work paused: 17:00 + 2 wh crosses the night");
        // A resume not after the pause changes nothing.
        assert_eq!(
            c.after_pause(bj("2026-03-02 17:00"), bj("2026-03-02 12:00"), bj("2026-03-02 12:00"), Limit::Hours(1), &office),
            bj("2026-03-02 17:00")
        );
    }

    #[test]
    fn a_pause_keeps_the_work_left_property() {
        // Against the minute-by-minute reference: the work between start and the new deadline,
        // less the work paused, is the work the limit gave.
        let c = china();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let base = bj("2025-12-20 00:00");
        for _ in 0..60 {
            let start = base + Duration::minutes(next(60 * 24 * 30) as i64);
            let (hours, limit) = match next(2) {
                0 => (BusinessHours::office(), Limit::WorkingHours(1 + next(20) as u32)),
                _ => (BusinessHours::working_days(), Limit::WorkingDays(1 + next(4) as u32)),
            };
            let deadline = c.deadline_in(start, limit, &hours);
            let paused = start + Duration::minutes(next(60 * 24 * 3) as i64);
            let resumed = paused + Duration::minutes(next(60 * 24 * 5) as i64);
            if paused >= deadline {
                continue;
            }
            let moved = c.after_pause(deadline, paused, resumed, limit, &hours);
            let given = brute_between(&c, &hours, start, deadline);
            let lost = brute_between(&c, &hours, paused, resumed);
            assert_eq!(brute_between(&c, &hours, start, moved) - lost, given, "{limit} from {start}, paused {paused}..{resumed}");
        }
    }

    #[test]
    fn years_without_a_schedule_are_named() {
        let c = china();
        assert!(c.uncovered_years(bj("2024-03-01 09:00"), bj("2026-12-31 09:00")).is_empty());
        assert_eq!(c.uncovered_years(bj("2026-12-20 09:00"), bj("2027-01-20 09:00")), vec![2027]);
        assert_eq!(c.uncovered_years(bj("2023-12-20 09:00"), bj("2024-01-20 09:00")), vec![2023]);
    }
}
