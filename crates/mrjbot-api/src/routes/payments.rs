//! The money API: orders, payments (pay, approve, reject, refund, receipts), wallets,
//! destination cards, discount codes, the financial report, payment settings, and the
//! gateways' callbacks under `/api/v1/payments/callbacks/{gateway}` (no sign-in: each is
//! authenticated by its gateway's own rules in the service layer).

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::routes::{Done, Page, list_query};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mrjbot_app::App;
use mrjbot_app::money::card::{CardInput, CardView, ReceiptUpload, ReceiptView};
use mrjbot_app::money::discounts::{DiscountInput, DiscountView};
use mrjbot_app::money::gateways::CallbackOutcome;
use mrjbot_app::money::report::{By, Group, ReportQuery, RevenueReport};
use mrjbot_app::money::{
    NewOrder, OrderQuery, OrderView, PayRequest, PaymentQuery, PaymentSettings, PaymentView,
    RefundRequest, RejectRequest, WalletAdjust, WalletView,
};
use mrjbot_domain::{OrderKind, OrderStatus, PaymentMethod, PaymentStatus, Timestamp};
use std::net::SocketAddr;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest receipt picture accepted.
const RECEIPT_LIMIT: usize = 10 * 1024 * 1024;

list_query!(OrderListQuery {
    /// Only this customer's (staff).
    user_id: Option<i64>,
    status: Option<OrderStatus>,
    kind: Option<OrderKind>,
});

list_query!(PaymentListQuery {
    /// Only this customer's (staff).
    user_id: Option<i64>,
    order_id: Option<i64>,
    status: Option<PaymentStatus>,
    method: Option<PaymentMethod>,
    card_id: Option<i64>,
    /// Only card payments with a receipt waiting for a decision.
    awaiting_review: Option<bool>,
});

list_query!(DiscountListQuery {
    /// Substring of the code.
    q: Option<String>,
});

list_query!(WalletQuery {});

/// Report parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Start (inclusive, RFC 3339); default 30 days before `to`.
    pub from: Option<Timestamp>,
    /// End (exclusive); default now.
    pub to: Option<Timestamp>,
    /// `day`, `week` or `month`.
    pub group: Option<Group>,
    /// `method`, `card` or `plan`.
    pub by: Option<By>,
    /// UTC offset in minutes for day boundaries.
    pub utc_offset_minutes: Option<i32>,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
}

/// Report output format.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Csv,
}

/// The methods a customer can choose now.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Methods {
    pub methods: Vec<PaymentMethod>,
}

pub(crate) fn router() -> OpenApiRouter<App> {
    let receipts = OpenApiRouter::new()
        .routes(routes!(upload_receipt, list_receipts))
        .layer(DefaultBodyLimit::max(RECEIPT_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(list_orders, create_order))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
        .routes(routes!(pay_order))
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(approve_payment))
        .routes(routes!(reject_payment))
        .routes(routes!(refund_payment))
        .routes(routes!(receipt_image))
        .routes(routes!(methods))
        .routes(routes!(get_wallet))
        .routes(routes!(adjust_wallet))
        .routes(routes!(list_cards, create_card))
        .routes(routes!(get_card, update_card, delete_card))
        .routes(routes!(list_discounts, create_discount))
        .routes(routes!(get_discount, update_discount, delete_discount))
        .routes(routes!(revenue))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(zarinpal_callback))
        .routes(routes!(yookassa_webhook))
        .routes(routes!(cryptopay_webhook))
        .merge(receipts)
}

/// Lists orders: one's own, or anyone's with `payments.read`.
#[utoipa::path(get, path = "/api/v1/orders", tag = "payments", params(OrderListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of orders", body = Page<OrderView>)))]
async fn list_orders(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<OrderListQuery>,
) -> ApiResult<axum::Json<Page<OrderView>>> {
    let p = q.list_params();
    let query = OrderQuery {
        user_id: q.user_id,
        status: q.status,
        kind: q.kind,
    };
    Ok(axum::Json(Page::new(
        app.list_orders(&a, query, p.clone()).await?,
        &p,
    )))
}

