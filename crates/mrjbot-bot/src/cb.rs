//! Callback data: what an inline button means, in at most 64 bytes (Telegram's limit).
//!
//! Buttons carry ids, never state: pressing one loads what it names afresh, so a button on
//! an old message either still makes sense or says it is out of date. Parsing never
//! panics and refuses anything it did not write (a forged or truncated string is
//! `None`).

use mrjbot_domain::PaymentMethod;
use mrjbot_i18n::Lang;

/// Where a plan's checkout leads: what the order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buy {
    /// A new subscription on a plan.
    Plan(i64),
    /// Renewing a subscription with its plan.
    Renew(i64),
    /// Extra GiB for a subscription.
    Traffic(i64, i64),
    /// Wallet top-up of an amount in minor units of the shop currency.
    Topup(i64),
}

/// Broadcast audiences, as buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Every customer.
    All,
    /// With a live subscription.
    Active,
    /// Whose subscriptions all ended.
    Expired,
    /// Never bought.
    NoPurchase,
}

/// Preset reasons staff give when rejecting a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The amount differs from the order.
    Amount,
    /// The money did not arrive.
    NotReceived,
    /// The picture cannot be read.
    Unreadable,
    /// The receipt was used before.
    Duplicate,
}

impl RejectReason {
    /// All presets in button order.
    pub const ALL: [RejectReason; 4] = [
        RejectReason::Amount,
        RejectReason::NotReceived,
        RejectReason::Unreadable,
        RejectReason::Duplicate,
    ];

    fn code(self) -> char {
        match self {
            RejectReason::Amount => 'a',
            RejectReason::NotReceived => 'n',
            RejectReason::Unreadable => 'u',
            RejectReason::Duplicate => 'd',
        }
    }

    /// The fluent key of its text.
    pub fn key(self) -> &'static str {
        match self {
            RejectReason::Amount => "bot-reason-amount",
            RejectReason::NotReceived => "bot-reason-not-received",
            RejectReason::Unreadable => "bot-reason-unreadable",
            RejectReason::Duplicate => "bot-reason-duplicate",
        }
    }
}

/// One button's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cb {
    /// The main menu.
    Menu,
    /// The language picker.
    Languages,
    /// Choose a language.
    Lang(Lang),
    /// "I joined the channel".
    Joined,
    /// Locations of the catalog.
    Buy,
    /// A location (named by one of its plans) → IP types.
    Region(i64),
    /// A location and IP type (constant: true) → durations.
    IpType(i64, bool),
    /// Location, type and duration in days → plans.
    Duration(i64, bool, i64),
    /// A plan's checkout.
    Plan(i64),
    /// Type a discount code for a plan.
    Discount(i64),
    /// Pay for something with a method.
    Pay(Buy, PaymentMethod),
    /// Cancel an unpaid order.
    CancelOrder(i64),
    /// My services.
    Services,
    /// One subscription.
    Sub(i64),
    /// Its link and QR code.
    Link(i64),
    /// Renew: choose how to pay.
    Renew(i64),
    /// Extra traffic: choose an amount.
    Traffic(i64),
    /// Extra traffic of n GiB: choose how to pay.
    TrafficGib(i64, i64),
    /// Ask before rotating the link.
    Rotate(i64),
    /// Rotate the link.
    RotateYes(i64),
    /// Change location: choose one.
    Move(i64),
    /// Move to the location of a node.
    MoveTo(i64, i64),
    /// Help and FAQ.
    Help,
    /// One FAQ answer.
    Faq(u16),
    /// How to import into each app.
    Apps,
    /// The free trial.
    Trial,
    /// Take the free trial.
    TrialYes,
    /// Wallet.
    Wallet,
    /// Top-up amounts.
    Topup,
    /// A top-up amount in minor units: choose how to pay.
    TopupAmount(i64),
    /// Referral link and points.
    Referral,
    /// Turn points into wallet credit.
    Redeem,
    /// Support.
    Support,
    /// Write a new ticket.
    TicketNew,
    /// My tickets.
    Tickets,
    /// One ticket.
    Ticket(i64),
    /// Reply in a ticket.
    TicketReply(i64),
    /// Close a ticket.
    TicketClose(i64),
    /// Staff panel.
    Admin,
    /// Shop numbers.
    Stats,
    /// Receipts waiting for review.
    Queue,
    /// Node health.
    Nodes,
    /// Approve a payment.
    Approve(i64),
    /// Reject a payment: show reasons.
    Reject(i64),
    /// Reject with a preset reason.
    RejectWith(i64, RejectReason),
    /// Reject with a typed reason.
    RejectOther(i64),
    /// Back to Approve / Reject.
    Review(i64),
    /// Start a broadcast.
    Broadcast,
    /// Broadcast audience chosen.
    BroadcastTo(Seg),
    /// Send the drafted broadcast.
    BroadcastSend,
    /// Refresh a broadcast's progress.
    BroadcastStatus(i64),
    /// A customer card for staff.
    User(i64),
    /// Ban (true) or unban a customer.
    Ban(i64, bool),
    /// Staff answers a ticket: ask for the text.
    Answer(i64),
    /// A button that does nothing (labels in keyboards).
    Noop,
}

