//! The user domain: validated values (parse, don't validate), roles and the account lifecycle.
//! Nothing here touches the database or the network.

pub mod contact;
pub mod profile;
pub mod roles;
pub mod status;