/// Places an order (priced from the plan, discount applied). The same
/// `idempotency_key` returns the first order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "payments", request_body = NewOrder, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = OrderView)))]
async fn create_order(
    State(app): State<App>,
    Auth(a): Auth,
    Json(o): Json<NewOrder>,
) -> ApiResult<(StatusCode, axum::Json<OrderView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_order(&a, o).await?),
    ))
}

/// One order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The order", body = OrderView)))]
async fn get_order(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(app.get_order(&a, id).await?))
}

/// Cancels an unpaid order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = OrderView)))]
async fn cancel_order(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<OrderView>> {
    Ok(axum::Json(app.cancel_order(&a, id).await?))
}

/// Starts paying an order: card details to transfer to, a gateway page, a Stars invoice
/// link, or an immediate wallet payment.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "payments", params(("id" = i64, Path)), request_body = PayRequest,
    security(("bearer" = [])), responses((status = 201, description = "The payment attempt", body = PaymentView)))]
async fn pay_order(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(r): Json<PayRequest>,
) -> ApiResult<(StatusCode, axum::Json<PaymentView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.pay_order(&a, id, r).await?),
    ))
}

/// Lists payments: one's own, or anyone's with `payments.read`.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(PaymentListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of payments", body = Page<PaymentView>)))]
async fn list_payments(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<PaymentListQuery>,
) -> ApiResult<axum::Json<Page<PaymentView>>> {
    let p = q.list_params();
    let query = PaymentQuery {
        user_id: q.user_id,
        order_id: q.order_id,
        status: q.status,
        method: q.method,
        card_id: q.card_id,
        awaiting_review: q.awaiting_review,
    };
    Ok(axum::Json(Page::new(
        app.list_payments(&a, query, p.clone()).await?,
        &p,
    )))
}

/// One payment.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The payment", body = PaymentView)))]
async fn get_payment(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(app.get_payment(&a, id).await?))
}

/// Approves a card payment (needs `payments.approve`); once, however many admins tap.
#[utoipa::path(post, path = "/api/v1/payments/{id}/approve", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Approved", body = PaymentView)))]
async fn approve_payment(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(app.approve_payment(&a, id).await?))
}

/// Rejects an open payment with a reason the customer sees (needs `payments.approve`).
#[utoipa::path(post, path = "/api/v1/payments/{id}/reject", tag = "payments", params(("id" = i64, Path)), request_body = RejectRequest,
    security(("bearer" = [])), responses((status = 200, description = "Rejected", body = PaymentView)))]
async fn reject_payment(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(r): Json<RejectRequest>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(app.reject_payment(&a, id, r).await?))
}

/// Refunds a received payment through the gateway or to the wallet (needs `payments.approve`).
#[utoipa::path(post, path = "/api/v1/payments/{id}/refund", tag = "payments", params(("id" = i64, Path)), request_body = RefundRequest,
    security(("bearer" = [])), responses((status = 200, description = "Refunded", body = PaymentView)))]
async fn refund_payment(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(r): Json<RefundRequest>,
) -> ApiResult<axum::Json<PaymentView>> {
    Ok(axum::Json(app.refund_payment(&a, id, r).await?))
}

/// Sends a receipt picture (JPEG, PNG or WebP body, up to 10 MB) for a card payment.
#[utoipa::path(post, path = "/api/v1/payments/{id}/receipts", tag = "payments", params(("id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The picture"),
    security(("bearer" = [])), responses((status = 201, description = "Stored and queued for checks", body = ReceiptView)))]
async fn upload_receipt(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<ReceiptView>)> {
    let upload = ReceiptUpload {
        bytes: body.to_vec(),
        telegram_file_id: None,
        telegram_file_unique_id: None,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(app.submit_receipt(&a, id, upload).await?),
    ))
}

