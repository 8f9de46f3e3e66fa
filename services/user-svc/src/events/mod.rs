//! User events after they are built: the outbox they are written to with their change, the
//! pull feed that serves them from it in commit order, and the relay to NATS JetStream.

pub mod feed;
pub mod metrics;
pub mod outbox;
pub mod relay;
