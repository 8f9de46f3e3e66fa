//! user-svc's request and response bodies.
//!
//! The request types are the contract: their schema attributes state the rules user-svc applies
//! (enums, formats, patterns and lengths), so the OpenAPI document, a client generated from it
//! and a fuzzer all send what the service accepts. user-svc reads request bodies field by field,
//! so that it can name every bad field at once; its tests check that it accepts what these
//! schemas describe.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::problem::FieldError;

/// What kind of account a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    Voter,
    IndividualCreator,
    OrganizationCreator,
}

impl UserType {
    pub const ALL: [UserType; 3] = [
        UserType::Voter,
        UserType::IndividualCreator,
        UserType::OrganizationCreator,
    ];
}

/// Free or paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Free,
    Subscribed,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 2] =
        [SubscriptionStatus::Free, SubscriptionStatus::Subscribed];
}

/// A rank of the admin hierarchy, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    Manager,
    Admin,
    Moderator,
    Auditor,
    Editor,
    Advertiser,
    Analyst,
}

impl AdminRole {
    /// Highest first.
    pub const ALL: [AdminRole; 7] = [
        AdminRole::Manager,
        AdminRole::Admin,
        AdminRole::Moderator,
        AdminRole::Auditor,
        AdminRole::Editor,
        AdminRole::Advertiser,
        AdminRole::Analyst,
    ];
}

/// A step of the account lifecycle: pending → verified → active ⇄ suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Pending,
    Verified,
    Active,
    Suspended,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 4] = [
        AccountStatus::Pending,
        AccountStatus::Verified,
        AccountStatus::Active,
        AccountStatus::Suspended,
    ];
}

/// The genders a profile may state. The service also accepts other letter cases and
/// surrounding spaces, and stores the lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
    Other,
    PreferNotToSay,
}

impl Gender {
    pub const ALL: [Gender; 4] = [
        Gender::Male,
        Gender::Female,
        Gender::Other,
        Gender::PreferNotToSay,
    ];
}

/// `POST /api/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUser {
    /// An email address (ASCII, a dotted domain ending in letters); stored lower-cased. Unique
    /// among users.
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = Email,
            max_length = 254,
            pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
            examples("ada@example.com", "first.last+tag@mail.example.org")
        )
    )]
    pub sngine_email: String,
    /// A phone number in international form: `+` or `00`, then 8 to 15 digits, the first not
    /// zero; spaces, `-`, `.`, `(` and `)` between them are dropped. Stored as E.164
    /// (`+14155550123`). Unique among users.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 9,
            pattern = r"^(\+|00)[-. ()\u00a0]*[1-9]([-. ()\u00a0]*[0-9]){7,14}[-. ()\u00a0]*$",
            examples(
                "+14155550123",
                "+44 20 7946 0958",
                "0049 30 1234 5678",
                "+1 (415) 555-0199"
            )
        )
    )]
    pub sngine_phone: String,
    /// Defaults to `voter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub user_type: Option<UserType>,
    /// Defaults to `free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub subscription_status: Option<SubscriptionStatus>,
    #[serde(flatten)]
    pub profile: ProfileUpdate,
}

