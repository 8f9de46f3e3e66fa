//! Request bodies and queries, read field by field into domain values so that every bad field
//! is named in one answer: unknown fields, wrong types, invalid values, the Sngine aliases
//! (`user_gender`, `user_country`, `user_birthdate`) and the refused `user_age`.
//!
//! The bodies' contract is `vottery_common::users` (`CreateUser`, `ProfileUpdate`,
//! `StatusUpdate`, `RoleUpdate`): its schemas state the rules applied here (enums, formats,
//! patterns, lengths) and feed the OpenAPI document. The `openapi` tests hold the two together:
//! the documented enums are the domain's values, and bodies made from the document pass here.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use vottery_common::problem::FieldError;

use crate::domain::contact::{Email, Phone};
use crate::domain::profile;
use crate::domain::roles::{AdminRole, SubscriptionStatus, UserType};
use crate::domain::status::Status;
use crate::error::ApiError;
use crate::events::feed::{self, Cursor, FeedQuery};

/// A field that may be absent (unchanged), `null` (cleared) or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// The change with its new value converted.
    pub fn map<U>(self, convert: impl FnOnce(T) -> U) -> Change<U> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(value) => Change::Set(convert(value)),
        }
    }

    /// The change as borrowed values.
    pub fn as_ref(&self) -> Change<&T> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(value) => Change::Set(value),
        }
    }
}

impl<T: Clone> Change<T> {
    /// Applies the change to a nullable column.
    pub fn apply_to(&self, slot: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *slot = None,
            Change::Set(value) => *slot = Some(value.clone()),
        }
    }
}

