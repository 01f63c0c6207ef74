//! Kong's fixed, calendar-aligned UTC windows (kong-compat.md §4.7).

/// A rate-limiting period, shortest first (the order headers and checks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 6] = [
        Period::Second,
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Month,
        Period::Year,
    ];

    /// Kong's name (`minute`), used in counter keys.
    pub fn name(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    /// The header suffix (`Minute`).
    pub fn title(self) -> &'static str {
        match self {
            Period::Second => "Second",
            Period::Minute => "Minute",
            Period::Hour => "Hour",
            Period::Day => "Day",
            Period::Month => "Month",
            Period::Year => "Year",
        }
    }

    /// Kong's window length for `RateLimit-Reset` and Redis expiry: month = 30 days and
    /// year = 365 days, although the windows themselves start on calendar boundaries.
    pub fn seconds(self) -> i64 {
        match self {
            Period::Second => 1,
            Period::Minute => 60,
            Period::Hour => 3_600,
            Period::Day => 86_400,
            Period::Month => 2_592_000,
            Period::Year => 31_536_000,
        }
    }

    /// Start (seconds since the Unix epoch, UTC) of the window holding `now`.
    pub fn window_start(self, now: i64) -> i64 {
        match self {
            Period::Second => now,
            Period::Minute | Period::Hour | Period::Day => now - now.rem_euclid(self.seconds()),
            Period::Month => {
                let (y, m, _) = civil_from_days(now.div_euclid(86_400));
                days_from_civil(y, m, 1) * 86_400
            }
            Period::Year => {
                let (y, _, _) = civil_from_days(now.div_euclid(86_400));
                days_from_civil(y, 1, 1) * 86_400
            }
        }
    }

    /// Start of the next window (the calendar end of the one holding `now`): when a local
    /// counter of that window may be reclaimed.
    pub fn window_end(self, now: i64) -> i64 {
        match self {
            Period::Second | Period::Minute | Period::Hour | Period::Day => {
                self.window_start(now) + self.seconds()
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(now.div_euclid(86_400));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * 86_400
            }
            Period::Year => {
                let (y, _, _) = civil_from_days(now.div_euclid(86_400));
                days_from_civil(y + 1, 1, 1) * 86_400
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