/// Receipts of a payment with their checks.
#[utoipa::path(get, path = "/api/v1/payments/{id}/receipts", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The receipts", body = Vec<ReceiptView>)))]
async fn list_receipts(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<ReceiptView>>> {
    Ok(axum::Json(app.list_receipts(&a, id).await?))
}

/// The picture of a receipt (needs `payments.read`).
#[utoipa::path(get, path = "/api/v1/receipts/{id}/image", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The picture", content(
        (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/webp"), (Vec<u8> = "application/octet-stream")))))]
async fn receipt_image(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let (ct, bytes) = app.receipt_image(&a, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "private, max-age=3600".into()),
        ],
        bytes,
    )
        .into_response())
}

/// The payment methods this shop takes now.
#[utoipa::path(get, path = "/api/v1/payments/methods", tag = "payments", security(("bearer" = [])),
    responses((status = 200, description = "Enabled methods", body = Methods)))]
async fn methods(State(app): State<App>, Auth(_a): Auth) -> ApiResult<axum::Json<Methods>> {
    Ok(axum::Json(Methods {
        methods: app.enabled_methods().await?,
    }))
}

/// A customer's wallet: balances and ledger.
#[utoipa::path(get, path = "/api/v1/users/{id}/wallet", tag = "payments", params(("id" = i64, Path), WalletQuery), security(("bearer" = [])),
    responses((status = 200, description = "The wallet", body = WalletView)))]
async fn get_wallet(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Query(q): Query<WalletQuery>,
) -> ApiResult<axum::Json<WalletView>> {
    Ok(axum::Json(app.wallet(&a, id, q.list_params()).await?))
}

/// Credits or debits a wallet (needs `payments.approve`).
#[utoipa::path(post, path = "/api/v1/users/{id}/wallet/adjust", tag = "payments", params(("id" = i64, Path)), request_body = WalletAdjust,
    security(("bearer" = [])), responses((status = 200, description = "The wallet", body = WalletView)))]
async fn adjust_wallet(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(w): Json<WalletAdjust>,
) -> ApiResult<axum::Json<WalletView>> {
    Ok(axum::Json(app.adjust_wallet(&a, id, w).await?))
}

/// Destination cards with today's and this month's totals (needs `payments.read`).
#[utoipa::path(get, path = "/api/v1/cards", tag = "payments", security(("bearer" = [])),
    responses((status = 200, description = "The cards", body = Vec<CardView>)))]
async fn list_cards(State(app): State<App>, Auth(a): Auth) -> ApiResult<axum::Json<Vec<CardView>>> {
    Ok(axum::Json(app.list_cards(&a).await?))
}

/// Adds a destination card (needs `settings.write`).
#[utoipa::path(post, path = "/api/v1/cards", tag = "payments", request_body = CardInput, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = CardView)))]
async fn create_card(
    State(app): State<App>,
    Auth(a): Auth,
    Json(c): Json<CardInput>,
) -> ApiResult<(StatusCode, axum::Json<CardView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_card(&a, c).await?),
    ))
}

/// One card.
#[utoipa::path(get, path = "/api/v1/cards/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The card", body = CardView)))]
async fn get_card(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<CardView>> {
    Ok(axum::Json(app.get_card(&a, id).await?))
}

/// Replaces a card's details (needs `settings.write`).
#[utoipa::path(put, path = "/api/v1/cards/{id}", tag = "payments", params(("id" = i64, Path)), request_body = CardInput,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = CardView)))]
async fn update_card(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(c): Json<CardInput>,
) -> ApiResult<axum::Json<CardView>> {
    Ok(axum::Json(app.update_card(&a, id, c).await?))
}

/// Deletes a card no payment used (needs `settings.write`).
#[utoipa::path(delete, path = "/api/v1/cards/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete_card(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_card(&a, id).await?;
    Ok(Done::json())
}

