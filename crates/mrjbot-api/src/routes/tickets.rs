//! Support tickets: customers open and follow their own, staff read and answer all of
//! them. Every rule (ownership, limits, statuses, who is told) lives in the service.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Page, list_query};
use axum::extract::State;
use axum::http::StatusCode;
use mrjbot_app::App;
use mrjbot_app::support::tickets::{
    NewTicket, NewTicketMessage, TicketMessageView, TicketQuery, TicketStatus, TicketThread,
    TicketView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

list_query!(TicketListQuery {
    /// Only this customer's (staff).
    user_id: Option<i64>,
    status: Option<TicketStatus>,
});

pub(crate) fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, open_ticket))
        .routes(routes!(get_ticket))
        .routes(routes!(post_message))
        .routes(routes!(close_ticket))
}

/// Lists tickets: one's own, or anyone's with `tickets.read`.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "support", params(TicketListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of tickets", body = Page<TicketView>)))]
async fn list_tickets(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<TicketListQuery>,
) -> ApiResult<axum::Json<Page<TicketView>>> {
    let p = q.list_params();
    let query = TicketQuery {
        user_id: q.user_id,
        status: q.status,
    };
    Ok(axum::Json(Page::new(
        app.list_tickets(&a, query, p.clone()).await?,
        &p,
    )))
}

/// Opens a ticket for the caller (at most 3 open at a time); staff are told.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "support", request_body = NewTicket, security(("bearer" = [])),
    responses((status = 201, description = "Opened", body = TicketThread)))]
async fn open_ticket(
    State(app): State<App>,
    Auth(a): Auth,
    Json(t): Json<NewTicket>,
) -> ApiResult<(StatusCode, axum::Json<TicketThread>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.open_ticket(&a, t).await?),
    ))
}

/// One ticket with its messages, oldest first.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "support", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The ticket", body = TicketThread)))]
async fn get_ticket(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<TicketThread>> {
    Ok(axum::Json(app.get_ticket(&a, id).await?))
}

/// Writes in a ticket: its owner (the ticket opens again; staff are told) or staff with
/// `tickets.write` (it becomes answered; the customer is told).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "support", params(("id" = i64, Path)),
    request_body = NewTicketMessage, security(("bearer" = [])),
    responses((status = 201, description = "Written", body = TicketMessageView)))]
async fn post_message(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(m): Json<NewTicketMessage>,
) -> ApiResult<(StatusCode, axum::Json<TicketMessageView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.post_ticket_message(&a, id, m).await?),
    ))
}

/// Closes a ticket: its owner, or staff with `tickets.write`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "support", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Closed", body = TicketView)))]
async fn close_ticket(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<TicketView>> {
    Ok(axum::Json(app.close_ticket(&a, id).await?))
}