/// Reads a JSON object's fields, collecting every error.
pub struct FieldReader {
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl FieldReader {
    pub fn new(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(fields) => Ok(Self {
                fields,
                errors: Vec::new(),
            }),
            other => Err(ApiError::field(
                "body",
                format!("must be a JSON object, not {}", type_name(&other)),
            )),
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Takes a field by name or one of its aliases (reporting a name given twice).
    fn take(&mut self, name: &str, aliases: &[&str]) -> Option<(String, Value)> {
        let mut found: Option<(String, Value)> = self
            .fields
            .remove(name)
            .map(|value| (name.to_owned(), value));
        for alias in aliases {
            if let Some(value) = self.fields.remove(*alias) {
                if let Some((first, _)) = &found {
                    self.errors.push(FieldError::new(
                        *alias,
                        format!("is another name for {first}; send only one of them"),
                    ));
                } else {
                    found = Some(((*alias).to_owned(), value));
                }
            }
        }
        found
    }

    /// A text field parsed by `parse`.
    pub fn text<T>(
        &mut self,
        name: &str,
        aliases: &[&str],
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Change<T> {
        match self.take(name, aliases) {
            None => Change::Keep,
            Some((_, Value::Null)) => Change::Clear,
            Some((given, Value::String(text))) => match parse(&text) {
                Ok(value) => Change::Set(value),
                Err(message) => {
                    self.errors.push(FieldError::new(given, message));
                    Change::Keep
                }
            },
            Some((given, other)) => {
                self.errors.push(FieldError::new(
                    given,
                    format!("must be a string, not {}", type_name(&other)),
                ));
                Change::Keep
            }
        }
    }

    /// A text field that must be present and not null.
    pub fn required_text<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let present = self.fields.contains_key(name);
        match self.text(name, &[], parse) {
            Change::Set(value) => Some(value),
            Change::Clear => {
                self.error(name, "is required and must not be null");
                None
            }
            Change::Keep => {
                if !present {
                    self.error(name, "is required");
                }
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Change<bool> {
        match self.take(name, &[]) {
            None => Change::Keep,
            Some((_, Value::Null)) => Change::Clear,
            Some((_, Value::Bool(value))) => Change::Set(value),
            Some((given, other)) => {
                self.errors.push(FieldError::new(
                    given,
                    format!("must be true or false, not {}", type_name(&other)),
                ));
                Change::Keep
            }
        }
    }

    /// Refuses a field outright (`user_age`).
    pub fn refuse(&mut self, name: &str, message: &str) {
        if self.fields.remove(name).is_some() {
            self.error(name, message);
        }
    }

    /// Fails with every collected error, including fields nobody asked for.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut unknown: Vec<String> = self.fields.keys().cloned().collect();
        unknown.sort();
        for name in unknown {
            self.errors.push(FieldError::new(
                name,
                "unknown field; it is not part of this request",
            ));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

const AGE_IS_DERIVED: &str = "age is not stored: it is derived from date_of_birth; send date_of_birth (or user_birthdate) as YYYY-MM-DD instead";

/// Validated profile changes.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub first_name: Change<String>,
    pub last_name: Change<String>,
    pub date_of_birth: Change<NaiveDate>,
    pub gender: Change<String>,
    pub country: Change<String>,
    pub city: Change<String>,
    pub timezone: Change<String>,
    pub bio: Change<String>,
    pub avatar_url: Change<String>,
    pub language: Change<String>,
    pub notifications_enabled: Change<bool>,
}

impl ProfileChanges {
    /// The names of the fields that change.
    pub fn changed_fields(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut note = |name: &str, keep: bool| {
            if !keep {
                names.push(name.to_owned());
            }
        };
        note("first_name", self.first_name.is_keep());
        note("last_name", self.last_name.is_keep());
        note("date_of_birth", self.date_of_birth.is_keep());
        note("gender", self.gender.is_keep());
        note("country", self.country.is_keep());
        note("city", self.city.is_keep());
        note("timezone", self.timezone.is_keep());
        note("bio", self.bio.is_keep());
        note("avatar_url", self.avatar_url.is_keep());
        note("language", self.language.is_keep());
        note(
            "notifications_enabled",
            self.notifications_enabled.is_keep(),
        );
        names
    }
}

fn read_profile(reader: &mut FieldReader, today: NaiveDate) -> ProfileChanges {
    reader.refuse("user_age", AGE_IS_DERIVED);
    reader.refuse("age", AGE_IS_DERIVED);
    let changes = ProfileChanges {
        first_name: reader.text("first_name", &[], profile::name),
        last_name: reader.text("last_name", &[], profile::name),
        date_of_birth: reader.text("date_of_birth", &["user_birthdate"], |text| {
            profile::date_of_birth(text, today)
        }),
        gender: reader.text("gender", &["user_gender"], profile::gender),
        country: reader.text("country", &["user_country"], profile::country),
        city: reader.text("city", &[], profile::city),
        timezone: reader.text("timezone", &[], profile::time_zone),
        bio: reader.text("bio", &[], profile::bio),
        avatar_url: reader.text("avatar_url", &[], profile::avatar_url),
        language: reader.text("language", &[], profile::language),
        notifications_enabled: reader.boolean("notifications_enabled"),
    };
    // Columns with a default cannot be cleared to null.
    for (name, clear) in [
        ("timezone", changes.timezone == Change::Clear),
        ("language", changes.language == Change::Clear),
        (
            "notifications_enabled",
            changes.notifications_enabled == Change::Clear,
        ),
    ] {
        if clear {
            reader.error(name, "cannot be null");
        }
    }
    changes
}

/// `PUT /api/users/:id/profile`.
pub fn profile_update(body: Value, today: NaiveDate) -> Result<ProfileChanges, ApiError> {
    let mut reader = FieldReader::new(body)?;
    let changes = read_profile(&mut reader, today);
    let empty = changes.changed_fields().is_empty();
    reader.finish()?;
    if empty {
        return Err(ApiError::field(
            "body",
            "no profile field given; nothing to change",
        ));
    }
    Ok(changes)
}

/// A validated `POST /api/users`.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub phone: Phone,
    pub user_type: UserType,
    pub subscription_status: SubscriptionStatus,
    pub profile: ProfileChanges,
}

pub fn new_user(body: Value, today: NaiveDate) -> Result<NewUser, ApiError> {
    let mut reader = FieldReader::new(body)?;
    let email = reader.required_text("sngine_email", Email::parse);
    let phone = reader.required_text("sngine_phone", Phone::parse);
    let user_type = reader.text("user_type", &[], |text| text.parse::<UserType>());
    let subscription_status = reader.text("subscription_status", &[], |text| {
        text.parse::<SubscriptionStatus>()
    });
    for (name, clear) in [
        ("user_type", user_type == Change::Clear),
        ("subscription_status", subscription_status == Change::Clear),
    ] {
        if clear {
            reader.error(name, "cannot be null");
        }
    }
    let profile = read_profile(&mut reader, today);
    reader.finish()?;
    let (Some(email), Some(phone)) = (email, phone) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "required fields missing without an error"
        )));
    };
    Ok(NewUser {
        email,
        phone,
        user_type: match user_type {
            Change::Set(kind) => kind,
            _ => UserType::Voter,
        },
        subscription_status: match subscription_status {
            Change::Set(status) => status,
            _ => SubscriptionStatus::Free,
        },
        profile,
    })
}

/// `PUT /api/users/:id/status`.
pub fn status_update(body: Value) -> Result<Status, ApiError> {
    let mut reader = FieldReader::new(body)?;
    let status = reader.required_text("status", |text| text.parse::<Status>());
    reader.finish()?;
    status.ok_or_else(|| ApiError::field("status", "is required"))
}

/// Validated `PUT /api/users/:id/role` changes.
#[derive(Debug, Clone, Default)]
pub struct RoleChanges {
    pub user_type: Change<UserType>,
    pub admin_role: Change<AdminRole>,
    pub subscription_status: Change<SubscriptionStatus>,
    pub subscription_plan: Change<String>,
    pub subscription_expires_at: Change<NaiveDateTime>,
}

impl RoleChanges {
    pub fn changed_fields(&self) -> Vec<String> {
        [
            ("user_type", self.user_type.is_keep()),
            ("admin_role", self.admin_role.is_keep()),
            ("subscription_status", self.subscription_status.is_keep()),
            ("subscription_plan", self.subscription_plan.is_keep()),
            (
                "subscription_expires_at",
                self.subscription_expires_at.is_keep(),
            ),
        ]
        .into_iter()
        .filter(|(_, keep)| !keep)
        .map(|(name, _)| name.to_owned())
        .collect()
    }
}

fn plan(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > 20
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("must be 1 to 20 letters, digits, '_' or '-'".into());
    }
    Ok(text.to_owned())
}