/// Lists discount codes (needs `payments.read`).
#[utoipa::path(get, path = "/api/v1/discount-codes", tag = "payments", params(DiscountListQuery), security(("bearer" = [])),
    responses((status = 200, description = "A page of codes", body = Page<DiscountView>)))]
async fn list_discounts(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<DiscountListQuery>,
) -> ApiResult<axum::Json<Page<DiscountView>>> {
    let p = q.list_params();
    Ok(axum::Json(Page::new(
        app.list_discounts(&a, q.q, p.clone()).await?,
        &p,
    )))
}

/// Creates a discount code (needs `settings.write`).
#[utoipa::path(post, path = "/api/v1/discount-codes", tag = "payments", request_body = DiscountInput, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = DiscountView)))]
async fn create_discount(
    State(app): State<App>,
    Auth(a): Auth,
    Json(d): Json<DiscountInput>,
) -> ApiResult<(StatusCode, axum::Json<DiscountView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_discount(&a, d).await?),
    ))
}

/// One discount code.
#[utoipa::path(get, path = "/api/v1/discount-codes/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The code", body = DiscountView)))]
async fn get_discount(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<DiscountView>> {
    Ok(axum::Json(app.get_discount(&a, id).await?))
}

/// Replaces a discount code's terms (needs `settings.write`).
#[utoipa::path(put, path = "/api/v1/discount-codes/{id}", tag = "payments", params(("id" = i64, Path)), request_body = DiscountInput,
    security(("bearer" = [])), responses((status = 200, description = "Updated", body = DiscountView)))]
async fn update_discount(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
    Json(d): Json<DiscountInput>,
) -> ApiResult<axum::Json<DiscountView>> {
    Ok(axum::Json(app.update_discount(&a, id, d).await?))
}

/// Deletes a discount code no order used (needs `settings.write`).
#[utoipa::path(delete, path = "/api/v1/discount-codes/{id}", tag = "payments", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Done)))]
async fn delete_discount(
    State(app): State<App>,
    Auth(a): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Done>> {
    app.delete_discount(&a, id).await?;
    Ok(Done::json())
}

/// The financial report (needs `reports.read`); `format=csv` for a CSV download.
#[utoipa::path(get, path = "/api/v1/reports/revenue", tag = "payments", params(ReportParams), security(("bearer" = [])),
    responses((status = 200, description = "The report (JSON, or CSV with format=csv)", content(
        (RevenueReport = "application/json"), (String = "text/csv")))))]
async fn revenue(
    State(app): State<App>,
    Auth(a): Auth,
    Query(q): Query<ReportParams>,
) -> ApiResult<Response> {
    let report = app
        .revenue_report(
            &a,
            ReportQuery {
                from: q.from,
                to: q.to,
                group: q.group,
                by: q.by,
                utc_offset_minutes: q.utc_offset_minutes,
            },
        )
        .await?;
    Ok(match q.format {
        Some(ReportFormat::Csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"revenue.csv\"",
                ),
            ],
            report.to_csv(),
        )
            .into_response(),
        _ => axum::Json(report).into_response(),
    })
}

/// Payment rules (needs `settings.read`).
#[utoipa::path(get, path = "/api/v1/settings/payments", tag = "settings", security(("bearer" = [])),
    responses((status = 200, description = "The rules", body = PaymentSettings)))]
async fn get_settings(
    State(app): State<App>,
    Auth(a): Auth,
) -> ApiResult<axum::Json<PaymentSettings>> {
    Ok(axum::Json(app.get_payment_settings(&a).await?))
}

/// Replaces the payment rules (needs `settings.write`).
#[utoipa::path(put, path = "/api/v1/settings/payments", tag = "settings", request_body = PaymentSettings, security(("bearer" = [])),
    responses((status = 200, description = "The stored rules", body = PaymentSettings)))]
async fn put_settings(
    State(app): State<App>,
    Auth(a): Auth,
    Json(s): Json<PaymentSettings>,
) -> ApiResult<axum::Json<PaymentSettings>> {
    Ok(axum::Json(app.put_payment_settings(&a, s).await?))
}

