//! The event of a change to a user, built from the change's audit record so that both name the
//! same actor, request and fields. Field names only, never their values.

use chrono::Utc;
use ring::rand::{SecureRandom, SystemRandom};
use vottery_common::events::{
    DATA_CONTENT_TYPE, EventActor, SOURCE, SPEC_VERSION, Transition, UserEvent, UserEventData,
    UserEventType,
};

use super::context::Ctx;
use crate::audit::AuditEvent;

/// What an event says beyond its audit record.
#[derive(Debug, Clone, Default)]
pub(super) struct Outcome {
    pub version: Option<i64>,
    pub transition: Option<Transition>,
    pub sessions_ended: Option<i64>,
}

/// Adds the event of `kind` to the change `audit` records, unless this deployment records no
/// events (`events.recorded = false`).
pub(super) fn publish(
    ctx: &Ctx<'_>,
    audit: &mut AuditEvent<'_>,
    kind: UserEventType,
    outcome: Outcome,
) {
    if !ctx.state.events_recorded {
        return;
    }
    let event = build(audit, kind, outcome);
    audit.events.push(event);
}

/// The event of `kind` about the user `audit` concerns.
fn build(audit: &AuditEvent<'_>, kind: UserEventType, outcome: Outcome) -> UserEvent {
    let user_id = audit.user_id.unwrap_or_default();
    UserEvent {
        specversion: SPEC_VERSION.into(),
        id: new_id().to_string(),
        source: SOURCE.into(),
        event_type: kind.type_name(),
        subject: user_id.to_string(),
        time: Utc::now(),
        datacontenttype: DATA_CONTENT_TYPE.into(),
        data: UserEventData {
            user_id,
            actor: EventActor {
                id: audit.actor_id,
                label: audit.actor_label.to_owned(),
            },
            request_id: audit.request.request_id.clone(),
            changed_fields: audit.changed_fields.clone(),
            transition: outcome.transition,
            version: outcome.version,
            sessions_ended: outcome.sessions_ended,
        },
    }
}

/// A UUIDv7: the time in milliseconds, then random bits.
fn new_id() -> uuid::Uuid {
    let mut random = [0u8; 10];
    let _ = SystemRandom::new().fill(&mut random);
    let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// A transition between two stored values.
pub(super) fn transition(from: Option<&str>, to: Option<&str>) -> Option<Transition> {
    Some(Transition {
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase_with_time() {
        let first = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_id();
        assert_eq!(first.get_version_num(), 7);
        assert!(first < second);
    }
}
