//! Date shifting for the Retain Longitudinal Temporal Information with
//! Modified Dates option.
//!
//! Every date of a patient moves by the same secret number of days, so
//! intervals (follow-up after 30 days, the CT two days after the
//! radiograph) survive while the real dates do not. DA and DT values are
//! shifted whole, including ranges (`A-B`, `-B`, `A-`) and partial DT
//! precision; the time of day and the UTC offset of a DT stay as they are.
//! A value that does not parse is dropped rather than kept, since an
//! unparsed value could be a real date.

use chrono::{Datelike, Duration, NaiveDate};
use dicom_core::VR;

/// `value` (one value of a DA or DT element) shifted by `days`, or `None`
/// when it does not parse.
pub(super) fn shift_value(value: &str, vr: VR, days: i32) -> Option<String> {
    let value = value.trim_matches(|c: char| c == '\0' || c == ' ');
    if value.is_empty() {
        return Some(String::new());
    }
    let parse_one = |s: &str| -> Option<(String, usize)> {
        match vr {
            VR::DA => {
                let end = s.find('-').unwrap_or(s.len());
                (end == 8)
                    .then(|| shift_date_digits(&s[..8], days))?
                    .map(|shifted| (shifted, 8))
            }
            _ => shift_datetime(s, days),
        }
    };
    // an open start: "-B"
    if let Some(rest) = value.strip_prefix('-') {
        let (end, used) = parse_one(rest)?;
        return (used == rest.len()).then(|| format!("-{end}"));
    }
    let (start, used) = parse_one(value)?;
    let rest = &value[used..];
    if rest.is_empty() {
        return Some(start);
    }
    let rest = rest.strip_prefix('-')?;
    if rest.is_empty() {
        return Some(format!("{start}-"));
    }
    let (end, used) = parse_one(rest)?;
    (used == rest.len()).then(|| format!("{start}-{end}"))
}

/// Shifts a date given as 4, 6 or 8 digits (YYYY, YYYYMM, YYYYMMDD),
/// keeping its precision. A partial date is shifted from its middle.
fn shift_date_digits(digits: &str, days: i32) -> Option<String> {
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits.get(..4)?.parse().ok()?;
    let (month, day) = match digits.len() {
        4 => (7, 1),
        6 => (digits[4..6].parse().ok()?, 15),
        8 => (digits[4..6].parse().ok()?, digits[6..8].parse().ok()?),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let shifted = date.checked_add_signed(Duration::days(i64::from(days)))?;
    if !(0..=9999).contains(&shifted.year()) {
        return None;
    }
    let full = shifted.format("%Y%m%d").to_string();
    Some(full[..digits.len()].to_owned())
}

/// Parses one DT at the start of `s` and shifts its date part. Returns the
/// shifted DT and how many bytes of `s` it used (the rest may be `-B`).
fn shift_datetime(s: &str, days: i32) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(4..=14).contains(&digits) || !digits.is_multiple_of(2) {
        return None;
    }
    let mut used = digits;
    if bytes.get(used) == Some(&b'.') {
        if digits != 14 {
            return None;
        }
        let fraction = bytes[used + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=6).contains(&fraction) {
            return None;
        }
        used += 1 + fraction;
    }
    if let Some(sign @ (b'+' | b'-')) = bytes.get(used) {
        let zone = s.get(used + 1..used + 5).unwrap_or("");
        let after = bytes.get(used + 5);
        let plausible = zone.len() == 4
            && zone.chars().all(|c| c.is_ascii_digit())
            && zone[..2].parse::<u32>().is_ok_and(|h| h <= 14)
            && matches!(&zone[2..], "00" | "15" | "30" | "45")
            && matches!(after, None | Some(b'-'));
        if plausible {
            used += 5;
        } else if *sign == b'+' {
            return None;
        }
    }
    let date_len = digits.min(8);
    let date = shift_date_digits(&s[..date_len], days)?;
    Some((format!("{date}{}", &s[date_len..used]), used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ranges() {
        assert_eq!(shift_value("20200131", VR::DA, 1).unwrap(), "20200201");
        assert_eq!(shift_value("20200301", VR::DA, -1).unwrap(), "20200229");
        assert_eq!(
            shift_value("20200101-20200110", VR::DA, 30).unwrap(),
            "20200131-20200209"
        );
        assert_eq!(shift_value("-20200110", VR::DA, 1).unwrap(), "-20200111");
        assert_eq!(shift_value("20200110-", VR::DA, 1).unwrap(), "20200111-");
        assert_eq!(shift_value("2020.01.10", VR::DA, 1), None);
        assert_eq!(shift_value("20201310", VR::DA, 1), None);
        assert_eq!(shift_value("2020011", VR::DA, 1), None);
    }

    #[test]
    fn datetimes_keep_time_and_zone() {
        assert_eq!(
            shift_value("20201231235959.123456+0100", VR::DT, 1).unwrap(),
            "20210101235959.123456+0100"
        );
        assert_eq!(
            shift_value("20200101120000-0500", VR::DT, 2).unwrap(),
            "20200103120000-0500"
        );
        assert_eq!(
            shift_value("20200101-20200102", VR::DT, 2).unwrap(),
            "20200103-20200104"
        );
        assert_eq!(
            shift_value("202001011200-0500-20200102", VR::DT, 1).unwrap(),
            "202001021200-0500-20200103"
        );
        assert_eq!(shift_value("2020", VR::DT, 1).unwrap(), "2020");
        assert_eq!(shift_value("202012", VR::DT, 30).unwrap(), "202101");
        assert_eq!(shift_value("20201", VR::DT, 1), None);
        assert_eq!(shift_value("yesterday", VR::DT, 1), None);
    }
}
