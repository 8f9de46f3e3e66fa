//! Where a request starts in the user list: a page number, or a cursor handed out with an
//! earlier page.
//!
//! A cursor names the last (or first) user id of a page and the filters it was read with, as
//! an opaque string. The next page is then the matching users after that id, read by a range
//! scan that costs the same at any depth, and a user created or deleted meanwhile shifts no
//! other row across the page boundary: a walk sees every row that was there from its start to
//! its end exactly once. A cursor read with other filters would walk another list; it is
//! refused rather than followed. Page numbers skip rows one by one, so they are bounded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vottery_common::problem::FieldError;

use super::db::{Filters, Position};
use super::input::ListQuery;
use crate::error::ApiError;

/// The deepest row a page number may start at; deeper pages are walked by cursor.
pub const MAX_PAGE_OFFSET: i64 = 10_000;

/// Which way a cursor points from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    After,
    Before,
}

impl Direction {
    fn tag(self) -> char {
        match self {
            Direction::After => 'a',
            Direction::Before => 'b',
        }
    }

    fn field(self) -> &'static str {
        match self {
            Direction::After => "after",
            Direction::Before => "before",
        }
    }
}

/// A place in one filtered list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListCursor {
    direction: Direction,
    id: i32,
    filters: String,
}

impl ListCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}.{}.{}",
            self.direction.tag(),
            self.id,
            self.filters
        ))
    }

    fn decode(text: &str) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = text.splitn(3, '.');
        let direction = match parts.next()? {
            "a" => Direction::After,
            "b" => Direction::Before,
            _ => return None,
        };
        let id = parts.next()?.parse::<i32>().ok().filter(|id| *id >= 0)?;
        let filters = parts.next()?;
        (filters.len() == FINGERPRINT_HEX && filters.bytes().all(|b| b.is_ascii_hexdigit())).then(
            || Self {
                direction,
                id,
                filters: filters.to_owned(),
            },
        )
    }
}

/// Hex digits of a filter fingerprint kept in a cursor.
const FINGERPRINT_HEX: usize = 16;

