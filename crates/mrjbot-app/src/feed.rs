//! The in-memory read path of subscription links: MRJBot's hottest endpoint.
//!
//! Every VPN app re-fetches its subscription every few hours, so `/sub/{token}` is
//! answered from memory, never from the database:
//!
//! * an index of every subscription that has a link, keyed by the SHA-256 of its token
//!   (lookups compare digests, so response time says nothing about how close a guess
//!   was, and an unknown token costs the same hash-and-miss as any other), in 16 shards
//!   behind read-write locks;
//! * the topology (nodes, inbounds, plan regions, the seller's settings), swapped
//!   whole when any of it changes;
//! * per subscription, the documents already rendered, reused until the subscription,
//!   the topology or the clock (expiry, days left) makes them stale.
//!
//! Exactness: every change is announced inside its transaction (PostgreSQL `NOTIFY`,
//! see `mrjbot_db::feed`) and applied locally right after commit, before the request
//! that made it returns. Reloads read the committed row under one lock, so the last
//! reload always sees the last commit and a stale read can never overwrite a newer one.
//! Other replicas apply the notification within milliseconds; after a lost listener
//! connection (or a failed reload) the whole index is reloaded.

use crate::App;
use crate::subsettings::SubscriptionSettings;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use mrjbot_db::feed::{self as repo, FeedSub};
use mrjbot_db::nodes::{InboundRow, NodeRow};
use mrjbot_domain::document::{self, ClashOptions, Format, SingBoxOptions, UaRules};
use mrjbot_domain::proxy::{Credentials, InboundSettings, Proxy, ShareLink, Tls, Transport};
use mrjbot_domain::share::{self, InboundSpec};
use mrjbot_domain::subscription::SubscriptionState;
use mrjbot_domain::{
    Bytes as ByteCount, Network, Protocol, Security, SubscriptionStatus, Timestamp,
};
use mrjbot_i18n::Lang;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const SHARDS: usize = 16;
/// How often a replica reads back the usage totals other replicas counted.
const USAGE_REFRESH: Duration = Duration::from_secs(10);
const USAGE_REFRESH_MS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;
/// Longest a rendered document is reused even if nothing changed (remarks carry
/// remaining traffic and days, which are refreshed at least this often).
const MAX_FRESH_MS: i64 = 60_000;

/// What changed, for the read path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// One subscription (created, changed, rotated, revoked, deleted).
    Sub(i64),
    /// Every subscription of a user (renamed, deleted).
    User(i64),
    /// Nodes, inbounds, plans or the subscription settings.
    Topology,
    /// Signed-in actors (logout, password, roles): cached actors are dropped.
    Actors,
}

impl Changed {
    /// The notification payload.
    pub fn payload(self) -> String {
        match self {
            Changed::Sub(id) => format!("s:{id}"),
            Changed::User(id) => format!("u:{id}"),
            Changed::Topology => "t".into(),
            Changed::Actors => "a".into(),
        }
    }

    fn parse(p: &str) -> Option<Changed> {
        match p.split_once(':') {
            Some(("s", id)) => id.parse().ok().map(Changed::Sub),
            Some(("u", id)) => id.parse().ok().map(Changed::User),
            None if p == "t" => Some(Changed::Topology),
            None if p == "a" => Some(Changed::Actors),
            _ => None,
        }
    }
}

/// An inbound ready to produce links.
struct Inbound {
    tag: String,
    /// The stored settings as JSON (what node agents get).
    raw: serde_json::Value,
    protocol: Protocol,
    network: Network,
    security: Security,
    port: u16,
    settings: InboundSettings,
}

struct Node {
    id: i64,
    /// Marked down by the health sweep (its agent stopped heartbeating).
    down: bool,
    name: String,
    address: String,
    region: Option<String>,
    ip_type: String,
    inbounds: Vec<Inbound>,
}

/// Everything but the subscriptions.
pub(crate) struct Topology {
    generation: u64,
    nodes: Vec<Node>,
    plan_regions: HashMap<i64, String>,
    pub(crate) settings: SubscriptionSettings,
    rules: UaRules,
    /// Formats already chosen per User-Agent (apps send a handful of distinct ones).
    picked: RwLock<HashMap<Box<str>, Format>>,
    lang: Lang,
}

impl Topology {
    fn build(t: repo::FeedTopology, generation: u64) -> Topology {
        let settings = SubscriptionSettings::from_stored(t.settings.as_deref());
        let rules = if settings.ua_rules.is_empty() {
            UaRules::new(&document::default_ua_rules())
        } else {
            UaRules::new(&settings.ua_rules)
        }
        .unwrap_or_else(|_| UaRules::default());
        let lang = Lang::parse(&settings.language).unwrap_or(Lang::En);
        let mut by_node: HashMap<i64, Vec<Inbound>> = HashMap::new();
        for i in t.inbounds {
            if let Some(ib) = inbound_of(&i) {
                by_node.entry(i.node_id).or_default().push(ib);
            }
        }
        let nodes = t
            .nodes
            .into_iter()
            .filter(|n| n.is_enabled)
            .map(|n: NodeRow| Node {
                inbounds: by_node.remove(&n.id).unwrap_or_default(),
                id: n.id,
                down: n.status == "down",
                name: n.name,
                address: n.address,
                region: n.region,
                ip_type: n.ip_type,
            })
            .collect();
        Topology {
            generation,
            nodes,
            plan_regions: t.plan_regions.into_iter().collect(),
            settings,
            rules,
            picked: RwLock::new(HashMap::new()),
            lang,
        }
    }

