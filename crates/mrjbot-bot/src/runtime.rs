//! Getting updates (long polling under a lease, or a webhook), keeping each chat's updates
//! in order, holding floods back, and handing every update to the customer or staff
//! handlers with the person it came from.

use crate::state::Dialogue;
use crate::text::{self, tr};
use crate::{customer, staff};
use mrjbot_app::pay::telegram::UpdateKind as PayUpdate;
use mrjbot_app::shop::{Customer, TelegramProfile};
use mrjbot_app::{Actor, App};
use mrjbot_domain::{ErrorCode, Permission};
use mrjbot_i18n::Lang;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQuery, ChatKind, MaybeInaccessibleMessage, MessageId,
    ParseMode, PreCheckoutQuery, UpdateKind,
};
use teloxide::{ApiError, RequestError};

/// How updates arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotMode {
    /// `getUpdates` long polling by the replica holding the lease.
    Polling,
    /// Telegram POSTs updates to `{public_url}/telegram/webhook` with this secret.
    Webhook {
        /// `https://shop.example` (the API server's public address).
        public_url: String,
        /// Sent back by Telegram in `X-Telegram-Bot-Api-Secret-Token`.
        secret: String,
    },
}

/// What the bot needs to run.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Token from @BotFather.
    pub token: String,
    /// Bot API base (`https://api.telegram.org`, or a fake in tests).
    pub api_url: String,
    /// The staff chat (group or a person) where receipts, orders and tickets go.
    pub admin_chat: Option<i64>,
    /// The language of the staff chat.
    pub admin_lang: Lang,
    /// Polling or webhook.
    pub mode: BotMode,
    /// Long-poll time for `getUpdates`.
    pub poll_timeout: Duration,
    /// Public base URL of the server (subscription links), e.g. `https://shop.example`.
    pub public_url: Option<String>,
}

impl BotConfig {
    /// Polling against `api_url`, no staff chat, 25 s polls.
    pub fn new(token: impl Into<String>, api_url: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            api_url: api_url.into(),
            admin_chat: None,
            admin_lang: Lang::Fa,
            mode: BotMode::Polling,
            poll_timeout: Duration::from_secs(25),
            public_url: None,
        }
    }
}

/// The running bot. Cheap to clone.
#[derive(Clone)]
pub struct ShopBot {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub app: App,
    pub bot: Bot,
    pub cfg: BotConfig,
    pub username: String,
    holder: String,
    chat_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    flood: Mutex<HashMap<i64, Flood>>,
    seen: Mutex<VecDeque<u32>>,
}

struct Flood {
    hits: VecDeque<Instant>,
    warned: bool,
    /// The person's language as last seen (the notice is sent before any lookup).
    lang: Option<Lang>,
}

/// The person and place an update came from, with what the services need.
pub(crate) struct Ctx {
    /// The chat to answer in.
    pub chat: i64,
    /// A private chat with the person (not a group).
    pub private: bool,
    /// The person's Telegram id.
    pub tg_id: i64,
    /// Their language (the staff chat's in the staff chat).
    pub lang: Lang,
    /// The person as the services see them.
    pub actor: Actor,
    /// The customer record (private chats).
    pub customer: Option<Customer>,
    /// The bot message a pressed button sits on (edited in place).
    pub edit: Option<MessageId>,
    /// Whether that message is a text message (else it cannot be edited as text).
    pub edit_is_text: bool,
}

impl Ctx {
    /// Whether the person works for the shop (any staff permission).
    pub fn is_staff(&self) -> bool {
        staff_perms(&self.actor)
    }
}

fn staff_perms(a: &Actor) -> bool {
    [
        Permission::PaymentsApprove,
        Permission::PaymentsRead,
        Permission::TicketsWrite,
        Permission::ReportsRead,
        Permission::UsersRead,
        Permission::BroadcastsWrite,
    ]
    .iter()
    .any(|p| a.can(*p))
}

