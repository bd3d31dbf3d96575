//! Card-to-card: the pool of destination cards with rotation and caps, reservations,
//! receipt photos with OCR, duplicate search and a risk verdict, and the staff decision.
//!
//! A receipt is stored (image included) and queued for analysis in one transaction, so
//! it is never lost even if OCR is slow or down. The exact same picture (bytes or
//! Telegram file) is refused at once; a near copy (perceptual hash) or a reused tracking
//! number makes the verdict high risk for the admin. Approval is the guarded transition
//! of the money path, so two admins tapping Approve at once approve once.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::money::outbox::{ANALYZE_RECEIPT, WorkError};
use crate::money::{Confirmed, PaymentView, payment_not_found, transition};
use crate::notify::{Notice, NoticeTarget};
use mrjbot_db::money::{self as repo, Approval, CardRow, OrderRow, ReceiptAnalysis, ReceiptRow};
use mrjbot_db::{plans as plans_repo, subscriptions as subs_repo};
use mrjbot_domain::payment::{CardLoad, ConfirmedBy, ReceiptEvidence, Verdict, assess, pick_card};
use mrjbot_domain::subscription::Start;
use mrjbot_domain::{Currency, ErrorCode, PaymentMethod, Permission, SubscriptionState, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A destination card as staff see it, with what it took today and this month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub id: i64,
    pub number: String,
    pub owner_name: String,
    pub bank: Option<String>,
    pub is_active: bool,
    pub weight: i64,
    pub daily_cap_minor: Option<i64>,
    pub monthly_cap_minor: Option<i64>,
    pub monthly_tx_cap: Option<i64>,
    pub currency: Currency,
    pub sort_order: i64,
    pub disabled_reason: Option<String>,
    pub note: Option<String>,
    pub last_used_at: Option<Timestamp>,
    /// Approved today (seller's day), rials.
    pub today_minor: i64,
    /// Approved this month, rials.
    pub month_minor: i64,
    /// Approved transfers this month.
    pub month_count: i64,
    /// Open reservations and receipts waiting for review: sum and count.
    pub reserved_minor: i64,
    pub reserved_count: i64,
}

/// Input for a new card or a full edit.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    /// 16 to 19 digits (spaces and dashes allowed; Persian digits accepted).
    pub number: String,
    pub owner_name: String,
    pub bank: Option<String>,
    pub is_active: Option<bool>,
    /// Share for weighted rotation (default 1; 0 = never chosen).
    pub weight: Option<i64>,
    pub daily_cap_minor: Option<i64>,
    pub monthly_cap_minor: Option<i64>,
    pub monthly_tx_cap: Option<i64>,
    pub sort_order: Option<i64>,
    pub disabled_reason: Option<String>,
    pub note: Option<String>,
}

/// A receipt as staff see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReceiptView {
    pub id: i64,
    pub payment_id: i64,
    pub image_sha256: String,
    /// Whether the analysis finished.
    pub analyzed: bool,
    pub ocr_amount: Option<i64>,
    pub ocr_amount_unit: Option<String>,
    pub ocr_tracking_no: Option<String>,
    pub ocr_reference_no: Option<String>,
    pub ocr_dest_card_last4: Option<String>,
    pub ocr_src_card_last4: Option<String>,
    pub ocr_date: Option<String>,
    /// What OCR read (for staff to compare with the picture).
    pub ocr_text: Option<String>,
    pub risk_score: Option<i64>,
    pub risk_verdict: Option<Verdict>,
    pub risk_reasons: Vec<String>,
    pub created_at: Timestamp,
}

