//! Paging of list endpoints: `?limit=` (default 50, at most 200) and an opaque `?cursor=` taken
//! from the previous page's `X-Next-Cursor` header. Every list's first page holds its newest
//! items; the cursor leads to older ones.

use serde::Deserialize;

use super::ValidationError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most items per page.
pub const MAX_LIMIT: i64 = 200;

/// The paging part of a list query, as sent.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Items per page.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Where the page starts, from `X-Next-Cursor`.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// Items per page, 1..=[`MAX_LIMIT`].
    pub limit: i64,
    /// Start after this position; `None` for the first page.
    pub after: Option<C>,
}

impl PageQuery {
    /// Checks the limit and parses the cursor with `parse_cursor`.
    pub fn parse<C>(
        &self,
        parse_cursor: impl Fn(&str) -> Option<C>,
    ) -> Result<PageRequest<C>, ValidationError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ValidationError(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let after = match self.cursor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(
                parse_cursor(raw)
                    .ok_or_else(|| ValidationError("cursor is not one this API issued".into()))?,
            ),
        };
        Ok(PageRequest { limit, after })
    }
}

/// One page of items and the cursor of the next one, if there is more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// `X-Next-Cursor` for the following page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// From `limit + 1` fetched rows: the extra one only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self { items: rows, next }
    }
}

/// A cursor that is an id (tasks, messages).
pub fn id_cursor(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<i64>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            cursor: cursor.map(str::to_string),
        }
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(
            q(None, None).parse(id_cursor).unwrap(),
            PageRequest {
                limit: DEFAULT_LIMIT,
                after: None
            }
        );
        assert_eq!(
            q(Some(200), Some("17")).parse(id_cursor).unwrap().after,
            Some(17)
        );
        for bad in [
            q(Some(0), None),
            q(Some(201), None),
            q(None, Some("x")),
            q(None, Some("-1")),
        ] {
            assert!(bad.parse(id_cursor).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_next_cursor_only_when_there_is_more() {
        let page = Page::from_rows(vec![5, 4, 3], 2, |n| n.to_string());
        assert_eq!((page.items, page.next.as_deref()), (vec![5, 4], Some("4")));
        let last = Page::from_rows(vec![2, 1], 2, |n| n.to_string());
        assert_eq!((last.items, last.next), (vec![2, 1], None));
    }
}