    /// The public base URL of links: the configured one, else the request's.
    fn base_url(&self, request_base: impl FnOnce() -> String) -> std::borrow::Cow<'_, str> {
        if self.settings.public_url.is_empty() {
            request_base().into()
        } else {
            self.settings.public_url.as_str().into()
        }
    }

    /// The document format for `ua`, memoised (regex matching costs more than the rest
    /// of a cached answer).
    fn pick(&self, ua: &str) -> Format {
        if let Ok(m) = self.picked.read()
            && let Some(f) = m.get(ua)
        {
            return *f;
        }
        let f = self.rules.pick(ua);
        if ua.len() <= 256
            && let Ok(mut m) = self.picked.write()
            && m.len() < 4096
        {
            m.insert(ua.into(), f);
        }
        f
    }

    fn empty() -> Topology {
        Topology::build(repo::FeedTopology::default(), 0)
    }

    /// The nodes serving `sub`: its pinned node, else every enabled node of its IP type
    /// (and of its plan's region, when the plan has one).
    fn nodes_for<'a>(&'a self, sub: &'a Sub) -> impl Iterator<Item = &'a Node> + 'a {
        let region = sub.plan_id.and_then(|p| self.plan_regions.get(&p));
        self.nodes.iter().filter(move |n| match sub.node_id {
            Some(id) => n.id == id,
            None => {
                n.ip_type == sub.ip_type
                    && region.is_none_or(|r| n.region.as_deref() == Some(r.as_str()))
            }
        })
    }

    /// The nodes a customer's links point at: those of [`Topology::nodes_for`] without
    /// the nodes marked down, so apps stop trying a dead server, unless every one of
    /// them is down or the subscription is pinned (constant IP: the customer keeps their
    /// address and waits for it to return).
    fn link_nodes_for<'a>(&'a self, sub: &'a Sub) -> Vec<&'a Node> {
        let all: Vec<&Node> = self.nodes_for(sub).collect();
        if sub.node_id.is_some() || all.iter().all(|n| n.down) {
            return all;
        }
        all.into_iter().filter(|n| !n.down).collect()
    }
}

fn inbound_of(i: &InboundRow) -> Option<Inbound> {
    if !i.is_enabled {
        return None;
    }
    let settings = match serde_json::from_str::<InboundSettings>(&i.settings) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(inbound = i.id, error = %e, "inbound settings unreadable; inbound left out of links");
            return None;
        }
    };
    Some(Inbound {
        tag: i.tag.clone(),
        raw: serde_json::from_str(&i.settings).unwrap_or(serde_json::Value::Null),
        protocol: Protocol::parse(&i.protocol)?,
        network: Network::parse(&i.network)?,
        security: Security::parse(&i.security)?,
        port: u16::try_from(i.port).ok()?,
        settings,
    })
}

/// A finished response: body plus the headers the apps read.
pub struct SubDocument {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Bytes,
    /// Extra headers (`subscription-userinfo`, `profile-title`, ...).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    format: Format,
    generation: u64,
    base_url: String,
    fresh_until: i64,
    /// Counted in [`CACHED_BYTES`] (kept in a cache, not just served once).
    counted: bool,
}

/// Bytes of rendered documents held in caches, across the process. Documents are cached
/// only while this stays under [`CACHE_BUDGET`]: hot links (apps refreshing often, a
/// benchmark) are served from cache, and memory stays bounded however many distinct
/// subscriptions are fetched in a minute.
static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);
const CACHE_BUDGET: usize = 16 * 1024 * 1024;

impl SubDocument {
    fn weight(&self) -> usize {
        self.body.len()
            + self.base_url.len()
            + self
                .headers
                .iter()
                .map(|(_, v)| v.len() + 64)
                .sum::<usize>()
            + 128
    }
}

impl Drop for SubDocument {
    fn drop(&mut self) {
        if self.counted {
            CACHED_BYTES.fetch_sub(self.weight(), Ordering::Relaxed);
        }
    }
}

/// A subscription as the read path keeps it: the fields documents need, compact
/// (enums instead of strings, boxed strings without spare capacity).
pub(crate) struct Sub {
    id: i64,
    plan_id: Option<i64>,
    status: SubscriptionStatus,
    expires_at: Option<i64>,
    hold_days: i64,
    data_limit_bytes: Option<i64>,
    /// Moved by usage reports in place (see [`App::feed_add_usage`]).
    used_bytes: std::sync::atomic::AtomicI64,
    ip_type: &'static str,
    node_id: Option<i64>,
    /// The UUID as a number (16 bytes instead of a 36-character string), or the text
    /// when it is not a canonical UUID (imported credentials).
    uuid: u128,
    uuid_text: Option<Box<str>>,
    credential_secret: Box<str>,
    username: Box<str>,
}

/// Parses a canonical `8-4-4-4-12` hex UUID.
fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

