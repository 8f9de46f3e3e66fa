//! Users: reading, creating and changing them, with their PII encrypted, their records signed
//! and every change audited.

pub mod actor;
pub mod backfill;
pub mod db;
pub mod input;
pub mod rewrap;
pub mod service;
pub mod totals;
pub mod view;