/// Names the filter set a cursor belongs to, the same on every instance and release: a prefix
/// of the SHA-256 of its canonical form (an email filter enters as its blind index).
fn fingerprint(filters: &Filters) -> String {
    let canonical = format!(
        "status={:?};user_type={:?};admin_role={:?};subscription_status={:?};country={:?};email={:?}",
        filters.status.map(|value| value.as_str()),
        filters.user_type.map(|value| value.as_str()),
        filters.admin_role.map(|value| value.as_str()),
        filters.subscription_status.map(|value| value.as_str()),
        filters.country,
        filters.email_bidx,
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    hex::encode(&digest.as_ref()[..FINGERPRINT_HEX / 2])
}

/// Where the query starts in the list of `filters`: its cursor or its page, refusing a cursor
/// of another list, a cursor beside a page number or beside another cursor, and a page number
/// that starts deeper than [`MAX_PAGE_OFFSET`].
pub fn position(query: &ListQuery, filters: &Filters) -> Result<Position, ApiError> {
    let mut errors = Vec::new();
    if query.after.is_some() && query.before.is_some() {
        for field in ["after", "before"] {
            errors.push(FieldError::new(
                field,
                "after and before cannot be combined; send one cursor",
            ));
        }
    }
    let cursor = [
        (Direction::After, &query.after),
        (Direction::Before, &query.before),
    ]
    .into_iter()
    .find_map(|(direction, text)| text.as_deref().map(|text| (direction, text)));
    if let Some((direction, _)) = cursor
        && query.page_given
    {
        errors.push(FieldError::new(
            "page",
            format!(
                "cannot be combined with {}: a cursor already says where the page starts",
                direction.field()
            ),
        ));
    }
    let position = match cursor {
        Some((direction, text)) => read_cursor(direction, text, filters, &mut errors),
        None => page_position(query, &mut errors),
    };
    if errors.is_empty() {
        Ok(position)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The position a cursor names, or why it is refused.
fn read_cursor(
    direction: Direction,
    text: &str,
    filters: &Filters,
    errors: &mut Vec<FieldError>,
) -> Position {
    let field = direction.field();
    match ListCursor::decode(text) {
        Some(cursor) if cursor.direction != direction => errors.push(FieldError::new(
            field,
            format!(
                "is a cursor for {}; send it as {}",
                cursor.direction.field(),
                cursor.direction.field()
            ),
        )),
        Some(cursor) if cursor.filters != fingerprint(filters) => errors.push(FieldError::new(
            field,
            "is a cursor of a list with other filters; send the filters it was given with",
        )),
        Some(cursor) => {
            return match direction {
                Direction::After => Position::After(cursor.id),
                Direction::Before => Position::Before(cursor.id),
            };
        }
        None => errors.push(FieldError::new(
            field,
            "must be a next_cursor or prev_cursor of this list",
        )),
    }
    Position::After(0)
}

/// The position of a page number, refused past [`MAX_PAGE_OFFSET`].
fn page_position(query: &ListQuery, errors: &mut Vec<FieldError>) -> Position {
    let offset = i64::from(query.page.saturating_sub(1)) * i64::from(query.limit);
    if offset >= MAX_PAGE_OFFSET {
        let last_page = (MAX_PAGE_OFFSET - 1) / i64::from(query.limit) + 1;
        errors.push(FieldError::new(
            "page",
            format!(
                "starts {offset} rows into the list; page numbers reach {MAX_PAGE_OFFSET} rows \
                 (page {last_page} at limit {}): walk deeper with after=<next_cursor>",
                query.limit
            ),
        ));
    }
    Position::Page(query.page)
}

/// The cursors of the pages beside a page: `(next, prev)`, given the ids on it and whether
/// rows are known to lie past either end.
pub fn neighbours(
    filters: &Filters,
    ids: &[i32],
    more_after: bool,
    more_before: bool,
) -> (Option<String>, Option<String>) {
    let filters = fingerprint(filters);
    let cursor = |direction, id| {
        ListCursor {
            direction,
            id,
            filters: filters.clone(),
        }
        .encode()
    };
    let next = ids
        .last()
        .filter(|_| more_after)
        .map(|id| cursor(Direction::After, *id));
    let prev = ids
        .first()
        .filter(|_| more_before)
        .map(|id| cursor(Direction::Before, *id));
    (next, prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::Status;

    fn query(text: &str) -> ListQuery {
        super::super::input::list_query(text, true).unwrap()
    }

    fn refused(text: &str, filters: &Filters) -> Vec<String> {
        match position(&query(text), filters) {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{text}: not refused: {other:?}"),
        }
    }

    #[test]
    fn a_cursor_reads_back_for_its_own_filters_only() {
        let active = Filters {
            status: Some(Status::Active),
            ..Filters::default()
        };
        let (next, prev) = neighbours(&active, &[7, 9, 12], true, true);
        let (next, prev) = (next.unwrap(), prev.unwrap());
        assert_eq!(
            position(&query(&format!("status=active&after={next}")), &active).unwrap(),
            Position::After(12)
        );
        assert_eq!(
            position(&query(&format!("before={prev}")), &active).unwrap(),
            Position::Before(7)
        );
        assert_eq!(
            refused(&format!("after={next}"), &Filters::default()),
            ["after"]
        );
        assert_eq!(refused(&format!("before={next}"), &active), ["before"]);
    }

    #[test]
    fn conflicting_and_malformed_positions_are_named() {
        let none = Filters::default();
        let (next, prev) = neighbours(&none, &[1, 2], true, true);
        let (next, prev) = (next.unwrap(), prev.unwrap());
        assert_eq!(
            refused(&format!("after={next}&before={prev}"), &none),
            ["after", "before"]
        );
        assert_eq!(refused(&format!("page=2&after={next}"), &none), ["page"]);
        for bad in [
            "",
            "x",
            "YS4xLjA",
            &URL_SAFE_NO_PAD.encode("a.-1.0011223344556677"),
        ] {
            assert_eq!(
                refused(&format!("after={bad}"), &none),
                ["after"],
                "{bad:?}"
            );
        }
        assert_eq!(refused("page=501&limit=20", &none), ["page"]);
        assert_eq!(
            position(&query("page=500&limit=20"), &none).unwrap(),
            Position::Page(500)
        );
    }

    #[test]
    fn the_ends_of_a_list_have_no_cursor_past_them() {
        let none = Filters::default();
        assert_eq!(neighbours(&none, &[], true, true), (None, None));
        let (next, prev) = neighbours(&none, &[3], false, false);
        assert_eq!((next, prev), (None, None));
    }
}