const LEASE_TTL: Duration = Duration::from_secs(60);
const ALLOWED: [AllowedUpdate; 3] = [
    AllowedUpdate::Message,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::PreCheckoutQuery,
];

impl ShopBot {
    /// Connects to the Bot API (`getMe`), publishes the command menu, installs itself as
    /// the app's notifier and, in webhook mode, registers the webhook.
    pub async fn start(app: App, cfg: BotConfig) -> Result<ShopBot, RequestError> {
        let url = cfg.api_url.parse().map_err(|e| {
            RequestError::Io(Arc::new(std::io::Error::other(format!("bad API URL: {e}"))))
        })?;
        let bot = Bot::new(cfg.token.clone()).set_api_url(url);
        let me = bot.get_me().await?;
        let username = me.username.clone().unwrap_or_default();
        let shop = ShopBot {
            inner: Arc::new(Inner {
                app: app.clone(),
                bot,
                cfg,
                username,
                holder: format!(
                    "{}:{}",
                    std::process::id(),
                    mrjbot_domain::SecretToken::generate()
                        .as_str()
                        .get(..12)
                        .unwrap_or("x")
                ),
                chat_locks: Mutex::new(HashMap::new()),
                flood: Mutex::new(HashMap::new()),
                seen: Mutex::new(VecDeque::new()),
            }),
        };
        shop.publish_commands().await;
        if let BotMode::Webhook { public_url, secret } = &shop.inner.cfg.mode {
            let hook = format!("{}/telegram/webhook", public_url.trim_end_matches('/'));
            let hook = hook.parse().map_err(|e| {
                RequestError::Io(Arc::new(std::io::Error::other(format!(
                    "bad public URL: {e}"
                ))))
            })?;
            shop.inner
                .bot
                .set_webhook(hook)
                .secret_token(secret.clone())
                .allowed_updates(ALLOWED.to_vec())
                .await?;
        }
        app.set_notifier(Arc::new(shop.clone()));
        Ok(shop)
    }

    /// The bot's @username (without @).
    pub fn username(&self) -> &str {
        &self.inner.username
    }

    pub(crate) fn app(&self) -> &App {
        &self.inner.app
    }

    pub(crate) fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    pub(crate) fn cfg(&self) -> &BotConfig {
        &self.inner.cfg
    }