impl From<ReceiptRow> for ReceiptView {
    fn from(r: ReceiptRow) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment_id,
            image_sha256: r.image_sha256,
            analyzed: r.analyzed_at.is_some(),
            ocr_amount: r.ocr_amount_minor,
            ocr_amount_unit: r.ocr_amount_unit,
            ocr_tracking_no: r.ocr_tracking_no,
            ocr_reference_no: r.ocr_reference_no,
            ocr_dest_card_last4: r.ocr_dest_card_last4,
            ocr_src_card_last4: r.ocr_card_last4,
            ocr_date: r.ocr_date,
            ocr_text: r.ocr_text,
            risk_score: r.risk_score,
            risk_verdict: match r.risk_verdict.as_deref() {
                Some("low") => Some(Verdict::Low),
                Some("medium") => Some(Verdict::Medium),
                Some("high") => Some(Verdict::High),
                _ => None,
            },
            risk_reasons: r
                .risk_reasons
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

/// A receipt picture handed in by the customer (Telegram photo or API upload).
#[derive(Debug, Clone)]
pub struct ReceiptUpload {
    pub bytes: Vec<u8>,
    /// Telegram `file_id` (API uploads: none).
    pub telegram_file_id: Option<String>,
    /// Telegram `file_unique_id`: the same file sent again keeps it.
    pub telegram_file_unique_id: Option<String>,
}

/// Receipts one payment may collect (re-sends after a bad photo), against flooding.
const MAX_RECEIPTS_PER_PAYMENT: usize = 5;

fn card_not_found() -> AppError {
    AppError::not_found(ErrorCode::CardNotFound, "card")
}

/// Digits of a card number (Persian and Arabic-Indic digits accepted), 16-19 long and
/// passing the Luhn check.
fn parse_card_number(s: &str) -> AppResult<String> {
    let mut digits = String::new();
    for ch in s.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            '\u{06F0}'..='\u{06F9}' => digits.push(char::from(b'0' + (ch as u32 - 0x06F0) as u8)),
            '\u{0660}'..='\u{0669}' => digits.push(char::from(b'0' + (ch as u32 - 0x0660) as u8)),
            ' ' | '-' => {}
            _ => return Err(AppError::field("number", "only digits, spaces and dashes")),
        }
    }
    if !(16..=19).contains(&digits.len()) {
        return Err(AppError::field("number", "16 to 19 digits"));
    }
    if !mrjbot_domain::payment::luhn_valid(&digits) {
        return Err(AppError::field(
            "number",
            "not a valid card number (checksum)",
        ));
    }
    Ok(digits)
}

fn check_text(field: &str, v: &Option<String>, max: usize) -> AppResult<()> {
    if let Some(v) = v
        && v.chars().count() > max
    {
        return Err(AppError::field(field, format!("at most {max} characters")));
    }
    Ok(())
}