fn expiry(text: &str) -> Result<NaiveDateTime, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc).naive_utc())
        .map_err(|_| "must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z".to_owned())
}

pub fn role_update(body: Value) -> Result<RoleChanges, ApiError> {
    let mut reader = FieldReader::new(body)?;
    let changes = RoleChanges {
        user_type: reader.text("user_type", &[], |text| text.parse::<UserType>()),
        admin_role: reader.text("admin_role", &[], |text| text.parse::<AdminRole>()),
        subscription_status: reader.text("subscription_status", &[], |text| {
            text.parse::<SubscriptionStatus>()
        }),
        subscription_plan: reader.text("subscription_plan", &[], plan),
        subscription_expires_at: reader.text("subscription_expires_at", &[], expiry),
    };
    for (name, clear) in [
        ("user_type", changes.user_type == Change::Clear),
        (
            "subscription_status",
            changes.subscription_status == Change::Clear,
        ),
    ] {
        if clear {
            reader.error(name, "cannot be null");
        }
    }
    let empty = changes.changed_fields().is_empty();
    reader.finish()?;
    if empty {
        return Err(ApiError::field("body", "no field given; nothing to change"));
    }
    Ok(changes)
}

/// `GET /api/users` filters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub page: u32,
    /// `page` was given (not the default).
    pub page_given: bool,
    pub limit: u32,
    /// `after` and `before`: list cursors, as given; read by [`super::list_cursor`].
    pub after: Option<String>,
    pub before: Option<String>,
    pub status: Option<Status>,
    pub user_type: Option<UserType>,
    pub admin_role: Option<AdminRole>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub country: Option<String>,
    pub email: Option<Email>,
}

/// The most rows one page may hold.
pub const MAX_LIMIT: u32 = 100;

fn page_number(
    field: &str,
    text: &str,
    max: Option<u32>,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    match text.parse::<u32>() {
        Ok(value) if value >= 1 && max.is_none_or(|max| value <= max) => Some(value),
        _ => {
            let message = match max {
                Some(max) => format!("must be a whole number from 1 to {max}"),
                None => "must be a whole number from 1".to_owned(),
            };
            errors.push(FieldError::new(field, message));
            None
        }
    }
}