/// Zarinpal sends the payer's browser here (`?Authority=..&Status=OK|NOK`); the payment is
/// verified with Zarinpal before anything changes, and the payer sees the result.
#[utoipa::path(get, path = "/api/v1/payments/callbacks/zarinpal", tag = "callbacks",
    params(("Authority" = Option<String>, Query), ("Status" = Option<String>, Query)),
    responses((status = 200, description = "A result page for the payer", content_type = "text/html", body = String),
              (status = 400, description = "Not a Zarinpal callback", body = crate::error::ErrorBody),
              (status = 404, description = "Unknown payment", body = crate::error::ErrorBody)))]
async fn zarinpal_callback(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let outcome = app.zarinpal_callback(q.as_deref().unwrap_or("")).await?;
    let settings = app.payment_settings().await?;
    let back = settings.return_url.unwrap_or_default();
    let (title, text, status) = match outcome {
        CallbackOutcome::Paid { bank_ref, .. } => (
            "Payment received · پرداخت موفق",
            format!("Your payment is confirmed. Reference: {} · پرداخت شما تأیید شد.", bank_ref.unwrap_or_default()),
            StatusCode::OK,
        ),
        CallbackOutcome::Failed => ("Payment not completed · پرداخت ناموفق", "The payment was cancelled or failed; nothing was charged. · پرداخت انجام نشد.".to_owned(), StatusCode::OK),
        CallbackOutcome::Unknown => ("Checking your payment · در حال بررسی", "We are confirming your payment with the bank; you will get a message shortly. · پرداخت شما در حال بررسی است.".to_owned(), StatusCode::OK),
    };
    let link = if back.is_empty() {
        String::new()
    } else {
        format!("<p><a href=\"{}\">↩</a></p>", html_escape(&back))
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;background:#111;color:#eee;text-align:center;padding:3em\"><h1>{t}</h1><p>{x}</p>{link}</body></html>",
        t = html_escape(title),
        x = html_escape(&text)
    );
    Ok((
        status,
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        )],
        Html(page),
    )
        .into_response())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// YooKassa notifications. Accepted only from YooKassa's addresses; the payment is
/// fetched again from YooKassa before anything changes.
#[utoipa::path(post, path = "/api/v1/payments/callbacks/yookassa", tag = "callbacks",
    request_body(content = String, content_type = "application/json", description = "A YooKassa notification"),
    responses((status = 200, description = "Processed", body = Done),
              (status = 400, description = "Not a notification", body = crate::error::ErrorBody),
              (status = 403, description = "Not from YooKassa", body = crate::error::ErrorBody),
              (status = 404, description = "Unknown payment", body = crate::error::ErrorBody),
              (status = 503, description = "Try again later", body = crate::error::ErrorBody)))]
async fn yookassa_webhook(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> ApiResult<axum::Json<Done>> {
    app.yookassa_webhook(peer.ip(), &body).await?;
    Ok(Done::json())
}

/// Crypto Pay webhooks, signed with `crypto-pay-api-signature` over the raw body.
#[utoipa::path(post, path = "/api/v1/payments/callbacks/cryptopay", tag = "callbacks",
    request_body(content = String, content_type = "application/json", description = "A Crypto Pay update"),
    params(("crypto-pay-api-signature" = Option<String>, Header, description = "HMAC-SHA-256 of the body")),
    responses((status = 200, description = "Processed", body = Done),
              (status = 400, description = "Not an update", body = crate::error::ErrorBody),
              (status = 401, description = "Bad signature", body = crate::error::ErrorBody),
              (status = 503, description = "Try again later", body = crate::error::ErrorBody)))]
async fn cryptopay_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<Done>> {
    let sig = headers
        .get("crypto-pay-api-signature")
        .and_then(|v| v.to_str().ok());
    app.cryptopay_webhook(sig, &body).await?;
    Ok(Done::json())
}
