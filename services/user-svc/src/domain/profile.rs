//! Profile values: names, date of birth (and the age derived from it), gender, country, city,
//! time zone, language, bio and avatar URL.

use chrono::{Datelike, NaiveDate};

use vottery_common::reference::{COUNTRIES, TIME_ZONES};

fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control())
}

/// A first or last name: trimmed, 1 to 100 characters, no control characters.
pub fn name(input: &str) -> Result<String, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > 100 {
        return Err("must be at most 100 characters".into());
    }
    if has_control(text) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// A city: trimmed, at most 100 characters.
pub fn city(input: &str) -> Result<String, String> {
    name(input)
}

/// A bio: at most 2,000 characters; line breaks allowed, other control characters not.
pub fn bio(input: &str) -> Result<String, String> {
    if input.chars().count() > 2_000 {
        return Err("must be at most 2000 characters".into());
    }
    if input
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(input.to_owned())
}

/// A date of birth: `YYYY-MM-DD`, not in the future, after 1900-01-01.
pub fn date_of_birth(input: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d")
        .map_err(|_| "must be a date in the form YYYY-MM-DD".to_owned())?;
    if date > today {
        return Err("must not be in the future".into());
    }
    if date.year() < 1900 {
        return Err("must be after 1900-01-01".into());
    }
    Ok(date)
}

/// Whole years between `born` and `today`.
pub fn age(born: NaiveDate, today: NaiveDate) -> i32 {
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years
}

/// The genders the customer's schema allows.
pub const GENDERS: [&str; 4] = ["male", "female", "other", "prefer_not_to_say"];

pub fn gender(input: &str) -> Result<String, String> {
    let value = input.trim().to_lowercase();
    if GENDERS.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(format!("must be one of {}", GENDERS.join(", ")))
    }
}

/// An ISO 3166-1 alpha-2 country code, upper-cased.
pub fn country(input: &str) -> Result<String, String> {
    let code = input.trim().to_uppercase();
    if COUNTRIES.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err("must be an ISO 3166-1 alpha-2 country code such as US or DE".into())
    }
}

/// An IANA time zone name such as `Europe/Berlin` (exact case).
pub fn time_zone(input: &str) -> Result<String, String> {
    let zone = input.trim();
    if TIME_ZONES.binary_search(&zone).is_ok() {
        Ok(zone.to_owned())
    } else {
        Err("must be an IANA time zone name such as Europe/Berlin or UTC".into())
    }
}

/// A language tag such as `en`, `pt-BR` or `zh-Hant` (at most 10 characters).
pub fn language(input: &str) -> Result<String, String> {
    let tag = input.trim();
    let mut parts = tag.split('-');
    let primary_ok = parts.next().is_some_and(|primary| {
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic())
    });
    let rest_ok = parts.all(|part| {
        (2..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if primary_ok && rest_ok && tag.len() <= 10 {
        Ok(tag.to_owned())
    } else {
        Err("must be a language tag such as en or pt-BR (at most 10 characters)".into())
    }
}

/// An `http` or `https` URL of at most 2,048 characters.
pub fn avatar_url(input: &str) -> Result<String, String> {
    let url = input.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must be an http or https URL".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || url.len() > 2_048
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be an http or https URL of at most 2048 characters".into());
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age(day("2000-06-15"), day("2026-06-14")), 25);
        assert_eq!(age(day("2000-06-15"), day("2026-06-15")), 26);
        assert_eq!(age(day("2000-02-29"), day("2026-02-28")), 25);
    }

    #[test]
    fn dates_of_birth_are_checked() {
        let today = day("2026-11-22");
        assert!(date_of_birth("1990-01-31", today).is_ok());
        for bad in ["1990-02-30", "31/01/1990", "2027-01-01", "1899-12-31", ""] {
            assert!(date_of_birth(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn reference_values_are_checked() {
        assert_eq!(country("us").unwrap(), "US");
        assert!(country("XX").is_err() && country("USA").is_err());
        assert!(time_zone("Europe/Berlin").is_ok() && time_zone("UTC").is_ok());
        assert!(time_zone("Mars/Olympus").is_err() && time_zone("europe/berlin").is_err());
        assert!(language("en").is_ok() && language("pt-BR").is_ok());
        assert!(language("english").is_err());
        assert!(gender("Male").is_ok() && gender("robot").is_err());
        assert!(avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(avatar_url("javascript:alert(1)").is_err());
        assert!(name("  ").is_err() && name("Ann\u{0}").is_err());
    }

    #[test]
    fn reference_lists_are_sorted_for_binary_search() {
        assert!(COUNTRIES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(TIME_ZONES.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