/// `PUT /api/users/:id/profile`: only the fields present change (at least one); `null` clears a
/// field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileUpdate {
    /// 1 to 100 characters after trimming, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
            examples("Ada", "Jean-Luc", "María José")
        )
    )]
    pub first_name: Option<String>,
    /// 1 to 100 characters after trimming, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
            examples("Lovelace", "O'Brien", "van der Berg")
        )
    )]
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`, from 1900-01-01 up to today (not in the future). `age` is derived from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = Date,
            pattern = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
            examples("1990-01-31", "2000-02-29", "1900-01-01")
        )
    )]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    /// An ISO 3166-1 alpha-2 country code (any letter case; stored upper-case). Codes outside
    /// ISO 3166-1 are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = listed::country))]
    pub country: Option<String>,
    /// 1 to 100 characters after trimming, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
            examples("Berlin", "São Paulo", "New York")
        )
    )]
    pub city: Option<String>,
    /// An IANA time zone name, exact case (`Europe/Berlin`, `UTC`); names outside the tz
    /// database are refused. Cannot be null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = listed::time_zone))]
    pub timezone: Option<String>,
    /// At most 2,000 characters; line breaks and tabs allowed, other control characters not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2000,
            pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
            examples("Votes in every election.", "Line one\nLine two", "")
        )
    )]
    pub bio: Option<String>,
    /// An `http` or `https` URL with a host, at most 2,048 characters, no spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            format = "uri",
            max_length = 2048,
            pattern = r"^https?://[^\s\u0000-\u001f\u007f-\u009f/?#][^\s\u0000-\u001f\u007f-\u009f]*$",
            examples(
                "https://cdn.example.com/avatars/ada.png",
                "http://example.org/a?size=64"
            )
        )
    )]
    pub avatar_url: Option<String>,
    /// A language tag: 2 or 3 letters, then `-` parts of 2 to 8 letters or digits, at most 10
    /// characters. Cannot be null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            nullable = false,
            min_length = 2,
            max_length = 10,
            pattern = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
            examples("en", "pt-BR", "zh-Hant")
        )
    )]
    pub language: Option<String>,
    /// Cannot be null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub notifications_enabled: Option<bool>,
}

/// `PUT /api/users/:id/status`. Which moves are allowed depends on the current status and on
/// who asks; nothing returns to `pending`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusUpdate {
    pub status: AccountStatus,
}

/// `PUT /api/users/:id/role`: only the fields present change (at least one);
/// `"admin_role": null` revokes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleUpdate {
    /// Cannot be null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub user_type: Option<UserType>,
    /// `null` revokes the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<Option<AdminRole>>,
    /// Cannot be null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub subscription_status: Option<SubscriptionStatus>,
    /// 1 to 20 letters, digits, `_` or `-`; `null` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 20,
            pattern = r"^[A-Za-z0-9_-]{1,20}$",
            examples("pro", "team-2027", "annual_plus")
        )
    )]
    pub subscription_plan: Option<Option<String>>,
    /// An RFC 3339 date-time; `null` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(examples("2027-01-31T00:00:00Z", "2030-06-30T12:00:00+02:00"))
    )]
    pub subscription_expires_at: Option<Option<DateTime<Utc>>>,
}

/// `GET /api/users` query: paging, and filters on indexed columns only. Unknown or repeated
/// parameters are refused with 422.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct UserListQuery {
    /// Page number, from 1 (default 1). A page may start at most 10,000 rows into the list;
    /// deeper, walk with `after`. Not combined with `after` or `before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// Rows per page, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<u32>,
    /// The rows after this place: a `next_cursor` of the same filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The rows before this place: a `prev_cursor` of the same filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// `pending`, `verified`, `active` or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `voter`, `individual_creator` or `organization_creator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// `manager`, `admin`, `moderator`, `auditor`, `editor`, `advertiser` or `analyst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_role: Option<String>,
    /// `free` or `subscribed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_status: Option<String>,
    /// ISO 3166-1 alpha-2 country code, such as `DE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Exact email match (through the blind index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A bare page query (`GET /api/users/:id/audit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct PageQuery {
    /// Page number, from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// Rows per page, 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<u32>,
}

/// The outcome of checking a record's signature on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureCheck {
    pub valid: bool,
    /// The signing key version, when the record carries a signature.
    pub key_version: Option<u32>,
    pub algorithm: String,
}

/// A user as user-svc returns it: PII decrypted (or masked for low ranks), `age` derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i32,
    pub sngine_email: Option<String>,
    pub sngine_phone: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub phone_verified_at: Option<DateTime<Utc>>,
    pub biometric_registered_at: Option<DateTime<Utc>>,
    pub status: String,
    pub last_login: Option<DateTime<Utc>>,
    pub user_type: String,
    pub admin_role: Option<String>,
    pub subscription_status: String,
    pub subscription_plan: Option<String>,
    pub subscription_expires_at: Option<DateTime<Utc>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    /// Whole years, derived from `date_of_birth`; never stored.
    pub age: Option<i32>,
    pub gender: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub timezone: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub language: Option<String>,
    pub notifications_enabled: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The row version; also the `ETag`.
    pub version: i64,
    pub signature: SignatureCheck,
    /// Email and phone are masked for this caller's rank.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub contacts_masked: bool,
    /// The user was erased: their PII key is destroyed, so `sngine_email`, `sngine_phone`,
    /// `first_name`, `last_name`, `date_of_birth` and `age` are null for good. Seen only while
    /// an interrupted erasure has not yet deleted the row, or on a restored backup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
    /// Fields whose stored value could not be read back (a ciphertext that belongs to another
    /// record or column); they are returned as `null`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity_errors: Vec<FieldError>,
}