/// Parses the query string of `GET /api/users` (or, with `filters` false, a bare page query).
pub fn list_query(query: &str, filters: bool) -> Result<ListQuery, ApiError> {
    let mut parsed = ListQuery {
        page: 1,
        limit: 20,
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in form_pairs(query) {
        if !seen.insert(key.clone()) {
            errors.push(FieldError::new(&key, "is given more than once"));
            continue;
        }
        parsed.read(&key, &value, filters, &mut errors);
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

impl ListQuery {
    /// Reads one query parameter (the filters only when `filters`), noting what is wrong.
    fn read(&mut self, key: &str, value: &str, filters: bool, errors: &mut Vec<FieldError>) {
        match key {
            "page" => {
                self.page = page_number("page", value, None, errors).unwrap_or(1);
                self.page_given = true;
            }
            "after" if filters => self.after = Some(value.to_owned()),
            "before" if filters => self.before = Some(value.to_owned()),
            "limit" => {
                self.limit = page_number("limit", value, Some(MAX_LIMIT), errors).unwrap_or(20)
            }
            "status" if filters => set_filter(&mut self.status, key, value.parse(), errors),
            "user_type" if filters => set_filter(&mut self.user_type, key, value.parse(), errors),
            "admin_role" if filters => set_filter(&mut self.admin_role, key, value.parse(), errors),
            "subscription_status" if filters => {
                set_filter(&mut self.subscription_status, key, value.parse(), errors)
            }
            "country" if filters => {
                set_filter(&mut self.country, key, profile::country(value), errors)
            }
            "email" if filters => set_filter(&mut self.email, key, Email::parse(value), errors),
            other => errors.push(FieldError::new(other, "unknown query parameter")),
        }
    }
}

/// Sets a filter to its parsed value, or notes why the value is refused.
fn set_filter<T>(
    slot: &mut Option<T>,
    field: &str,
    result: Result<T, String>,
    errors: &mut Vec<FieldError>,
) {
    match result {
        Ok(value) => *slot = Some(value),
        Err(message) => errors.push(FieldError::new(field, message)),
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
/// `GET /api/events`: `after` (a cursor the feed gave out) and `limit`.
pub fn feed_query(query: &str) -> Result<FeedQuery, ApiError> {
    let mut parsed = FeedQuery {
        after: Cursor::default(),
        limit: feed::DEFAULT_LIMIT,
    };
    let mut errors = Vec::new();
    for (key, value) in form_pairs(query) {
        match key.as_str() {
            "after" => match Cursor::decode(&value) {
                Some(cursor) => parsed.after = cursor,
                None => errors.push(FieldError::new(
                    "after",
                    "must be a `next` cursor of this feed",
                )),
            },
            "limit" => {
                parsed.limit = page_number("limit", &value, Some(feed::MAX_LIMIT), &mut errors)
                    .unwrap_or(feed::DEFAULT_LIMIT)
            }
            other => errors.push(FieldError::new(other, "unknown query parameter")),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::Validation(errors) => errors.into_iter().map(|error| error.field).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn the_seed_profile_body_is_refused_for_user_age_only() {
        let error = profile_update(
            json!({"user_age": 25, "user_gender": "male", "user_country": "US"}),
            today(),
        )
        .unwrap_err();
        assert_eq!(fields(error), vec!["user_age"]);
        let changes = profile_update(
            json!({"user_gender": "male", "user_country": "us"}),
            today(),
        )
        .unwrap();
        assert_eq!(changes.gender, Change::Set("male".into()));
        assert_eq!(changes.country, Change::Set("US".into()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let error = new_user(
            json!({"sngine_email": "nope", "sngine_phone": 5, "user_type": "alien", "extra": 1, "timezone": "Mars/X"}),
            today(),
        )
        .unwrap_err();
        let mut named = fields(error);
        named.sort();
        assert_eq!(
            named,
            vec![
                "extra",
                "sngine_email",
                "sngine_phone",
                "timezone",
                "user_type"
            ]
        );
        assert_eq!(
            fields(new_user(json!({}), today()).unwrap_err()),
            vec!["sngine_email", "sngine_phone"]
        );
        assert_eq!(
            fields(
                profile_update(json!({"gender": "male", "user_gender": "male"}), today())
                    .unwrap_err()
            ),
            vec!["user_gender"]
        );
    }

    #[test]
    fn list_queries_are_bounded_and_known() {
        let query = list_query("page=2&limit=5&status=active&email=A%40Example.com", true).unwrap();
        assert_eq!(
            (query.page, query.limit, query.status),
            (2, 5, Some(Status::Active))
        );
        assert_eq!(query.email.unwrap().as_str(), "a@example.com");
        let mut named =
            fields(list_query("page=0&limit=101&status=gone&colour=red", true).unwrap_err());
        named.sort();
        assert_eq!(named, vec!["colour", "limit", "page", "status"]);
        assert!(list_query("status=active", false).is_err());
    }

    #[test]
    fn role_changes_read_revocation_as_null() {
        let changes =
            role_update(json!({"admin_role": null, "user_type": "individual_creator"})).unwrap();
        assert_eq!(changes.admin_role, Change::Clear);
        assert_eq!(changes.user_type, Change::Set(UserType::IndividualCreator));
        assert!(role_update(json!({})).is_err());
        assert!(role_update(json!({"user_type": null})).is_err());
    }
}