impl App {
    fn day_and_month_start(&self, offset_minutes: i32) -> (i64, i64) {
        let now = self.now().millis();
        let off = i64::from(offset_minutes) * 60_000;
        let local = now + off;
        let day_start = local - local.rem_euclid(86_400_000) - off;
        // Calendar month in the seller's zone.
        let date = time::OffsetDateTime::from_unix_timestamp(local.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .date();
        let first = date.replace_day(1).unwrap_or(date);
        let month_start = first.midnight().assume_utc().unix_timestamp() * 1000 - off;
        (day_start, month_start)
    }

    /// Every card with its totals (needs `payments.read`).
    pub async fn list_cards(&self, actor: &Actor) -> AppResult<Vec<CardView>> {
        actor.require(Permission::PaymentsRead)?;
        let settings = self.payment_settings().await?;
        let (day, month) = self.day_and_month_start(settings.utc_offset_minutes);
        let mut c = self.db().read().await?;
        let uses = repo::card_use(c.conn(), day, month, self.now().millis()).await?;
        let cards = repo::list_cards(c.conn()).await?;
        Ok(cards
            .into_iter()
            .map(|r| {
                let u = uses.iter().find(|u| u.card_id == r.id);
                card_view(r, u)
            })
            .collect())
    }

    /// One card with its totals.
    pub async fn get_card(&self, actor: &Actor, id: i64) -> AppResult<CardView> {
        self.list_cards(actor)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(card_not_found)
    }

    /// Adds a destination card (needs `settings.write`).
    pub async fn create_card(&self, actor: &Actor, input: CardInput) -> AppResult<CardView> {
        actor.require(Permission::SettingsWrite)?;
        let now = self.now().millis();
        let mut row = card_row(input, None, now)?;
        let mut tx = self.db().begin().await?;
        row.id = repo::insert_card(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "card.create",
            "card",
            Some(row.id),
            None::<&()>,
            Some(&masked(&row)),
        )
        .await?;
        tx.commit().await?;
        self.get_card(actor, row.id).await
    }

    /// Replaces a card's details (needs `settings.write`).
    pub async fn update_card(
        &self,
        actor: &Actor,
        id: i64,
        input: CardInput,
    ) -> AppResult<CardView> {
        actor.require(Permission::SettingsWrite)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let before = repo::get_card(tx.conn(), id)
            .await?
            .ok_or_else(card_not_found)?;
        let row = card_row(input, Some(&before), now)?;
        repo::update_card(tx.conn(), &row).await?;
        self.audit(
            tx.conn(),
            actor,
            "card.update",
            "card",
            Some(id),
            Some(&masked(&before)),
            Some(&masked(&row)),
        )
        .await?;
        tx.commit().await?;
        self.get_card(actor, id).await
    }

    /// Deletes a card no payment ever used (else deactivate it).
    pub async fn delete_card(&self, actor: &Actor, id: i64) -> AppResult<()> {
        actor.require(Permission::SettingsWrite)?;
        let mut tx = self.db().begin().await?;
        let before = repo::get_card(tx.conn(), id)
            .await?
            .ok_or_else(card_not_found)?;
        match repo::delete_card(tx.conn(), id).await {
            Ok(_) => {}
            Err(mrjbot_db::DbError::ForeignKey) => {
                return Err(AppError::new(
                    ErrorCode::InUse,
                    "payments were made to this card; deactivate it instead",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            tx.conn(),
            actor,
            "card.delete",
            "card",
            Some(id),
            Some(&masked(&before)),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reserves a destination card for an order: the rotation's pick among active cards
    /// with room under their caps; the reservation counts against the caps until it ends.
    pub(crate) async fn reserve_card(
        &self,
        actor: &Actor,
        order: &OrderRow,
    ) -> AppResult<PaymentView> {
        let settings = self.payment_settings().await?;
        let (day, month) = self.day_and_month_start(settings.utc_offset_minutes);
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        // Reuse an open reservation of this order instead of taking a second card.
        if let Some(p) = repo::payments_of_order(tx.conn(), order.id)
            .await?
            .into_iter()
            .find(|p| {
                p.method == "card"
                    && (p.status == "pending" || p.status == "created")
                    && p.expires_at.is_some_and(|e| e > now)
            })
        {
            tx.commit().await?;
            return self.payment_view(p.id).await;
        }
        let uses = repo::card_use(tx.conn(), day, month, now).await?;
        let cards = repo::list_cards(tx.conn()).await?;
        let loads: Vec<CardLoad> = cards
            .iter()
            .filter(|c| c.is_active && c.currency == order.currency)
            .map(|c| {
                let u = uses.iter().find(|u| u.card_id == c.id);
                let reserved = u.map_or(0, |u| u.reserved_minor);
                CardLoad {
                    id: c.id,
                    weight: c.weight,
                    today_minor: u.map_or(0, |u| u.today_minor) + reserved,
                    month_minor: u.map_or(0, |u| u.month_minor) + reserved,
                    month_count: u.map_or(0, |u| u.month_count + u.reserved_count),
                    daily_cap_minor: c.daily_cap_minor,
                    monthly_cap_minor: c.monthly_cap_minor,
                    monthly_tx_cap: c.monthly_tx_cap,
                    last_used_at: c.last_used_at,
                }
            })
            .collect();
        let card_id = pick_card(&loads, order.amount_minor, settings.card_rotation).ok_or_else(|| {
            AppError::new(ErrorCode::NoCardAvailable, "no destination card can take this amount right now; try another method or later")
        })?;
        let expires = now + i64::from(settings.card_reservation_minutes) * 60_000;
        let p = self
            .new_attempt(
                tx.conn(),
                order,
                PaymentMethod::Card,
                Some(expires),
                Some(card_id),
            )
            .await?;
        repo::set_payment_started(tx.conn(), p.id, None, None, None, now).await?;
        repo::touch_card(tx.conn(), card_id, now).await?;
        self.audit(
            tx.conn(),
            actor,
            "payment.card_reserve",
            "payment",
            Some(p.id),
            None::<&()>,
            Some(&json!({ "card_id": card_id })),
        )
        .await?;
        tx.commit().await?;
        self.payment_view(p.id).await
    }

    /// Takes a receipt picture for a card payment: refuses a picture sent before, stores
    /// it, queues the analysis and, if the seller wants, gives temporary service.
    pub async fn submit_receipt(
        &self,
        actor: &Actor,
        payment_id: i64,
        upload: ReceiptUpload,
    ) -> AppResult<ReceiptView> {
        let facts = crate::receipt::image_facts(&upload.bytes)
            .map_err(|e| AppError::field("image", e.to_string()))?;
        let now = self.now().millis();
        let settings = self.payment_settings().await?;
        let mut tx = self.db().begin().await?;
        let p = repo::get_payment(tx.conn(), payment_id, true)
            .await?
            .filter(|p| actor.is(p.user_id) || actor.can(Permission::PaymentsApprove))
            .ok_or_else(payment_not_found)?;
        if p.method != "card" {
            return Err(transition("receipts are only for card-to-card payments"));
        }
        if !(p.status == "pending" || p.status == "created") {
            return Err(transition(format!(
                "the payment is {}; no receipt is needed",
                p.status
            )));
        }
        let earlier = repo::receipts_of(tx.conn(), p.id).await?.len();
        if earlier >= MAX_RECEIPTS_PER_PAYMENT {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                "this payment already has several receipts waiting for review; please wait for the answer",
            ));
        }
        let has_receipt = earlier > 0;
        if !has_receipt && p.expires_at.is_some_and(|e| e <= now) {
            return Err(transition(
                "the reservation ended; start the payment again to get a card",
            ));
        }
        if let Some(dup) = repo::receipt_same_file(
            tx.conn(),
            &facts.sha256,
            upload.telegram_file_unique_id.as_deref(),
        )
        .await?
        {
            tracing::warn!(
                payment = p.id,
                earlier = dup.id,
                "the same receipt picture was sent again"
            );
            return Err(AppError::new(
                ErrorCode::DuplicateReceipt,
                "this receipt was already sent",
            ));
        }
        let row = ReceiptRow {
            id: 0,
            payment_id: p.id,
            telegram_file_id: upload
                .telegram_file_id
                .unwrap_or_else(|| format!("upload:{}", facts.sha256)),
            telegram_file_unique_id: upload.telegram_file_unique_id,
            image_sha256: facts.sha256.clone(),
            phash: Some(facts.phash as i64),
            ocr_text: None,
            ocr_amount_minor: None,
            ocr_amount_unit: None,
            ocr_tracking_no: None,
            ocr_reference_no: None,
            ocr_card_last4: None,
            ocr_dest_card_last4: None,
            ocr_date: None,
            risk_score: None,
            risk_verdict: None,
            risk_reasons: None,
            analyzed_at: None,
            created_at: now,
        };
        let content_type = sniff_image_type(&upload.bytes);
        let rid = repo::insert_receipt(tx.conn(), &row, content_type, &upload.bytes).await?;
        repo::set_payment_started(tx.conn(), p.id, None, None, None, now).await?;
        repo::enqueue(
            tx.conn(),
            ANALYZE_RECEIPT,
            &json!({ "receipt_id": rid }).to_string(),
            &format!("analyze:{rid}"),
            now,
        )
        .await?;
        crate::money::outbox::enqueue_notice(
            tx.conn(),
            NoticeTarget::Staff,
            &Notice::ReceiptForReview { payment_id: p.id },
            &format!("staff:receipt:{rid}"),
            now,
        )
        .await?;
        let mut changes = Vec::new();
        if let (Some(rule), false) = (&settings.temporary_while_review, has_receipt) {
            changes.extend(
                self.start_temporary_service(tx.conn(), p.order_id, rule.percent, rule.days)
                    .await?,
            );
        }
        self.audit(
            tx.conn(),
            actor,
            "payment.receipt",
            "payment",
            Some(p.id),
            None::<&()>,
            Some(&json!({ "receipt_id": rid, "sha256": facts.sha256 })),
        )
        .await?;
        self.commit_changes(tx, &changes).await?;
        self.wake_outbox();
        self.receipt_view(rid).await
    }

    async fn receipt_view(&self, id: i64) -> AppResult<ReceiptView> {
        repo::get_receipt(self.db().read().await?.conn(), id)
            .await?
            .map(ReceiptView::from)
            .ok_or_else(|| AppError::not_found(ErrorCode::ReceiptNotFound, "receipt"))
    }

    /// Receipts of a payment (the payer or `payments.read`).
    pub async fn list_receipts(
        &self,
        actor: &Actor,
        payment_id: i64,
    ) -> AppResult<Vec<ReceiptView>> {
        let mut c = self.db().read().await?;
        repo::get_payment(c.conn(), payment_id, false)
            .await?
            .filter(|p| actor.is(p.user_id) || actor.can(Permission::PaymentsRead))
            .ok_or_else(payment_not_found)?;
        Ok(repo::receipts_of(c.conn(), payment_id)
            .await?
            .into_iter()
            .map(ReceiptView::from)
            .collect())
    }

    /// The picture of a receipt (needs `payments.read`): (content type, bytes).
    pub async fn receipt_image(&self, actor: &Actor, id: i64) -> AppResult<(String, Vec<u8>)> {
        actor.require(Permission::PaymentsRead)?;
        repo::receipt_image(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::ReceiptNotFound, "receipt"))
    }

    /// Issues the temporary subscription for an order under review (once per order).
    async fn start_temporary_service(
        &self,
        mut c: mrjbot_db::Conn<'_>,
        order_id: i64,
        percent: u8,
        days: u8,
    ) -> AppResult<Option<Changed>> {
        let Some(order) = repo::get_order(c.reborrow(), order_id, true).await? else {
            return Ok(None);
        };
        if order.kind != "purchase" || order.subscription_id.is_some() {
            return Ok(None);
        }
        let Some(plan_id) = order.plan_id else {
            return Ok(None);
        };
        let Some(plan) = plans_repo::get(c.reborrow(), plan_id).await? else {
            return Ok(None);
        };
        let (_, terms) = self.plan_terms(plan_id).await?;
        let now = self.now();
        let st = SubscriptionState::new(
            terms,
            Start::Temporary {
                percent,
                days: i64::from(days),
            },
            now,
        )?;
        let row = crate::subscriptions::new_row(order.user_id, &plan, st, None, now);
        let sid = subs_repo::insert(c.reborrow(), &row).await?;
        repo::set_order_subscription(c, order_id, sid, now.millis()).await?;
        Ok(Some(Changed::Sub(sid)))
    }

    /// Ends the temporary subscription of a rejected card order.
    pub(crate) async fn end_temporary_service(
        &self,
        mut c: mrjbot_db::Conn<'_>,
        order_id: i64,
    ) -> AppResult<Option<Changed>> {
        let Some(order) = repo::get_order(c.reborrow(), order_id, false).await? else {
            return Ok(None);
        };
        let Some(sid) = order
            .subscription_id
            .filter(|_| order.kind == "purchase" && order.fulfilled_at.is_none())
        else {
            return Ok(None);
        };
        match subs_repo::get(c.reborrow(), sid).await? {
            Some(s) if s.status == "temporary" => self.disable_subscription_in(c, sid).await,
            _ => Ok(None),
        }
    }

    /// Staff approval of a card payment (needs `payments.approve`). Exactly one of any
    /// number of concurrent approvals wins; the others get `payment_already_approved`.
    pub async fn approve_payment(&self, actor: &Actor, id: i64) -> AppResult<PaymentView> {
        actor.require(Permission::PaymentsApprove)?;
        let mut tx = self.db().begin().await?;
        let p = repo::get_payment(tx.conn(), id, true)
            .await?
            .ok_or_else(payment_not_found)?;
        if p.method != "card" {
            return Err(transition(
                "only card payments are approved by hand; gateways confirm their own",
            ));
        }
        match self
            .confirm(
                tx.conn(),
                id,
                ConfirmedBy::Staff,
                &Approval {
                    by: actor.user_id,
                    ..Approval::default()
                },
            )
            .await?
        {
            Confirmed::Now | Confirmed::ToWallet => {}
            Confirmed::Already => {
                return Err(AppError::new(
                    ErrorCode::PaymentAlreadyApproved,
                    "the payment was already approved",
                ));
            }
            Confirmed::Refused => {
                return Err(transition(format!(
                    "the payment is {}; it cannot be approved",
                    p.status
                )));
            }
        }
        self.audit(
            tx.conn(),
            actor,
            "payment.approve",
            "payment",
            Some(id),
            Some(&p),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.wake_outbox();
        self.payment_view(id).await
    }

    /// OCR, duplicate search and verdict for one receipt (outbox work), then the seller's
    /// trusted-customer rule.
    pub(crate) async fn analyze_receipt_item(
        &self,
        item: &mrjbot_db::money::OutboxRow,
    ) -> Result<(), WorkError> {
        let payload: serde_json::Value =
            serde_json::from_str(&item.payload).map_err(|e| WorkError::Never(e.to_string()))?;
        let rid = payload["receipt_id"]
            .as_i64()
            .ok_or_else(|| WorkError::Never("no receipt_id".into()))?;
        let (receipt, image, payment, card) = {
            let mut c = self.db().read().await?;
            let Some(r) = repo::get_receipt(c.conn(), rid).await? else {
                return Ok(());
            };
            if r.analyzed_at.is_some() {
                return Ok(());
            }
            let image = repo::receipt_image(c.conn(), rid)
                .await?
                .map(|i| i.1)
                .unwrap_or_default();
            let p = repo::get_payment(c.conn(), r.payment_id, false)
                .await?
                .ok_or_else(|| WorkError::Never("payment gone".into()))?;
            let card = match p.card_id {
                Some(id) => repo::get_card(c.conn(), id).await?,
                None => None,
            };
            (r, image, p, card)
        };
        let ocr = self.gateways().ocr.clone();
        let (text, fields) = match &ocr {
            Some(ocr) => match ocr.analyze(&image).await {
                Ok((text, fields)) => (Some(text), Some(fields)),
                Err(e) => {
                    tracing::warn!(receipt = rid, error = %e, "receipt OCR failed; the admin reads it");
                    (None, None)
                }
            },
            None => (None, None),
        };
        let mut c = self.db().read().await?;
        let near: Vec<i64> = repo::receipt_hashes(c.conn(), rid)
            .await?
            .into_iter()
            .filter(|(_, h)| {
                receipt.phash.is_some_and(|mine| {
                    crate::receipt::hamming(mine as u64, *h as u64)
                        <= crate::receipt::NEAR_DUPLICATE_BITS
                })
            })
            .map(|(id, _)| id)
            .collect();
        let tracking = fields.as_ref().and_then(|f| f.tracking_no.clone());
        let reference = fields.as_ref().and_then(|f| f.reference_no.clone());
        let same_numbers = if tracking.is_some() || reference.is_some() {
            repo::receipts_with_numbers(c.conn(), rid, tracking.as_deref(), reference.as_deref())
                .await?
        } else {
            Vec::new()
        };
        // A close picture with other readable numbers is the same app's layout, not the
        // same receipt (4% of different receipts of one layout hash within the threshold).
        let mut near_duplicate = Vec::new();
        let mut similar = Vec::new();
        for id in near {
            let other = repo::get_receipt(c.conn(), id).await?;
            let differs = |mine: &Option<String>, theirs: &Option<String>| matches!((mine, theirs), (Some(a), Some(b)) if a != b);
            let told_apart = other.is_some_and(|o| {
                differs(&tracking, &o.ocr_tracking_no) || differs(&reference, &o.ocr_reference_no)
            });
            if told_apart {
                similar.push(id);
            } else {
                near_duplicate.push(id);
            }
        }
        let (approved, rejected) =
            repo::card_history(c.conn(), payment.user_id, payment.id).await?;
        drop(c);
        let settings = self.payment_settings().await?;
        let evidence = ReceiptEvidence {
            expected_rial: payment.amount_minor,
            read_rial: fields.as_ref().and_then(|f| {
                // tesseract's Persian model drops or invents digits around the `٬`
                // separator; when the exact amount of the order is printed anywhere on the
                // receipt, the field extraction picked the wrong number.
                let printed = text
                    .as_deref()
                    .is_some_and(|t| mentions_amount(t, payment.amount_minor));
                if printed {
                    Some(payment.amount_minor)
                } else {
                    f.amount_rial()
                }
            }),
            expected_card_last4: card
                .as_ref()
                .map(|c| c.number[c.number.len() - 4..].to_owned())
                .unwrap_or_default(),
            read_card_last4: fields.as_ref().and_then(|f| f.dest_card_last4.clone()),
            ocr_ran: fields.is_some(),
            says_failed: fields.as_ref().and_then(|f| f.success) == Some(false),
            has_tracking: tracking.is_some() || reference.is_some(),
            date_offset_days: fields
                .as_ref()
                .and_then(|f| f.date.as_deref())
                .and_then(printed_day)
                .map(|printed| {
                    printed - local_day(payment.created_at, settings.utc_offset_minutes)
                }),
            same_tracking_as: same_numbers.clone(),
            near_duplicate_of: near_duplicate,
            similar_to: similar,
            customer_approved: approved,
            customer_rejected: rejected,
        };
        let risk = assess(&evidence);
        let f = fields.unwrap_or_default();
        let analysis = ReceiptAnalysis {
            ocr_text: text.map(|t| t.chars().take(4000).collect()),
            amount: f.amount,
            amount_unit: f.amount.map(|_| {
                match f.unit {
                    mrjbot_domain::receipt::AmountUnit::Rial => "rial",
                    mrjbot_domain::receipt::AmountUnit::Toman => "toman",
                    mrjbot_domain::receipt::AmountUnit::Unknown => "unknown",
                }
                .to_owned()
            }),
            // A reused number stays out of the unique columns; the reasons carry it.
            tracking_no: tracking.filter(|_| same_numbers.is_empty()),
            reference_no: reference.filter(|_| same_numbers.is_empty()),
            src_card_last4: f.src_card_last4.clone(),
            dest_card_last4: f.dest_card_last4.clone(),
            date: f.date.clone(),
            risk_score: i64::from(risk.score),
            risk_verdict: risk.verdict.as_str().into(),
            risk_reasons: serde_json::to_string(&risk.reasons).unwrap_or_else(|_| "[]".into()),
        };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        repo::set_receipt_analysis(tx.conn(), rid, &analysis, now).await?;
        let trusted = settings.trusted_auto_approve.as_ref().is_some_and(|t| {
            approved >= i64::from(t.min_approved)
                && rejected == 0
                && payment.amount_minor <= t.max_amount_minor
                && (!t.require_low_risk || risk.verdict == Verdict::Low)
                && risk.verdict != Verdict::High
        });
        if trusted {
            let outcome = self
                .confirm(
                    tx.conn(),
                    payment.id,
                    ConfirmedBy::Staff,
                    &Approval::default(),
                )
                .await?;
            if outcome == Confirmed::Now {
                tracing::info!(
                    payment = payment.id,
                    "card payment auto-approved (trusted customer)"
                );
                self.audit(
                    tx.conn(),
                    &Actor::system("trusted-customer rule"),
                    "payment.auto_approve",
                    "payment",
                    Some(payment.id),
                    None::<&()>,
                    Some(&risk),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.wake_outbox();
        Ok(())
    }

    /// Accepts card payments that waited `after_days` with a verdict under the seller's
    /// threshold (never high risk, never unanalysed). Returns how many.
    pub async fn auto_accept_due(&self) -> AppResult<usize> {
        let settings = self.payment_settings().await?;
        let Some(rule) = settings.auto_accept else {
            return Ok(0);
        };
        let cutoff = self.now().millis() - i64::from(rule.after_days) * 86_400_000;
        let (waiting, _) = repo::list_payments(
            self.db().read().await?.conn(),
            &repo::PaymentFilter {
                awaiting_review: true,
                ..Default::default()
            },
            mrjbot_db::Page {
                limit: 200,
                offset: 0,
                sort: "id",
                order: mrjbot_db::Order::Asc,
            },
        )
        .await?;
        let mut n = 0;
        for p in waiting {
            let receipts = repo::receipts_of(self.db().read().await?.conn(), p.id).await?;
            let Some(last) = receipts.last() else {
                continue;
            };
            let ok = last.created_at <= cutoff
                && receipts
                    .iter()
                    .all(|r| r.analyzed_at.is_some() && r.risk_verdict.as_deref() != Some("high"))
                && last
                    .risk_score
                    .is_some_and(|s| s <= i64::from(rule.max_risk_score));
            if !ok {
                continue;
            }
            let mut tx = self.db().begin().await?;
            if self
                .confirm(tx.conn(), p.id, ConfirmedBy::Staff, &Approval::default())
                .await?
                == Confirmed::Now
            {
                self.audit(
                    tx.conn(),
                    &Actor::system("auto-accept rule"),
                    "payment.auto_accept",
                    "payment",
                    Some(p.id),
                    None::<&()>,
                    Some(&json!({ "risk_score": last.risk_score })),
                )
                .await?;
                n += 1;
            }
            tx.commit().await?;
        }
        if n > 0 {
            self.wake_outbox();
        }
        Ok(n)
    }
}

/// Whether `text` prints `rial` as a whole number, in rials or in tomans (digits of any
/// script, grouped with `,` `٬` `.` or spaces).
fn mentions_amount(text: &str, rial: i64) -> bool {
    let normalized = mrjbot_domain::receipt::normalize_digits(text);
    let wanted = [rial.to_string(), (rial / 10).to_string()];
    let mut run = String::new();
    let mut hits = false;
    let mut flush = |run: &mut String| {
        hits |= rial % 10 == 0 && wanted.contains(run) || run == &wanted[0];
        run.clear();
    };
    let chars: Vec<char> = normalized.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            run.push(c);
        } else if matches!(c, ',' | '٬' | '.' | ' ')
            && !run.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        {
            // A group separator inside a number.
        } else {
            flush(&mut run);
        }
    }
    flush(&mut run);
    hits
}

/// Days since 1970-01-01 of an instant in the seller's calendar.
fn local_day(ms: i64, offset_minutes: i32) -> i64 {
    (ms + i64::from(offset_minutes) * 60_000).div_euclid(86_400_000)
}

/// Days since 1970-01-01 of a date printed on a receipt (`YYYY/MM/DD[ HH:MM]`): Jalali
/// when the year is below 1700 (bank apps in Iran print Jalali dates), else Gregorian.
fn printed_day(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace().next()?.split('/');
    let (y, m, d): (i32, u32, u32) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    let (gy, gm, gd) = if y < 1700 {
        mrjbot_i18n::from_jalali(y, m, d)?
    } else {
        (y, m, d)
    };
    let month = time::Month::try_from(u8::try_from(gm).ok()?).ok()?;
    let date = time::Date::from_calendar_date(gy, month, u8::try_from(gd).ok()?).ok()?;
    Some(i64::from(
        date.to_julian_day()
            - time::Date::from_calendar_date(1970, time::Month::January, 1)
                .ok()?
                .to_julian_day(),
    ))
}

/// The MIME type of a decoded receipt picture, by its magic bytes.
fn sniff_image_type(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG") {
        "image/png"
    } else if b.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else if b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

fn masked(c: &CardRow) -> serde_json::Value {
    json!({ "number": format!("****{}", &c.number[c.number.len().saturating_sub(4)..]), "owner_name": c.owner_name, "bank": c.bank,
            "is_active": c.is_active, "weight": c.weight, "daily_cap_minor": c.daily_cap_minor, "monthly_cap_minor": c.monthly_cap_minor,
            "monthly_tx_cap": c.monthly_tx_cap })
}

fn card_row(input: CardInput, before: Option<&CardRow>, now: i64) -> AppResult<CardRow> {
    let number = parse_card_number(&input.number)?;
    let owner = input.owner_name.trim().to_owned();
    if owner.is_empty() || owner.chars().count() > 100 {
        return Err(AppError::field("owner_name", "1 to 100 characters"));
    }
    check_text("bank", &input.bank, 100)?;
    check_text("disabled_reason", &input.disabled_reason, 500)?;
    check_text("note", &input.note, 1000)?;
    let weight = input.weight.unwrap_or(1);
    if !(0..=1000).contains(&weight) {
        return Err(AppError::field("weight", "0 to 1000"));
    }
    for (f, v) in [
        ("daily_cap_minor", input.daily_cap_minor),
        ("monthly_cap_minor", input.monthly_cap_minor),
        ("monthly_tx_cap", input.monthly_tx_cap),
    ] {
        if v.is_some_and(|v| !(0..=1_000_000_000_000_000).contains(&v)) {
            return Err(AppError::field(f, "a non-negative number"));
        }
    }
    Ok(CardRow {
        id: before.map_or(0, |b| b.id),
        number,
        owner_name: owner,
        bank: input
            .bank
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty()),
        is_active: input.is_active.unwrap_or(true),
        weight,
        daily_cap_minor: input.daily_cap_minor,
        monthly_cap_minor: input.monthly_cap_minor,
        monthly_tx_cap: input.monthly_tx_cap,
        currency: Currency::Irr.code().into(),
        sort_order: input.sort_order.unwrap_or(0).clamp(-1_000_000, 1_000_000),
        disabled_reason: input.disabled_reason,
        note: input.note,
        last_used_at: before.and_then(|b| b.last_used_at),
        created_at: before.map_or(now, |b| b.created_at),
        updated_at: now,
    })
}

fn card_view(r: CardRow, u: Option<&repo::CardUse>) -> CardView {
    CardView {
        id: r.id,
        number: r.number,
        owner_name: r.owner_name,
        bank: r.bank,
        is_active: r.is_active,
        weight: r.weight,
        daily_cap_minor: r.daily_cap_minor,
        monthly_cap_minor: r.monthly_cap_minor,
        monthly_tx_cap: r.monthly_tx_cap,
        currency: Currency::parse(&r.currency).unwrap_or(Currency::Irr),
        sort_order: r.sort_order,
        disabled_reason: r.disabled_reason,
        note: r.note,
        last_used_at: r.last_used_at.map(Timestamp::from_millis),
        today_minor: u.map_or(0, |u| u.today_minor),
        month_minor: u.map_or(0, |u| u.month_minor),
        month_count: u.map_or(0, |u| u.month_count),
        reserved_minor: u.map_or(0, |u| u.reserved_minor),
        reserved_count: u.map_or(0, |u| u.reserved_count),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_card_number;

    #[test]
    fn amounts_printed_anywhere_are_found() {
        assert!(super::mentions_amount("مبلغ: ۱۵۰٬۰۰۰ تومان", 1_500_000));
        assert!(super::mentions_amount("Amount 1,500,000 Rials", 1_500_000));
        assert!(!super::mentions_amount("Amount 15,000 Toman", 1_500_000));
        assert!(!super::mentions_amount("ref 21500000", 1_500_000));
        assert!(!super::mentions_amount("", 1_500_000));
    }

    #[test]
    fn printed_dates_in_both_calendars() {
        // 1403/05/12 (Jalali) is 2024-08-02.
        let day = super::printed_day("1403/05/12 14:32");
        assert_eq!(day, super::printed_day("2024/08/02"));
        assert_eq!(day, Some(19_937));
        assert_eq!(super::local_day(1_722_556_800_000, 210), 19_937);
        assert_eq!(super::printed_day("1403/13/40"), None);
        assert_eq!(super::printed_day("garbage"), None);
    }

    #[test]
    fn card_numbers_parse_in_any_digits_and_pass_luhn() {
        assert_eq!(
            parse_card_number("6037-9975-9951-4529").ok(),
            Some("6037997599514529".into())
        );
        assert_eq!(
            parse_card_number("۶۰۳۷ ۹۹۷۵ ۹۹۵۱ ۴۵۲۹").ok(),
            Some("6037997599514529".into())
        );
        assert!(parse_card_number("6037997599514523").is_err());
        assert!(parse_card_number("1234").is_err());
        assert!(parse_card_number("6037x997599514523").is_err());
    }
}
