//! Small shared pieces of the services.

use crate::error::{AppError, AppResult};
use mrjbot_db::{Order, Page};

/// Pagination and sorting as a front door received them, checked against a whitelist.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Rows per page (default 50, 1..=500).
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
    /// Column to sort by.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
}

impl ListParams {
    /// Resolves to a page, accepting only `allowed` sort columns.
    pub fn page(&self, allowed: &[&'static str], default_sort: &'static str) -> AppResult<Page> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(AppError::field("limit", "must be between 1 and 500"));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=10_000_000).contains(&offset) {
            return Err(AppError::field("offset", "must be between 0 and 10000000"));
        }
        let sort = match self.sort.as_deref() {
            None => default_sort,
            Some(s) => allowed.iter().find(|a| **a == s).copied().ok_or_else(|| {
                AppError::field("sort", format!("must be one of: {}", allowed.join(", ")))
            })?,
        };
        let order = match self.order.as_deref() {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(_) => return Err(AppError::field("order", "must be asc or desc")),
        };
        Ok(Page {
            limit,
            offset,
            sort,
            order,
        })
    }
}

/// Trims a string and turns an empty one into `None`.
pub fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Checks a free-text field's length.
pub fn max_len(field: &str, s: &str, max: usize) -> AppResult<()> {
    if s.chars().count() > max {
        return Err(AppError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}