fn format_uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Sub {
    fn from_row(r: FeedSub) -> Sub {
        Sub {
            id: r.id,
            plan_id: r.plan_id,
            status: SubscriptionStatus::parse(&r.status).unwrap_or(SubscriptionStatus::Disabled),
            expires_at: r.expires_at,
            hold_days: r.hold_days,
            data_limit_bytes: r.data_limit_bytes,
            used_bytes: std::sync::atomic::AtomicI64::new(r.used_bytes),
            ip_type: if r.ip_type == "constant" {
                "constant"
            } else {
                "dynamic"
            },
            node_id: r.node_id,
            uuid: parse_uuid(&r.credential_uuid).unwrap_or(0),
            uuid_text: parse_uuid(&r.credential_uuid)
                .is_none()
                .then(|| r.credential_uuid.into_boxed_str()),
            credential_secret: r.credential_secret.into_boxed_str(),
            // Telegram-only customers have no user name: name the file after the account.
            username: r
                .username
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| format!("user{}", r.user_id))
                .into_boxed_str(),
        }
    }
}

struct Entry {
    sub: Sub,
    rendered: Mutex<Vec<Arc<SubDocument>>>,
}

/// The index. See the module docs.
pub(crate) struct SubIndex {
    shards: Vec<RwLock<HashMap<u128, Arc<Entry>>>>,
    ids: Mutex<HashMap<i64, u128>>,
    topology: RwLock<Arc<Topology>>,
    generation: AtomicU64,
    /// Grows with every change of a subscription or of the topology (caches built from
    /// the index compare it).
    changes: AtomicU64,
    reload: tokio::sync::Mutex<()>,
    loaded: tokio::sync::watch::Sender<bool>,
    dirty: AtomicBool,
}

impl Default for SubIndex {
    fn default() -> Self {
        SubIndex {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            ids: Mutex::new(HashMap::new()),
            topology: RwLock::new(Arc::new(Topology::empty())),
            generation: AtomicU64::new(1),
            changes: AtomicU64::new(1),
            reload: tokio::sync::Mutex::new(()),
            loaded: tokio::sync::watch::channel(false).0,
            dirty: AtomicBool::new(false),
        }
    }
}

/// The index key of a token: the first 128 bits of its SHA-256 (collision-free at any
/// realistic number of subscriptions, half the memory of the full digest).
fn key_of(token: &str) -> u128 {
    let d = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    u128::from_le_bytes(k)
}

fn shard_of(key: &u128) -> usize {
    (*key % SHARDS as u128) as usize
}

impl SubIndex {
    fn get(&self, token: &str) -> Option<Arc<Entry>> {
        let key = key_of(token);
        let shard = self.shards[shard_of(&key)].read().ok()?;
        shard.get(&key).cloned()
    }

    fn topology(&self) -> Arc<Topology> {
        match self.topology.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn put(&self, row: FeedSub) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        // The token is the lookup key's preimage; the entry never needs it again.
        let key = key_of(&row.token);
        let sub = Sub::from_row(row);
        let id = sub.id;
        let Ok(mut ids) = self.ids.lock() else { return };
        if let Some(old) = ids.insert(id, key)
            && old != key
            && let Ok(mut shard) = self.shards[shard_of(&old)].write()
        {
            shard.remove(&old);
        }
        if let Ok(mut shard) = self.shards[shard_of(&key)].write() {
            shard.insert(
                key,
                Arc::new(Entry {
                    sub,
                    rendered: Mutex::new(Vec::new()),
                }),
            );
        }
    }