fn method_code(m: PaymentMethod) -> char {
    match m {
        PaymentMethod::Card => 'c',
        PaymentMethod::Wallet => 'w',
        PaymentMethod::Zarinpal => 'z',
        PaymentMethod::Yookassa => 'y',
        PaymentMethod::Stars => 's',
        PaymentMethod::Cryptopay => 'x',
    }
}

fn method_of(c: &str) -> Option<PaymentMethod> {
    Some(match c {
        "c" => PaymentMethod::Card,
        "w" => PaymentMethod::Wallet,
        "z" => PaymentMethod::Zarinpal,
        "y" => PaymentMethod::Yookassa,
        "s" => PaymentMethod::Stars,
        "x" => PaymentMethod::Cryptopay,
        _ => return None,
    })
}

fn seg_code(s: Seg) -> &'static str {
    match s {
        Seg::All => "all",
        Seg::Active => "act",
        Seg::Expired => "exp",
        Seg::NoPurchase => "new",
    }
}

fn b(v: bool) -> char {
    if v { 'c' } else { 'd' }
}

impl Cb {
    /// The callback data string.
    pub fn encode(self) -> String {
        match self {
            Cb::Menu => "m".into(),
            Cb::Languages => "lg".into(),
            Cb::Lang(l) => format!("l:{}", l.code()),
            Cb::Joined => "j".into(),
            Cb::Buy => "b".into(),
            Cb::Region(p) => format!("br:{p}"),
            Cb::IpType(p, c) => format!("bt:{p}:{}", b(c)),
            Cb::Duration(p, c, d) => format!("bd:{p}:{}:{d}", b(c)),
            Cb::Plan(p) => format!("bp:{p}"),
            Cb::Discount(p) => format!("dc:{p}"),
            Cb::Pay(buy, m) => {
                let m = method_code(m);
                match buy {
                    Buy::Plan(p) => format!("pp:{p}:{m}"),
                    Buy::Renew(s) => format!("pr:{s}:{m}"),
                    Buy::Traffic(s, g) => format!("pa:{s}:{g}:{m}"),
                    Buy::Topup(a) => format!("pt:{a}:{m}"),
                }
            }
            Cb::CancelOrder(o) => format!("oc:{o}"),
            Cb::Services => "s".into(),
            Cb::Sub(s) => format!("sv:{s}"),
            Cb::Link(s) => format!("sl:{s}"),
            Cb::Renew(s) => format!("sr:{s}"),
            Cb::Traffic(s) => format!("sa:{s}"),
            Cb::TrafficGib(s, g) => format!("sg:{s}:{g}"),
            Cb::Rotate(s) => format!("sk:{s}"),
            Cb::RotateYes(s) => format!("sK:{s}"),
            Cb::Move(s) => format!("sm:{s}"),
            Cb::MoveTo(s, n) => format!("sM:{s}:{n}"),
            Cb::Help => "h".into(),
            Cb::Faq(i) => format!("hf:{i}"),
            Cb::Apps => "ha".into(),
            Cb::Trial => "t".into(),
            Cb::TrialYes => "tY".into(),
            Cb::Wallet => "w".into(),
            Cb::Topup => "wt".into(),
            Cb::TopupAmount(a) => format!("wa:{a}"),
            Cb::Referral => "r".into(),
            Cb::Redeem => "rY".into(),
            Cb::Support => "k".into(),
            Cb::TicketNew => "kn".into(),
            Cb::Tickets => "kl".into(),
            Cb::Ticket(t) => format!("kv:{t}"),
            Cb::TicketReply(t) => format!("kr:{t}"),
            Cb::TicketClose(t) => format!("kx:{t}"),
            Cb::Admin => "a".into(),
            Cb::Stats => "as".into(),
            Cb::Queue => "aq".into(),
            Cb::Nodes => "an".into(),
            Cb::Approve(p) => format!("ap:{p}"),
            Cb::Reject(p) => format!("aj:{p}"),
            Cb::RejectWith(p, r) => format!("ar:{p}:{}", r.code()),
            Cb::RejectOther(p) => format!("ao:{p}"),
            Cb::Review(p) => format!("av:{p}"),
            Cb::Broadcast => "ab".into(),
            Cb::BroadcastTo(s) => format!("bs:{}", seg_code(s)),
            Cb::BroadcastSend => "bY".into(),
            Cb::BroadcastStatus(id) => format!("bS:{id}"),
            Cb::User(u) => format!("au:{u}"),
            Cb::Ban(u, yes) => format!("ax:{u}:{}", u8::from(yes)),
            Cb::Answer(t) => format!("ka:{t}"),
            Cb::Noop => "_".into(),
        }
    }

