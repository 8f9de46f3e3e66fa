//! Users: reading, creating and changing them, with their PII encrypted, their records signed
//! and every change audited; their devices and sessions, read and ended; everything held about
//! them, exported.

pub mod actor;
pub mod backfill;
pub mod batches;
mod context;
mod create;
pub mod db;
mod delete;
mod end_sessions;
mod erase;
mod events;
pub mod export;
pub mod export_body;
mod feed;
pub mod input;
mod list_cursor;
pub mod pii;
mod read;
pub mod rewrap;
pub mod service;
mod sessions;
pub mod totals;
mod update;
pub mod view;
mod write;