    fn remove(&self, id: i64) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        let Ok(mut ids) = self.ids.lock() else { return };
        if let Some(old) = ids.remove(&id)
            && let Ok(mut shard) = self.shards[shard_of(&old)].write()
        {
            shard.remove(&old);
        }
    }

    /// Drops rendered documents that are stale, so memory holds only what was served
    /// in the last minute or two, not a document for every subscription ever fetched.
    fn sweep(&self, now: i64) {
        for shard in &self.shards {
            let entries: Vec<Arc<Entry>> = match shard.read() {
                Ok(s) => s.values().cloned().collect(),
                Err(_) => continue,
            };
            for e in entries {
                if let Ok(mut docs) = e.rendered.lock()
                    && !docs.is_empty()
                {
                    docs.retain(|d| d.fresh_until > now);
                    docs.shrink_to_fit();
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.ids.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Formats for remarks and the page.
struct Facts {
    status: SubscriptionStatus,
    days_left: Option<i64>,
    used: u64,
    limit: Option<u64>,
}

fn facts(sub: &Sub, now: Timestamp) -> Facts {
    let st = SubscriptionState {
        status: sub.status,
        expires_at: sub.expires_at.map(Timestamp::from_millis),
        hold_days: sub.hold_days,
        data_limit: sub.data_limit_bytes.map(ByteCount::from_i64),
        used: ByteCount::from_i64(sub.used_bytes.load(Ordering::Relaxed)),
        lifetime_used: ByteCount::from_i64(0),
    };
    let status = st.evaluate(now);
    let days_left = match (status, sub.expires_at) {
        (SubscriptionStatus::OnHold, _) => Some(sub.hold_days),
        (_, Some(e)) => Some(((e - now.millis()).max(0) + DAY_MS - 1) / DAY_MS),
        (_, None) => None,
    };
    Facts {
        status,
        days_left,
        used: u64::try_from(sub.used_bytes.load(Ordering::Relaxed)).unwrap_or(0),
        limit: sub.data_limit_bytes.map(|l| u64::try_from(l).unwrap_or(0)),
    }
}

/// When the remarks or the status of `sub` next change by the clock alone.
fn fresh_until(sub: &Sub, now: i64) -> i64 {
    let mut until = now + MAX_FRESH_MS;
    if let Some(e) = sub.expires_at {
        let rem = e - now;
        if rem > 0 {
            let whole_days = (rem - 1) / DAY_MS;
            until = until.min(now + rem - whole_days * DAY_MS);
        }
    }
    until
}

/// The regional-indicator flag of a region that starts with a two-letter country
/// code (`DE`, `de-frankfurt`); empty otherwise.
fn flag(region: Option<&str>) -> String {
    let Some(r) = region else {
        return String::new();
    };
    let code: Vec<u8> = r.bytes().take(2).collect();
    let delimited = r.len() == 2
        || r.as_bytes()
            .get(2)
            .is_some_and(|b| !b.is_ascii_alphabetic());
    if code.len() != 2 || !code.iter().all(u8::is_ascii_alphabetic) || !delimited {
        return String::new();
    }
    code.iter()
        .filter_map(|b| char::from_u32(0x1F1E6 + u32::from(b.to_ascii_uppercase() - b'A')))
        .collect()
}

fn status_key(s: SubscriptionStatus) -> &'static str {
    s.as_str()
}

/// Fills the remark placeholders of one link.
#[allow(clippy::too_many_arguments)]
fn remark_vars(
    name: &str,
    sub: &Sub,
    f: &Facts,
    node: Option<&Node>,
    protocol: &str,
    transport: &str,
    lang: Lang,
    offset_min: i32,
) -> Option<String> {
    let bytes = |b: u64| mrjbot_i18n::format_bytes(b, lang);
    let date = |l: Lang| {
        sub.expires_at
            .map(|e| mrjbot_i18n::format_date_in(e, offset_min, l))
            .unwrap_or_else(|| "∞".into())
    };
    Some(match name {
        "USERNAME" => sub.username.to_string(),
        "NODE" => node.map(|n| n.name.clone()).unwrap_or_default(),
        "REGION" => node.and_then(|n| n.region.clone()).unwrap_or_default(),
        "FLAG" => flag(node.and_then(|n| n.region.as_deref())),
        "SERVER" => node.map(|n| n.address.clone()).unwrap_or_default(),
        "PROTOCOL" => protocol.to_owned(),
        "TRANSPORT" => transport.to_owned(),
        "DATA_USED" => bytes(f.used),
        "DATA_LIMIT" => f.limit.map(bytes).unwrap_or_else(|| "∞".into()),
        "DATA_LEFT" => f
            .limit
            .map(|l| bytes(l.saturating_sub(f.used)))
            .unwrap_or_else(|| "∞".into()),
        "DAYS_LEFT" => f
            .days_left
            .map(|d| localize_int(d, lang))
            .unwrap_or_else(|| "∞".into()),
        "EXPIRE_DATE" => date(if lang == Lang::Fa { Lang::En } else { lang }),
        "JALALI_EXPIRE_DATE" => date(Lang::Fa),
        "STATUS_EMOJI" => mrjbot_i18n::status_emoji(status_key(f.status)).to_owned(),
        "STATUS_TEXT" => mrjbot_i18n::t(lang, &format!("sub-status-{}", status_key(f.status))),
        _ => return None,
    })
}

fn localize_int(n: i64, lang: Lang) -> String {
    mrjbot_i18n::format_int(n, lang)
}

/// The links of a subscription right now: one per host of every inbound of every node
/// serving it, or a single placeholder naming the problem when it cannot be used.
fn links_of(sub: &Sub, topo: &Topology, now: Timestamp) -> Vec<ShareLink> {
    let f = facts(sub, now);
    let s = &topo.settings;
    let lang = topo.lang;
    if !f.status.is_usable() {
        let status_text = mrjbot_i18n::t(lang, &format!("sub-status-{}", status_key(f.status)));
        let remark = format!(
            "{} {}",
            mrjbot_i18n::status_emoji(status_key(f.status)),
            mrjbot_i18n::t_args(
                lang,
                "sub-inactive-remark",
                &[
                    ("status", status_text.as_str().into()),
                    ("bot", renew_where(s).as_str().into()),
                ],
            )
        );
        return vec![placeholder(remark)];
    }
    let creds = Credentials {
        uuid: match &sub.uuid_text {
            Some(t) => t.to_string(),
            None => format_uuid(sub.uuid),
        },
        secret: sub.credential_secret.to_string(),
    };
    let mut out = Vec::new();
    for node in topo.link_nodes_for(sub) {
        for ib in &node.inbounds {
            let spec = InboundSpec {
                protocol: ib.protocol,
                network: ib.network,
                security: ib.security,
                port: ib.port,
                address: &node.address,
                settings: &ib.settings,
            };
            let protocol = ib.protocol.as_str();
            let transport = ib.network.as_str();
            let remark = |template: &str| {
                share::expand_template(template, |name| {
                    remark_vars(
                        name,
                        sub,
                        &f,
                        Some(node),
                        protocol,
                        transport,
                        lang,
                        s.utc_offset_minutes,
                    )
                })
                .trim()
                .to_owned()
            };
            out.extend(share::links_for(&creds, &spec, &s.remark_template, &remark));
        }
    }
    out
}

fn renew_where(s: &SubscriptionSettings) -> String {
    if !s.bot_username.is_empty() {
        s.bot_username.clone()
    } else if !s.support_url.is_empty() {
        s.support_url.clone()
    } else {
        s.title.clone()
    }
}

/// A link that connects nowhere, carrying a message in its remark: what the apps show
/// for an expired, used-up or disabled subscription. It holds no real credentials.
fn placeholder(remark: String) -> ShareLink {
    ShareLink {
        remark,
        host: "127.0.0.1".into(),
        port: 1,
        proxy: Proxy::Vless {
            uuid: "00000000-0000-4000-8000-000000000000".into(),
            flow: String::new(),
            transport: Transport::tcp(),
            tls: Tls::None,
        },
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn header(v: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(v).ok()
}

/// A file name for `content-disposition`: ASCII letters, digits, `-` and `_` only.
fn file_name(s: &str) -> String {
    let n: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if n.is_empty() {
        "subscription".into()
    } else {
        n
    }
}

fn render(
    sub: &Sub,
    token: &str,
    topo: &Topology,
    format: Format,
    base_url: &str,
    now: Timestamp,
) -> SubDocument {
    let links = links_of(sub, topo, now);
    let s = &topo.settings;
    let body = match format {
        Format::Base64 => document::base64_list(&links, ShareLink::render),
        Format::Plain => document::plain_list(&links, ShareLink::render),
        Format::ClashMeta => document::clash_meta(
            &links,
            &ClashOptions {
                title: s.title.clone(),
            },
        ),
        Format::Clash => document::clash(
            &links,
            &ClashOptions {
                title: s.title.clone(),
            },
        ),
        Format::SingBox => document::sing_box(
            &links,
            &SingBoxOptions {
                title: s.title.clone(),
                tun: true,
            },
        ),
    };
    let expire_s = sub.expires_at.map_or(0, |e| e.max(0) / 1000);
    let total = sub.data_limit_bytes.unwrap_or(0).max(0);
    let mut headers = Vec::with_capacity(7);
    let mut push = |name: &'static str, v: Option<HeaderValue>| {
        if let Some(v) = v {
            headers.push((HeaderName::from_static(name), v));
        }
    };
    push(
        "subscription-userinfo",
        header(&format!(
            "upload=0; download={}; total={total}; expire={expire_s}",
            sub.used_bytes.load(Ordering::Relaxed).max(0)
        )),
    );
    push(
        "profile-update-interval",
        header(&s.update_interval_hours.to_string()),
    );
    push(
        "profile-title",
        header(&format!("base64:{}", b64(&s.title))),
    );
    push(
        "content-disposition",
        header(&format!(
            "attachment; filename=\"{}.{}\"",
            file_name(&sub.username),
            format.extension()
        )),
    );
    if !s.support_url.is_empty() {
        push("support-url", header(&s.support_url));
    }
    push(
        "profile-web-page-url",
        header(&format!("{base_url}/sub/{token}")),
    );
    if !s.announce.is_empty() {
        push("announce", header(&format!("base64:{}", b64(&s.announce))));
    }
    SubDocument {
        content_type: format.content_type(),
        body: Bytes::from(body),
        headers,
        format,
        generation: topo.generation,
        base_url: base_url.to_owned(),
        fresh_until: fresh_until(sub, now.millis()),
        counted: false,
    }
}

/// What the subscription page shows.
pub struct SubPage {
    /// Status at this moment.
    pub status: SubscriptionStatus,
    /// Owner's user name.
    pub username: String,
    /// Expiry (epoch ms), if any.
    pub expires_at: Option<i64>,
    /// Whole days left (rounded up), or the hold length of an on-hold subscription.
    pub days_left: Option<i64>,
    /// Bytes used this period.
    pub used: u64,
    /// Data cap, if any.
    pub limit: Option<u64>,
    /// The share links (rendered), with their remarks.
    pub links: Vec<(String, String)>,
    /// The page/subscription URL.
    pub url: String,
    /// Shop settings (title, support, bot, language, time zone).
    pub settings: SubscriptionSettings,
}

impl App {
    /// Waits until the read path has loaded (right after start); immediate afterwards.
    pub async fn sub_ready(&self) {
        if *self.inner.subs.loaded.borrow() {
            return;
        }
        let mut rx = self.inner.subs.loaded.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// The document for `token`: `format` if asked for, else chosen by `user_agent`.
    /// `None` for an unknown, rotated or revoked token. Answers from memory.
    /// `request_base` gives `scheme://host` of the request; it is called only when no
    /// public URL is configured.
    pub fn sub_document(
        &self,
        token: &str,
        format: Option<Format>,
        user_agent: &str,
        request_base: impl FnOnce() -> String,
    ) -> Option<Arc<SubDocument>> {
        let index = &self.inner.subs;
        let entry = index.get(token)?;
        let topo = index.topology();
        let format = format.unwrap_or_else(|| topo.pick(user_agent));
        let now = self.now();
        let base = topo.base_url(request_base);
        let base = base.as_ref();
        if let Ok(cache) = entry.rendered.lock()
            && let Some(doc) = cache.iter().find(|d| {
                d.format == format
                    && d.generation == topo.generation
                    && d.fresh_until > now.millis()
                    && d.base_url == base
            })
        {
            return Some(doc.clone());
        }
        let mut doc = render(&entry.sub, token, &topo, format, base, now);
        let weight = doc.weight();
        if CACHED_BYTES.fetch_add(weight, Ordering::Relaxed) + weight > CACHE_BUDGET {
            CACHED_BYTES.fetch_sub(weight, Ordering::Relaxed);
            return Some(Arc::new(doc));
        }
        doc.counted = true;
        let doc = Arc::new(doc);
        if let Ok(mut cache) = entry.rendered.lock() {
            // One document per subscription: a customer's app asks for one format, and a
            // second format replacing the first keeps the budget for other customers.
            cache.clear();
            cache.push(doc.clone());
        }
        Some(doc)
    }

    /// What the subscription page shows for `token`; `None` when unknown.
    pub fn sub_page(&self, token: &str, request_base: impl FnOnce() -> String) -> Option<SubPage> {
        let index = &self.inner.subs;
        let entry = index.get(token)?;
        let topo = index.topology();
        let now = self.now();
        let sub = &entry.sub;
        let f = facts(sub, now);
        let links = if f.status.is_usable() {
            links_of(sub, &topo, now)
                .into_iter()
                .map(|l| (l.remark.clone(), l.render()))
                .collect()
        } else {
            Vec::new()
        };
        let base = topo.base_url(request_base);
        Some(SubPage {
            status: f.status,
            username: sub.username.to_string(),
            expires_at: sub.expires_at,
            days_left: f.days_left,
            used: f.used,
            limit: f.limit,
            links,
            url: format!("{base}/sub/{token}"),
            settings: topo.settings.clone(),
        })
    }

    /// Announces `change` in `tx`, commits, and applies it to this replica's read path
    /// before returning, so the caller's next request already sees it.
    pub(crate) async fn commit_changed(
        &self,
        mut tx: mrjbot_db::Tx,
        change: Changed,
    ) -> crate::AppResult<()> {
        repo::announce(tx.conn(), &change.payload()).await?;
        tx.commit().await?;
        self.feed_changed(change).await;
        Ok(())
    }

    /// Like [`App::commit_changed`] for any number of changes (none: a plain commit).
    pub(crate) async fn commit_changes(
        &self,
        mut tx: mrjbot_db::Tx,
        changes: &[Changed],
    ) -> crate::AppResult<()> {
        for c in changes {
            repo::announce(tx.conn(), &c.payload()).await?;
        }
        tx.commit().await?;
        for c in changes {
            self.feed_changed(*c).await;
        }
        Ok(())
    }

    /// Tells other replicas that signed-in actors changed (logout, roles, password), so
    /// they drop their cached actors now instead of after the cache TTL.
    pub(crate) fn announce_actors(&self) {
        if self.db().engine() == mrjbot_db::Engine::Postgres {
            let db = self.db().clone();
            tokio::spawn(async move {
                if let Err(e) = repo::announce_now(&db, &Changed::Actors.payload()).await {
                    tracing::debug!(error = %e, "announcing an actor change failed");
                }
            });
        }
    }

    /// Number of subscriptions the read path holds.
    pub fn sub_index_len(&self) -> usize {
        self.inner.subs.len()
    }

    /// Applies a committed change to this replica's read path (the transaction announced
    /// it to the others). Never fails: a failed reload schedules a full one.
    pub async fn feed_changed(&self, change: Changed) {
        if let Err(e) = self.apply_change(change).await {
            tracing::warn!(error = %e, ?change, "read path reload failed; a full reload follows");
            self.inner.subs.dirty.store(true, Ordering::SeqCst);
        }
    }

    async fn apply_change(&self, change: Changed) -> crate::AppResult<()> {
        if change == Changed::Actors {
            self.inner.caches.forget_all_actors();
            return Ok(());
        }
        let index = &self.inner.subs;
        let _guard = index.reload.lock().await;
        let mut conn = self.db().read().await?;
        match change {
            Changed::Sub(id) => {
                let mut rows = repo::subs_by_ids(conn.conn(), &[id]).await?;
                match rows.pop() {
                    Some(row) => index.put(row),
                    None => index.remove(id),
                }
            }
            Changed::User(user) => {
                let ids = repo::sub_ids_of_user(conn.conn(), user).await?;
                let rows = repo::subs_by_ids(conn.conn(), &ids).await?;
                let present: Vec<i64> = rows.iter().map(|r| r.id).collect();
                for id in ids.iter().filter(|id| !present.contains(id)) {
                    index.remove(*id);
                }
                for row in rows {
                    index.put(row);
                }
            }
            Changed::Actors => {}
            Changed::Topology => {
                let t = repo::topology(conn.conn()).await?;
                let generation = index.generation.fetch_add(1, Ordering::SeqCst) + 1;
                let topo = Arc::new(Topology::build(t, generation));
                match index.topology.write() {
                    Ok(mut g) => *g = topo,
                    Err(p) => *p.into_inner() = topo,
                }
                index.changes.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Reloads everything (start, reconnect, recovery).
    pub async fn feed_reload_all(&self) -> crate::AppResult<usize> {
        let index = &self.inner.subs;
        index.dirty.store(false, Ordering::SeqCst);
        let result = async {
            let _guard = index.reload.lock().await;
            let mut conn = self.db().read().await?;
            let t = repo::topology(conn.conn()).await?;
            let mut keep = std::collections::HashSet::new();
            let n = repo::for_each_sub(conn.conn(), |row| {
                keep.insert(row.id);
                index.put(row);
            })
            .await?;
            let generation = index.generation.fetch_add(1, Ordering::SeqCst) + 1;
            let topo = Arc::new(Topology::build(t, generation));
            match index.topology.write() {
                Ok(mut g) => *g = topo,
                Err(p) => *p.into_inner() = topo,
            }
            index.changes.fetch_add(1, Ordering::SeqCst);
            let stale: Vec<i64> = index
                .ids
                .lock()
                .map(|m| m.keys().filter(|id| !keep.contains(id)).copied().collect())
                .unwrap_or_default();
            for id in stale {
                index.remove(id);
            }
            Ok::<usize, crate::AppError>(n)
        }
        .await;
        match result {
            Ok(n) => {
                index.loaded.send_replace(true);
                Ok(n)
            }
            Err(e) => {
                index.dirty.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Keeps the read path in step with the store for as long as it runs: loads it,
    /// then applies other replicas' notifications (PostgreSQL) and recovers from lost
    /// connections or failed reloads with a full reload.
    pub async fn run_feed(self) {
        loop {
            // Listen first, then load: a change committed in between is then both in the
            // load and in the queue (applied twice, harmlessly), never in neither.
            let listener = match repo::Listener::connect(self.db()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match self.feed_reload_all().await {
                Ok(n) => tracing::debug!(subscriptions = n, "subscription read path loaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "loading the subscription read path failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            self.follow(listener).await;
        }
    }

    /// Applies notifications until the connection is lost or a full reload is due.
    async fn follow(&self, mut listener: Option<repo::Listener>) {
        let mut last_sweep = self.now().millis();
        // Other replicas count usage too: their totals are read back every few seconds
        // (status changes come by notification at once).
        let mut usage_since = self.now().millis();
        let mut last_usage = std::time::Instant::now();
        loop {
            if listener.is_some() && last_usage.elapsed() >= USAGE_REFRESH {
                last_usage = std::time::Instant::now();
                let now = self.now().millis();
                if let Ok(mut c) = self.db().read().await
                    && let Ok(rows) =
                        repo::used_since(c.conn(), usage_since - 2 * USAGE_REFRESH_MS).await
                {
                    self.feed_usage(&rows, true);
                    usage_since = now;
                }
            }
            if self.inner.subs.dirty.load(Ordering::SeqCst) {
                return;
            }
            let now = self.now().millis();
            if now - last_sweep >= MAX_FRESH_MS {
                self.inner.subs.sweep(now);
                last_sweep = now;
            }
            let Some(l) = listener.as_mut() else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_millis(500), l.recv()).await {
                Err(_) => {}
                Ok(Ok(Some(payload))) => {
                    if let Some(change) = Changed::parse(&payload) {
                        self.feed_changed(change).await;
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) => return,
            }
        }
    }
}

/// An inbound a node must serve, as the read path knows it.
pub(crate) struct NodeInbound {
    pub tag: String,
    pub protocol: Protocol,
    pub network: Network,
    pub security: Security,
    pub port: u16,
    pub raw: serde_json::Value,
    /// Shadowsocks method (Shadowsocks inbounds).
    pub ss_method: Option<String>,
}

/// A subscription a node must let in now.
pub(crate) struct NodeUser {
    pub sub_id: i64,
    pub status: SubscriptionStatus,
    pub uuid: String,
    pub secret: String,
    pub expires_at: Option<i64>,
    pub hold_days: i64,
    pub data_limit_bytes: Option<i64>,
    pub used_bytes: i64,
    pub username: String,
}

/// What a node serves, read from the index in one pass.
pub(crate) struct NodeView {
    /// The index's change count the view was read at.
    pub changes: u64,
    /// The view holds until this time (epoch ms) unless something changes: the earliest
    /// expiry among its users.
    pub valid_until: i64,
    /// False when the node is disabled or unknown (it serves nobody).
    pub serving: bool,
    pub inbounds: Vec<NodeInbound>,
    /// Sorted by subscription id.
    pub users: Vec<NodeUser>,
}

impl App {
    /// The index's change count (see [`NodeView::changes`]).
    pub(crate) fn feed_changes(&self) -> u64 {
        self.inner.subs.changes.load(Ordering::SeqCst)
    }

    /// Who may use `node_id` at `now`: exactly the subscriptions whose documents list the
    /// node, and only while they are usable.
    pub(crate) fn node_view(&self, node_id: i64, now: Timestamp) -> NodeView {
        let index = &self.inner.subs;
        let changes = index.changes.load(Ordering::SeqCst);
        let topo = index.topology();
        let mut view = NodeView {
            changes,
            valid_until: i64::MAX,
            serving: false,
            inbounds: Vec::new(),
            users: Vec::new(),
        };
        let Some(node) = topo.nodes.iter().find(|n| n.id == node_id) else {
            return view;
        };
        view.serving = true;
        view.inbounds = node
            .inbounds
            .iter()
            .map(|i| NodeInbound {
                tag: i.tag.clone(),
                protocol: i.protocol,
                network: i.network,
                security: i.security,
                port: i.port,
                raw: i.raw.clone(),
                ss_method: (i.protocol == Protocol::Shadowsocks).then(|| {
                    if i.settings.method.is_empty() {
                        share::DEFAULT_SS_METHOD.to_owned()
                    } else {
                        i.settings.method.clone()
                    }
                }),
            })
            .collect();
        let now_ms = now.millis();
        for shard in &index.shards {
            let entries: Vec<Arc<Entry>> = match shard.read() {
                Ok(s) => s.values().cloned().collect(),
                Err(_) => continue,
            };
            for e in entries {
                let sub = &e.sub;
                if !topo.nodes_for(sub).any(|n| n.id == node_id) {
                    continue;
                }
                let status = facts(sub, now).status;
                if let Some(exp) = sub.expires_at
                    && exp > now_ms
                {
                    view.valid_until = view.valid_until.min(exp);
                }
                if !status.is_usable() {
                    continue;
                }
                view.users.push(NodeUser {
                    sub_id: sub.id,
                    status,
                    uuid: match &sub.uuid_text {
                        Some(t) => t.to_string(),
                        None => format_uuid(sub.uuid),
                    },
                    secret: sub.credential_secret.to_string(),
                    expires_at: sub.expires_at,
                    hold_days: sub.hold_days,
                    data_limit_bytes: sub.data_limit_bytes,
                    used_bytes: sub.used_bytes.load(Ordering::Relaxed),
                    username: sub.username.to_string(),
                });
            }
        }
        view.users.sort_by_key(|u| u.sub_id);
        view
    }

    /// Moves the totals of committed usage in this replica's read path in place: `adds`
    /// are (subscription, bytes to add), or with `absolute` the totals themselves. Usage
    /// reports touch thousands of subscriptions; reloading each would cost more than the
    /// report. Status changes are announced and reloaded as usual, and documents pick the
    /// new totals up within their freshness window.
    pub(crate) fn feed_usage(&self, adds: &[(i64, i64)], absolute: bool) {
        let index = &self.inner.subs;
        let Ok(ids) = index.ids.lock() else { return };
        for (id, n) in adds {
            let Some(key) = ids.get(id) else { continue };
            if let Ok(shard) = index.shards[shard_of(key)].read()
                && let Some(e) = shard.get(key)
            {
                if absolute {
                    e.sub.used_bytes.store(*n, Ordering::Relaxed);
                } else {
                    e.sub.used_bytes.fetch_add(*n, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(fresh_until: i64) -> Arc<SubDocument> {
        Arc::new(SubDocument {
            content_type: "text/plain",
            body: Bytes::from_static(b"x"),
            headers: Vec::new(),
            format: Format::Base64,
            generation: 1,
            base_url: String::new(),
            fresh_until,
            counted: false,
        })
    }

    #[test]
    fn sweep_drops_only_stale_documents() {
        let index = SubIndex::default();
        for (id, token) in [(1, "a"), (2, "b")] {
            index.put(FeedSub {
                id,
                user_id: 1,
                plan_id: None,
                token: token.into(),
                status: "active".into(),
                expires_at: None,
                hold_days: 0,
                data_limit_bytes: None,
                used_bytes: 0,
                ip_type: "dynamic".into(),
                node_id: None,
                credential_uuid: "a8308d11-a541-4591-ad00-31cea68f8bee".into(),
                credential_secret: "s".into(),
                version: 1,
                username: Some("u".into()),
            });
        }
        let cached = |token: &str| {
            index
                .get(token)
                .and_then(|e| e.rendered.lock().ok().map(|d| d.len()))
                .unwrap_or(99)
        };
        for (token, until) in [("a", 1_000), ("b", 5_000)] {
            if let Some(e) = index.get(token)
                && let Ok(mut d) = e.rendered.lock()
            {
                d.push(doc(until));
            }
        }
        index.sweep(2_000);
        assert_eq!((cached("a"), cached("b")), (0, 1));
        assert_eq!(index.len(), 2);
        index.remove(1);
        assert!(index.get("a").is_none() && index.get("b").is_some());
    }

    #[test]
    fn uuids_are_kept_as_numbers() {
        let u = "a8308d11-a541-4591-ad00-31cea68f8bee";
        assert_eq!(parse_uuid(u).map(format_uuid).as_deref(), Some(u));
        assert_eq!(parse_uuid("A8308D11-a541-4591-ad00-31cea68f8bee"), None);
        assert_eq!(parse_uuid("not-a-uuid"), None);
        assert_eq!(parse_uuid("a8308d11xa541-4591-ad00-31cea68f8bee"), None);
    }

    #[test]
    fn flags_from_regions() {
        assert_eq!(flag(Some("DE")), "🇩🇪");
        assert_eq!(flag(Some("nl-amsterdam")), "🇳🇱");
        assert_eq!(flag(Some("Germany")), "");
        assert_eq!(flag(None), "");
    }

    #[test]
    fn change_payloads_round_trip() {
        for c in [
            Changed::Sub(7),
            Changed::User(3),
            Changed::Topology,
            Changed::Actors,
        ] {
            assert_eq!(Changed::parse(&c.payload()), Some(c));
        }
        assert_eq!(Changed::parse("x:1"), None);
        assert_eq!(Changed::parse("s:abc"), None);
    }

    #[test]
    fn freshness_stops_at_the_next_day_boundary() {
        let mut sub = Sub::from_row(FeedSub {
            id: 1,
            user_id: 1,
            plan_id: None,
            token: String::new(),
            status: "active".into(),
            expires_at: Some(10 * DAY_MS + 5_000),
            hold_days: 0,
            data_limit_bytes: None,
            used_bytes: 0,
            ip_type: "dynamic".into(),
            node_id: None,
            credential_uuid: String::new(),
            credential_secret: String::new(),
            version: 1,
            username: None,
        });
        assert_eq!(&*sub.username, "user1");
        // 11 days left until 5 s from now, then 10.
        assert_eq!(fresh_until(&sub, 0), 5_000);
        assert_eq!(fresh_until(&sub, 6_000), 6_000 + MAX_FRESH_MS);
        sub.expires_at = None;
        assert_eq!(fresh_until(&sub, 0), MAX_FRESH_MS);
    }
}
