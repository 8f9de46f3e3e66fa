//! The path segments of the transit routes as the OpenAPI document states them: each one the
//! set of values the handler accepts, so a generated client or a fuzzer sends what is served.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::SchemaType};
use utoipa::{PartialSchema, ToSchema};

use crate::keys::hash::HashAlgorithm;

use super::misc::MAX_RANDOM_BYTES;

fn one_of_names(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .description(Some(description))
        .into()
}

/// Declares a path segment's schema: `segment!(Type, "description", schema expression)`.
macro_rules! segment {
    ($name:ident, $doc:literal, $schema:expr) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

segment!(
    KeyName,
    "A key ring's name: letters, digits, `_`, `-` and `.`, starting and ending with a letter or digit.",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\w([\w.-]*\w)?$"))
        .min_length(Some(1))
        .max_length(Some(128))
        .description(Some("A key ring's name"))
        .into()
);

segment!(
    DigestName,
    "A digest algorithm: hash and HMAC routes.",
    one_of_names(
        "The digest algorithm; overrides the body's",
        HashAlgorithm::ALL
            .into_iter()
            .filter(|algorithm| *algorithm != HashAlgorithm::None)
            .map(HashAlgorithm::as_str),
    )
);

segment!(
    SignatureHashName,
    "The hash of a signature; `none` signs prehashed input (RSA PKCS#1 v1.5 only).",
    one_of_names(
        "The hash algorithm; overrides the body's `hash_algorithm`",
        HashAlgorithm::ALL.into_iter().map(HashAlgorithm::as_str),
    )
);

segment!(
    EntropySource,
    "Where random bytes come from; every source is the platform's here.",
    one_of_names("The entropy source", ["platform", "seal", "all"])
);

segment!(
    ByteCount,
    "How many random bytes.",
    ObjectBuilder::new()
        .schema_type(SchemaType::from(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(MAX_RANDOM_BYTES))
        .description(Some(
            "The number of bytes; in the one-segment form an entropy source is accepted instead"
        ))
        .into()
);

segment!(
    ExportKind,
    "What to export: only public keys leave this service.",
    one_of_names(
        "`public-key`; `encryption-key`, `signing-key` and `hmac-key` are refused",
        ["public-key"],
    )
);

segment!(
    KeyVersion,
    "A key version: its number, `v<N>`, or `latest`.",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^(latest|v?[0-9]{1,9})$"))
        .description(Some("A version number, `v<N>` or `latest`"))
        .into()
);

segment!(
    DataKeyKind,
    "Whether a data key is also answered in the clear.",
    one_of_names(
        "`plaintext` answers the key in the clear too, `wrapped` only wrapped",
        ["plaintext", "wrapped"],
    )
);