    /// Reads callback data; `None` for anything not written by [`Cb::encode`].
    pub fn parse(data: &str) -> Option<Cb> {
        if data.len() > 64 {
            return None;
        }
        let mut parts = data.split(':');
        let head = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let id = |i: usize| -> Option<i64> {
            let s = rest.get(i)?;
            // Only canonical decimal: no sign, no leading zeros, no spaces.
            if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                return None;
            }
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let flag = |i: usize| -> Option<bool> {
            match *rest.get(i)? {
                "c" => Some(true),
                "d" => Some(false),
                _ => None,
            }
        };
        let arity = |n: usize| (rest.len() == n).then_some(());
        let cb = match head {
            "m" => arity(0).map(|_| Cb::Menu)?,
            "lg" => arity(0).map(|_| Cb::Languages)?,
            "l" => {
                arity(1)?;
                Cb::Lang(Lang::parse(rest[0]).filter(|l| l.code() == rest[0])?)
            }
            "j" => arity(0).map(|_| Cb::Joined)?,
            "b" => arity(0).map(|_| Cb::Buy)?,
            "br" => arity(1).and(id(0)).map(Cb::Region)?,
            "bt" => {
                arity(2)?;
                Cb::IpType(id(0)?, flag(1)?)
            }
            "bd" => {
                arity(3)?;
                Cb::Duration(id(0)?, flag(1)?, id(2)?)
            }
            "bp" => arity(1).and(id(0)).map(Cb::Plan)?,
            "dc" => arity(1).and(id(0)).map(Cb::Discount)?,
            "pp" | "pr" | "pt" => {
                arity(2)?;
                let m = method_of(rest[1])?;
                let x = id(0)?;
                let buy = match head {
                    "pp" => Buy::Plan(x),
                    "pr" => Buy::Renew(x),
                    _ => Buy::Topup(x),
                };
                Cb::Pay(buy, m)
            }
            "pa" => {
                arity(3)?;
                Cb::Pay(Buy::Traffic(id(0)?, id(1)?), method_of(rest[2])?)
            }
            "oc" => arity(1).and(id(0)).map(Cb::CancelOrder)?,
            "s" => arity(0).map(|_| Cb::Services)?,
            "sv" => arity(1).and(id(0)).map(Cb::Sub)?,
            "sl" => arity(1).and(id(0)).map(Cb::Link)?,
            "sr" => arity(1).and(id(0)).map(Cb::Renew)?,
            "sa" => arity(1).and(id(0)).map(Cb::Traffic)?,
            "sg" => {
                arity(2)?;
                Cb::TrafficGib(id(0)?, id(1)?)
            }
            "sk" => arity(1).and(id(0)).map(Cb::Rotate)?,
            "sK" => arity(1).and(id(0)).map(Cb::RotateYes)?,
            "sm" => arity(1).and(id(0)).map(Cb::Move)?,
            "sM" => {
                arity(2)?;
                Cb::MoveTo(id(0)?, id(1)?)
            }
            "h" => arity(0).map(|_| Cb::Help)?,
            "hf" => {
                arity(1)?;
                Cb::Faq(u16::try_from(id(0)?).ok()?)
            }
            "ha" => arity(0).map(|_| Cb::Apps)?,
            "t" => arity(0).map(|_| Cb::Trial)?,
            "tY" => arity(0).map(|_| Cb::TrialYes)?,
            "w" => arity(0).map(|_| Cb::Wallet)?,
            "wt" => arity(0).map(|_| Cb::Topup)?,
            "wa" => arity(1).and(id(0)).map(Cb::TopupAmount)?,
            "r" => arity(0).map(|_| Cb::Referral)?,
            "rY" => arity(0).map(|_| Cb::Redeem)?,
            "k" => arity(0).map(|_| Cb::Support)?,
            "kn" => arity(0).map(|_| Cb::TicketNew)?,
            "kl" => arity(0).map(|_| Cb::Tickets)?,
            "kv" => arity(1).and(id(0)).map(Cb::Ticket)?,
            "kr" => arity(1).and(id(0)).map(Cb::TicketReply)?,
            "kx" => arity(1).and(id(0)).map(Cb::TicketClose)?,
            "ka" => arity(1).and(id(0)).map(Cb::Answer)?,
            "a" => arity(0).map(|_| Cb::Admin)?,
            "as" => arity(0).map(|_| Cb::Stats)?,
            "aq" => arity(0).map(|_| Cb::Queue)?,
            "an" => arity(0).map(|_| Cb::Nodes)?,
            "ap" => arity(1).and(id(0)).map(Cb::Approve)?,
            "aj" => arity(1).and(id(0)).map(Cb::Reject)?,
            "ar" => {
                arity(2)?;
                let r = RejectReason::ALL
                    .into_iter()
                    .find(|r| rest[1].len() == 1 && rest[1].starts_with(r.code()))?;
                Cb::RejectWith(id(0)?, r)
            }
            "ao" => arity(1).and(id(0)).map(Cb::RejectOther)?,
            "av" => arity(1).and(id(0)).map(Cb::Review)?,
            "ab" => arity(0).map(|_| Cb::Broadcast)?,
            "bs" => {
                arity(1)?;
                let s = [Seg::All, Seg::Active, Seg::Expired, Seg::NoPurchase]
                    .into_iter()
                    .find(|s| seg_code(*s) == rest[0])?;
                Cb::BroadcastTo(s)
            }
            "bY" => arity(0).map(|_| Cb::BroadcastSend)?,
            "bS" => arity(1).and(id(0)).map(Cb::BroadcastStatus)?,
            "au" => arity(1).and(id(0)).map(Cb::User)?,
            "ax" => {
                arity(2)?;
                let yes = match rest[1] {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                Cb::Ban(id(0)?, yes)
            }
            "_" => arity(0).map(|_| Cb::Noop)?,
            _ => return None,
        };
        Some(cb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Cb> {
        let big = i64::MAX;
        let mut v = vec![
            Cb::Menu,
            Cb::Languages,
            Cb::Joined,
            Cb::Buy,
            Cb::Region(big),
            Cb::IpType(3, true),
            Cb::IpType(3, false),
            Cb::Duration(big, true, 3650),
            Cb::Plan(1),
            Cb::Discount(0),
            Cb::CancelOrder(9),
            Cb::Services,
            Cb::Sub(2),
            Cb::Link(2),
            Cb::Renew(2),
            Cb::Traffic(2),
            Cb::TrafficGib(big, 10_000),
            Cb::Rotate(2),
            Cb::RotateYes(2),
            Cb::Move(2),
            Cb::MoveTo(big, big),
            Cb::Help,
            Cb::Faq(65535),
            Cb::Apps,
            Cb::Trial,
            Cb::TrialYes,
            Cb::Wallet,
            Cb::Topup,
            Cb::TopupAmount(big),
            Cb::Referral,
            Cb::Redeem,
            Cb::Support,
            Cb::TicketNew,
            Cb::Tickets,
            Cb::Ticket(4),
            Cb::TicketReply(4),
            Cb::TicketClose(4),
            Cb::Answer(4),
            Cb::Admin,
            Cb::Stats,
            Cb::Queue,
            Cb::Nodes,
            Cb::Approve(big),
            Cb::Reject(5),
            Cb::RejectOther(5),
            Cb::Review(5),
            Cb::Broadcast,
            Cb::BroadcastSend,
            Cb::BroadcastStatus(8),
            Cb::User(7),
            Cb::Ban(7, true),
            Cb::Ban(7, false),
            Cb::Noop,
        ];
        for l in [Lang::Fa, Lang::En, Lang::Ru] {
            v.push(Cb::Lang(l));
        }
        for r in RejectReason::ALL {
            v.push(Cb::RejectWith(big, r));
        }
        for s in [Seg::All, Seg::Active, Seg::Expired, Seg::NoPurchase] {
            v.push(Cb::BroadcastTo(s));
        }
        for m in [
            PaymentMethod::Card,
            PaymentMethod::Wallet,
            PaymentMethod::Zarinpal,
            PaymentMethod::Yookassa,
            PaymentMethod::Stars,
            PaymentMethod::Cryptopay,
        ] {
            for buy in [
                Buy::Plan(big),
                Buy::Renew(big),
                Buy::Traffic(big, 10_000),
                Buy::Topup(big),
            ] {
                v.push(Cb::Pay(buy, m));
            }
        }
        v
    }

    #[test]
    fn every_button_round_trips_within_64_bytes() {
        for cb in samples() {
            let s = cb.encode();
            assert!(s.len() <= 64, "{s} is too long");
            assert_eq!(Cb::parse(&s), Some(cb), "{s}");
        }
    }

    #[test]
    fn foreign_or_damaged_data_is_refused() {
        for s in [
            "",
            ":",
            "m:",
            "br:",
            "br:-1",
            "br:01",
            "br: 1",
            "br:1:2",
            "bt:1:x",
            "l:de",
            "l:FA",
            "pp:1:q",
            "ar:1:z",
            "ar:1:ab",
            "ax:1:2",
            "hf:70000",
            "zz",
            "br:99999999999999999999",
        ] {
            assert_eq!(Cb::parse(s), None, "{s:?}");
        }
        let long = "m".repeat(65);
        assert_eq!(Cb::parse(&long), None);
    }
}
