//! Routers per resource. Handlers only extract, call one service method, and map the
//! result; every rule lives in `mrjbot-app`.

pub mod audit;
pub mod auth;
pub mod broadcasts;
pub mod nodes;
pub mod payments;
pub mod plans;
pub mod roles;
pub mod settings;
pub mod subscriptions;
pub mod tickets;
pub mod users;

use serde::{Deserialize, Serialize};

/// Every resource router except auth (which gets the login rate limiter).
pub(crate) fn resources() -> utoipa_axum::router::OpenApiRouter<mrjbot_app::App> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(users::router())
        .merge(roles::router())
        .merge(plans::router())
        .merge(nodes::router())
        .merge(subscriptions::router())
        .merge(audit::router())
        .merge(settings::router())
        .merge(payments::router())
        .merge(tickets::router())
        .merge(broadcasts::router())
}

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching the filters, over all pages.
    pub total: i64,
    /// Page size used.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

impl<T> Page<T> {
    /// Wraps a service result.
    pub fn new((items, total): (Vec<T>, i64), p: &mrjbot_app::ListParams) -> Self {
        Self {
            items,
            total,
            limit: p.limit.unwrap_or(50),
            offset: p.offset.unwrap_or(0),
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Declares a list query with the shared pagination fields plus the resource's filters.
macro_rules! list_query {
    ($name:ident { $($(#[$m:meta])* $f:ident : $t:ty),* $(,)? }) => {
        #[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Rows per page (1-500, default 50).
            #[param(minimum = 1, maximum = 500)]
            pub limit: Option<i64>,
            /// Rows to skip (default 0).
            #[param(minimum = 0, maximum = 10000000)]
            pub offset: Option<i64>,
            /// Column to sort by.
            pub sort: Option<String>,
            /// Sort direction.
            pub order: Option<$crate::routes::SortOrder>,
            $($(#[$m])* pub $f: $t,)*
        }

        impl $name {
            /// The pagination part.
            pub fn list_params(&self) -> mrjbot_app::ListParams {
                mrjbot_app::ListParams {
                    limit: self.limit,
                    offset: self.offset,
                    sort: self.sort.clone(),
                    order: self.order.map(|o| match o {
                        $crate::routes::SortOrder::Asc => "asc".to_owned(),
                        $crate::routes::SortOrder::Desc => "desc".to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use list_query;

/// An empty success body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

impl Done {
    /// `{"ok": true}`.
    pub fn json() -> axum::Json<Done> {
        axum::Json(Done { ok: true })
    }
}
