//! The use cases behind the user routes, one module each ([`super::create`], [`super::read`],
//! [`super::update`], [`super::delete`], [`super::sessions`], [`super::end_sessions`],
//! [`super::export`], [`super::feed`]). Each one loads the actor and the target fresh from the database (a
//! demotion or suspension applies to the very next request), checks the rules, makes its
//! security-svc calls in batches, and writes the change and its audit record in one
//! transaction. Refused attempts are audited by the caller of these functions.

pub use super::context::Ctx;
pub use super::create::{bootstrap_manager, create};
pub use super::delete::delete;
pub use super::end_sessions::{end_session, end_sessions};
pub use super::erase::{AUDIT_ACTION as ERASE_ACTION, erase};
pub use super::export::export;
pub use super::feed::events;
pub use super::read::{audit_trail, get, list};
pub use super::sessions::{devices, sessions};
pub use super::update::{update_profile, update_role, update_status};