/// `GET /api/users`: a page of users in id order, the total of the list, and the cursors of
/// the pages beside it (also in the `Link` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPage {
    pub data: Vec<UserView>,
    /// The page number asked for; `null` when the page was asked by cursor.
    pub page: Option<u32>,
    pub limit: u32,
    /// How many users match the filters: exact or estimated, as `total_kind` says.
    pub total: i64,
    #[serde(default)]
    pub total_kind: TotalKind,
    /// The rows after this page (`after=`); `null` at the end of the list.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// The rows before this page (`before=`); `null` at the start of the list.
    #[serde(default)]
    pub prev_cursor: Option<String>,
}

/// How a list total was obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TotalKind {
    /// Counted: the users matching when the page was read.
    #[default]
    Exact,
    /// More than 10,000 users match; the total is the planner's estimate from the table
    /// statistics (never below 10,001), not a count.
    Estimate,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i32,
    /// The user the action concerns.
    pub user_id: Option<i32>,
    /// Who acted (absent for service callers and for rows written by other services).
    pub actor_id: Option<i32>,
    pub action: String,
    pub details: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub success: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub request_id: Option<String>,
    /// Position in this user's hash chain; absent for rows written by other services.
    pub chain_seq: Option<i64>,
}

/// Where a hash chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainBreak {
    /// The chain position at which the break is detected.
    pub chain_seq: i64,
    /// The audit row there, when it still exists.
    pub audit_id: Option<i32>,
    /// `edited`, `missing` (rows deleted before this position) or `truncated` (rows deleted at the end).
    pub kind: String,
    pub detail: String,
}

/// The result of re-computing a user's audit hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainCheck {
    pub valid: bool,
    /// Chained rows checked.
    pub checked: i64,
    pub broken_at: Option<ChainBreak>,
}

/// `GET /api/users/:id/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
    pub chain: ChainCheck,
}

/// One rank of the admin hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleInfo {
    pub role: String,
    /// 7 for manager down to 1 for analyst.
    pub rank: u8,
    pub can: Vec<String>,
}

/// `GET /api/roles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Roles {
    /// Highest first.
    pub hierarchy: Vec<RoleInfo>,
    pub user_types: Vec<String>,
    pub subscription_statuses: Vec<String>,
    pub statuses: Vec<String>,
    pub rules: Vec<String>,
}

/// The schemas of the fields whose values come from a list ([`crate::reference`]): the list is
/// the field's enum, so a client or a fuzzer sends only what user-svc accepts.
#[cfg(feature = "openapi")]
mod listed {
    use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

    use crate::reference::{COUNTRIES, TIME_ZONES};

    fn one_of(values: &[&str]) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(values.iter().copied()))
    }

    /// A country, or `null`.
    pub fn country() -> Schema {
        Schema::OneOf(
            OneOfBuilder::new()
                .item(Schema::Object(one_of(COUNTRIES).build()))
                .item(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::new(Type::Null))
                        .build(),
                ))
                .description(Some(
                    "An ISO 3166-1 alpha-2 country code, stored upper-case (lower case is accepted \
                 too); `null` clears it. Codes outside ISO 3166-1 are refused.",
                ))
                .examples(["US", "DE", "BR", "JP"])
                .build(),
        )
    }

    pub fn time_zone() -> Object {
        one_of(TIME_ZONES)
            .description(Some(
                "An IANA time zone name, exact case (`Europe/Berlin`, `UTC`), from the tz \
                 database's zones and links; others are refused. Cannot be null.",
            ))
            .examples([
                "Europe/Berlin",
                "UTC",
                "America/Argentina/Buenos_Aires",
                "Etc/GMT+10",
            ])
            .build()
    }
}