    async fn publish_commands(&self) {
        for lang in Lang::ALL {
            let cmds: Vec<BotCommand> = [
                ("start", "bot-cmd-start"),
                ("buy", "bot-cmd-buy"),
                ("services", "bot-cmd-services"),
                ("wallet", "bot-cmd-wallet"),
                ("support", "bot-cmd-support"),
                ("help", "bot-cmd-help"),
                ("faq", "bot-cmd-faq"),
                ("language", "bot-cmd-language"),
            ]
            .into_iter()
            .map(|(c, k)| BotCommand::new(c, tr(lang, k)))
            .collect();
            let r = self
                .bot()
                .set_my_commands(cmds)
                .language_code(lang.code())
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "setMyCommands failed");
            }
        }
    }

    /// Long-polls while holding the lease; stands by while another replica holds it.
    pub async fn run_polling(self) {
        let holder = self.inner.holder.clone();
        let mut leader = false;
        loop {
            match self.app().bot_lease(&holder, LEASE_TTL).await {
                Ok(true) => {
                    if !leader {
                        tracing::info!(holder, "bot: polling Telegram on this replica");
                        leader = true;
                    }
                }
                Ok(false) => {
                    leader = false;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bot: lease check failed");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    continue;
                }
            }
            if let Err(wait) = self.poll_once().await {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Gives the polling lease up so another replica takes over at once (on shutdown).
    pub async fn release(&self) {
        if let Err(e) = self.app().release_bot_lease(&self.inner.holder).await {
            tracing::warn!(error = %e, "bot: releasing the lease failed");
        }
    }

    /// One `getUpdates` round: handles the batch (chats in parallel, each in order) and
    /// stores the new offset. `Err` says how long to wait before the next round.
    pub async fn poll_once(&self) -> Result<usize, Duration> {
        let offset = self.app().bot_offset().await.map_err(|e| {
            tracing::warn!(error = %e, "bot: reading the offset failed");
            Duration::from_secs(2)
        })?;
        let secs = u32::try_from(self.cfg().poll_timeout.as_secs()).unwrap_or(25);
        let updates = self
            .bot()
            .get_updates()
            .offset(i32::try_from(offset).unwrap_or(i32::MAX))
            .timeout(secs)
            .limit(100)
            .allowed_updates(ALLOWED.to_vec())
            .await;
        let updates = match updates {
            Ok(u) => u,
            // One malformed update must not stall the chat for everyone: read the batch
            // one update at a time and skip what does not parse.
            Err(RequestError::InvalidJson { raw, .. }) => salvage(&raw),
            Err(RequestError::RetryAfter(s)) => return Err(s.duration()),
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                return Err(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(error = %e, "bot: getUpdates failed");
                return Err(Duration::from_secs(2));
            }
        };
        let n = updates.len();
        let Some(next) = updates.iter().map(|u| i64::from(u.id.0) + 1).max() else {
            return Ok(0);
        };
        let mut by_chat: BTreeMap<i64, Vec<Update>> = BTreeMap::new();
        for u in updates {
            by_chat.entry(chat_of(&u)).or_default().push(u);
        }
        let mut set = tokio::task::JoinSet::new();
        for (_, ups) in by_chat {
            let me = self.clone();
            set.spawn(async move {
                for u in ups {
                    me.handle(u).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        if let Err(e) = self.app().set_bot_offset(next.max(offset)).await {
            tracing::warn!(error = %e, "bot: storing the offset failed");
        }
        Ok(n)
    }

    /// Takes one webhook delivery (`POST /telegram/webhook`): the HTTP status to answer.
    /// Without the right secret header: 401. An unreadable body is acknowledged and
    /// dropped (Telegram would otherwise resend it forever).
    pub async fn webhook(&self, secret_header: Option<&[u8]>, body: &[u8]) -> u16 {
        let BotMode::Webhook { secret, .. } = &self.cfg().mode else {
            return 404;
        };
        let given = secret_header.unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given, secret.as_bytes())) {
            return 401;
        }
        match serde_json::from_slice::<Update>(body) {
            Ok(u) => self.handle(u).await,
            Err(e) => tracing::warn!(error = %e, "bot: unreadable webhook update"),
        }
        200
    }

    /// Handles one update, in order with the other updates of its chat.
    pub async fn handle(&self, u: Update) {
        if !self.first_time(u.id.0) {
            tracing::debug!(update = u.id.0, "bot: update seen before; skipped");
            return;
        }
        tracing::trace!(update = u.id.0, "bot: update");
        let lock = {
            let mut locks = self
                .inner
                .chat_locks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if locks.len() > 10_000 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(chat_of(&u)).or_default().clone()
        };
        let _guard = lock.lock().await;
        match u.kind {
            UpdateKind::Message(m) => self.on_message(m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(q).await,
            UpdateKind::PreCheckoutQuery(q) => self.on_pre_checkout(q).await,
            UpdateKind::Error(v) => {
                tracing::debug!(update = %v, "bot: update not understood; ignored")
            }
            _ => {}
        }
    }

    fn first_time(&self, id: u32) -> bool {
        let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(&id) {
            return false;
        }
        seen.push_back(id);
        if seen.len() > 2048 {
            seen.pop_front();
        }
        true
    }

    /// Counts one update of a person; false once they pass the per-minute limit (they
    /// are told once per minute).
    fn admit(&self, tg_id: i64, limit: u32) -> (bool, bool) {
        let now = Instant::now();
        let limit = limit.max(1) as usize;
        let mut flood = self.inner.flood.lock().unwrap_or_else(|p| p.into_inner());
        if flood.len() > 50_000 {
            flood.retain(|_, f| {
                f.hits
                    .back()
                    .is_some_and(|t| now - *t < Duration::from_secs(60))
            });
        }
        let f = flood.entry(tg_id).or_insert_with(|| Flood {
            hits: VecDeque::new(),
            warned: false,
            lang: None,
        });
        while f
            .hits
            .front()
            .is_some_and(|t| now - *t >= Duration::from_secs(60))
        {
            f.hits.pop_front();
        }
        if f.hits.len() >= limit {
            let tell = !f.warned;
            f.warned = true;
            return (false, tell);
        }
        if f.hits.is_empty() {
            f.warned = false;
        }
        f.hits.push_back(now);
        (true, false)
    }

    /// The seller's per-person limit (updates a minute); 30 when settings cannot be read.
    async fn rate_limit(&self) -> u32 {
        self.app()
            .shop_settings()
            .await
            .map(|s| s.user_rate_per_minute)
            .unwrap_or(30)
    }

    /// The language a person was last served in, else what their client reports.
    fn known_lang(&self, tg_id: i64, hint: Option<&str>) -> Lang {
        let flood = self.inner.flood.lock().unwrap_or_else(|p| p.into_inner());
        flood
            .get(&tg_id)
            .and_then(|f| f.lang)
            .unwrap_or_else(|| lang_hint(hint))
    }

    fn remember_lang(&self, tg_id: i64, lang: Lang) {
        let mut flood = self.inner.flood.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = flood.get_mut(&tg_id) {
            f.lang = Some(lang);
        }
    }

    async fn on_pre_checkout(&self, q: PreCheckoutQuery) {
        let kind = PayUpdate::PreCheckoutQuery {
            id: q.id.0.clone(),
            from_id: i64::try_from(q.from.id.0).unwrap_or(0),
            currency: q.currency.clone(),
            total_amount: i64::from(q.total_amount),
            invoice_payload: q.invoice_payload.clone(),
        };
        if let Err(e) = self.app().handle_payment_update(kind).await {
            tracing::warn!(error = %e, "bot: pre-checkout failed");
        }
    }

    async fn on_message(&self, m: Message) {
        let Some(from) = m.from.clone() else { return };
        if from.is_bot {
            return;
        }
        let tg_id = i64::try_from(from.id.0).unwrap_or(0);
        if let Some(p) = m.successful_payment() {
            let kind = PayUpdate::SuccessfulPayment {
                chat_id: m.chat.id.0,
                from_id: tg_id,
                currency: p.currency.clone(),
                total_amount: i64::from(p.total_amount),
                invoice_payload: p.invoice_payload.clone(),
                telegram_payment_charge_id: p.telegram_payment_charge_id.0.clone(),
                provider_payment_charge_id: p.provider_payment_charge_id.clone(),
                is_recurring: p.is_recurring,
                is_first_recurring: p.is_first_recurring,
                subscription_expiration_date: p.subscription_expiration_date.map(|d| d.timestamp()),
            };
            if let Err(e) = self.app().handle_payment_update(kind).await {
                tracing::warn!(error = %e, "bot: successful_payment failed");
            }
            return;
        }
        let private = matches!(m.chat.kind, ChatKind::Private(_));
        let staff_chat = Some(m.chat.id.0) == self.cfg().admin_chat;
        if !private && !staff_chat {
            return;
        }
        let (ok, tell) = self.admit(tg_id, self.rate_limit().await);
        if !ok {
            tracing::debug!(tg_id, tell, "bot: flood limit");
            if tell {
                let lang = self.known_lang(tg_id, from.language_code.as_deref());
                self.say(m.chat.id.0, &tr(lang, "bot-slow-down"), None)
                    .await;
            }
            return;
        }
        let start_payload = m
            .text()
            .and_then(|t| t.strip_prefix("/start "))
            .map(str::trim);
        let Some(ctx) = self
            .context(&from, m.chat.id.0, private, None, false, start_payload)
            .await
        else {
            return;
        };
        if private {
            customer::on_message(self, ctx, &m).await;
        } else {
            staff::on_group_message(self, ctx, &m).await;
        }
    }

    async fn on_callback(&self, q: CallbackQuery) {
        let tg_id = i64::try_from(q.from.id.0).unwrap_or(0);
        let (chat, edit, is_text) = match &q.message {
            Some(MaybeInaccessibleMessage::Regular(m)) => {
                (m.chat.id.0, Some(m.id), m.text().is_some())
            }
            Some(MaybeInaccessibleMessage::Inaccessible(m)) => (m.chat.id.0, None, false),
            None => (tg_id, None, false),
        };
        let (ok, _) = self.admit(tg_id, self.rate_limit().await);
        if !ok {
            let lang = self.known_lang(tg_id, q.from.language_code.as_deref());
            self.answer(&q, Some(&tr(lang, "bot-slow-down")), true)
                .await;
            return;
        }
        let private = chat == tg_id;
        let staff_chat = Some(chat) == self.cfg().admin_chat;
        if !private && !staff_chat {
            self.answer(&q, None, false).await;
            return;
        }
        let Some(ctx) = self
            .context(&q.from, chat, private, edit, is_text, None)
            .await
        else {
            self.answer(&q, None, false).await;
            return;
        };
        let data = q.data.as_deref().and_then(crate::cb::Cb::parse);
        let Some(data) = data else {
            self.answer(&q, Some(&tr(ctx.lang, "bot-stale-button")), true)
                .await;
            if private {
                customer::menu(self, &ctx, false).await;
            }
            return;
        };
        let note = if private {
            customer::on_callback(self, &ctx, data).await
        } else {
            staff::on_callback(self, &ctx, data).await
        };
        match note {
            Note::Quiet => self.answer(&q, None, false).await,
            Note::Toast(t) => self.answer(&q, Some(&t), false).await,
            Note::Alert(t) => self.answer(&q, Some(&t), true).await,
        }
    }

    async fn answer(&self, q: &CallbackQuery, text: Option<&str>, alert: bool) {
        let mut req = self.bot().answer_callback_query(q.id.clone());
        if let Some(t) = text {
            req = req
                .text(t.chars().take(190).collect::<String>())
                .show_alert(alert);
        }
        if let Err(e) = req.await {
            tracing::debug!(error = %e, "bot: answerCallbackQuery failed");
        }
    }

    /// Builds the context of a person in a chat: their customer record and actor. A
    /// banned person is told so (once per update) and gets `None`.
    async fn context(
        &self,
        from: &teloxide::types::User,
        chat: i64,
        private: bool,
        edit: Option<MessageId>,
        edit_is_text: bool,
        start_payload: Option<&str>,
    ) -> Option<Ctx> {
        let tg_id = i64::try_from(from.id.0).unwrap_or(0);
        let hint = lang_hint(from.language_code.as_deref());
        let customer = if private {
            let profile = TelegramProfile {
                id: tg_id,
                first_name: from.first_name.clone(),
                last_name: from.last_name.clone(),
                username: from.username.clone(),
                language_code: from.language_code.clone(),
            };
            match self.app().telegram_customer(&profile, start_payload).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "bot: customer lookup failed");
                    self.say(chat, &text::error(hint, &e), None).await;
                    return None;
                }
            }
        } else {
            None
        };
        if customer.as_ref().is_some_and(|c| c.disabled) {
            let lang = customer.as_ref().map(|c| c.language).unwrap_or(hint);
            self.say(chat, &tr(lang, "bot-banned"), None).await;
            return None;
        }
        let actor = match self.app().actor_for_telegram(tg_id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                if private {
                    return None;
                }
                // In the staff chat, people without an account may look but not act.
                Actor {
                    user_id: None,
                    label: format!("tg:{tg_id}"),
                    permissions: Default::default(),
                    roles: Vec::new(),
                    session_id: None,
                    request_id: None,
                }
            }
            Err(e) if e.code == ErrorCode::AccountDisabled => {
                self.say(chat, &tr(hint, "bot-banned"), None).await;
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bot: actor lookup failed");
                return None;
            }
        };
        let lang = if private {
            customer.as_ref().map(|c| c.language).unwrap_or(hint)
        } else {
            self.cfg().admin_lang
        };
        if private {
            self.remember_lang(tg_id, lang);
        }
        Some(Ctx {
            chat,
            private,
            tg_id,
            lang,
            actor,
            customer,
            edit,
            edit_is_text,
        })
    }

    /// The dialogue of a chat.
    pub(crate) async fn dialogue(&self, chat: i64) -> Dialogue {
        match self.app().bot_dialogue(chat).await {
            Ok(s) => Dialogue::load(s.as_deref()),
            Err(e) => {
                tracing::warn!(error = %e, "bot: reading a dialogue failed");
                Dialogue::default()
            }
        }
    }

    /// Stores the dialogue of a chat.
    pub(crate) async fn save_dialogue(&self, chat: i64, d: &Dialogue) {
        if let Err(e) = self
            .app()
            .set_bot_dialogue(chat, d.store().as_deref())
            .await
        {
            tracing::warn!(error = %e, "bot: storing a dialogue failed");
        }
    }

    /// Sends a plain HTML message, retrying once after a 429; errors are logged.
    pub(crate) async fn say(
        &self,
        chat: i64,
        html: &str,
        kb: Option<teloxide::types::InlineKeyboardMarkup>,
    ) -> Option<MessageId> {
        for _ in 0..3 {
            let mut req = self
                .bot()
                .send_message(ChatId(chat), html)
                .parse_mode(ParseMode::Html)
                .link_preview_options(no_preview());
            if let Some(k) = kb.clone() {
                req = req.reply_markup(k);
            }
            match req.await {
                Ok(m) => return Some(m.id),
                Err(RequestError::RetryAfter(s)) => tokio::time::sleep(s.duration()).await,
                Err(e) => {
                    tracing::warn!(chat, error = %e, "bot: sendMessage failed");
                    return None;
                }
            }
        }
        None
    }
}

/// Link previews off: links in our messages are subscription URLs, not articles.
pub(crate) fn no_preview() -> teloxide::types::LinkPreviewOptions {
    teloxide::types::LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// What to show on the button press itself (the small toast or an alert box).
pub(crate) enum Note {
    /// Nothing.
    Quiet,
    /// A short toast.
    Toast(String),
    /// A box the person must dismiss.
    Alert(String),
}

/// The language a Telegram client reports, defaulting to Persian.
pub(crate) fn lang_hint(code: Option<&str>) -> Lang {
    code.and_then(Lang::parse).unwrap_or(Lang::Fa)
}

/// The updates of a `getUpdates` answer one by one: one that does not parse becomes an
/// `Error` update (logged and ignored) so the offset still moves past it.
fn salvage(raw: &str) -> Vec<Update> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) else {
        return Vec::new();
    };
    let items = v
        .get("result")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for item in items {
        let id = item
            .get("update_id")
            .and_then(serde_json::Value::as_u64)
            .and_then(|i| u32::try_from(i).ok());
        match serde_json::from_value::<Update>(item.clone()) {
            Ok(u) => out.push(u),
            Err(e) => {
                tracing::warn!(error = %e, update = ?id, "bot: skipping an unreadable update");
                if let Some(id) = id {
                    out.push(Update {
                        id: teloxide::types::UpdateId(id),
                        kind: UpdateKind::Error(item),
                    });
                }
            }
        }
    }
    out
}

fn chat_of(u: &Update) -> i64 {
    match &u.kind {
        UpdateKind::Message(m) => m.chat.id.0,
        UpdateKind::CallbackQuery(q) => match &q.message {
            Some(m) => m.chat().id.0,
            None => i64::try_from(q.from.id.0).unwrap_or(0),
        },
        UpdateKind::PreCheckoutQuery(q) => i64::try_from(q.from.id.0).unwrap_or(0),
        _ => 0,
    }
}
