//! The dialogue of one private chat: what the bot waits for the person to type or send
//! next, and the discount code they entered. Stored as JSON in `bot_dialogues`, so a
//! restart in the middle of a purchase picks up where the customer was. An unreadable
//! stored value counts as no dialogue (the customer sees the menu, nothing breaks).

use serde::{Deserialize, Serialize};

/// What the next message of the chat is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "await", rename_all = "snake_case")]
pub enum Awaiting {
    /// Nothing in particular: text gets the menu.
    #[default]
    Nothing,
    /// A discount code for a plan's checkout.
    Discount {
        /// The plan.
        plan_id: i64,
    },
    /// A receipt picture for a card payment.
    Receipt {
        /// The payment.
        payment_id: i64,
    },
    /// The first message of a new ticket.
    TicketText,
    /// A reply in the customer's ticket.
    TicketReply {
        /// The ticket.
        ticket_id: i64,
    },
    /// A top-up amount typed in toman.
    TopupAmount,
    /// Staff: the text of a broadcast.
    BroadcastText {
        /// Audience code.
        segment: String,
    },
    /// Staff: the text of a ticket answer.
    StaffAnswer {
        /// The ticket.
        ticket_id: i64,
    },
    /// Staff: a typed rejection reason.
    RejectReason {
        /// The payment.
        payment_id: i64,
    },
    /// Staff: a customer to look up.
    UserQuery,
}

/// Everything kept for a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dialogue {
    /// What the next message is for.
    #[serde(default)]
    pub awaiting: Awaiting,
    /// A discount code accepted for a plan: (plan id, code).
    #[serde(default)]
    pub discount: Option<(i64, String)>,
    /// Staff: a broadcast drafted and waiting for confirmation: (segment, text).
    #[serde(default)]
    pub draft: Option<(String, String)>,
}

impl Dialogue {
    /// Reads a stored dialogue; anything unreadable is a fresh one.
    pub fn load(stored: Option<&str>) -> Dialogue {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// The JSON to store, or `None` when there is nothing worth keeping.
    pub fn store(&self) -> Option<String> {
        if *self == Dialogue::default() {
            return None;
        }
        serde_json::to_string(self).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let d = Dialogue {
            awaiting: Awaiting::Receipt { payment_id: 7 },
            discount: Some((3, "OFF10".into())),
            draft: None,
        };
        let s = d.store().unwrap_or_default();
        assert_eq!(Dialogue::load(Some(&s)), d);
        assert_eq!(Dialogue::load(Some("{not json")), Dialogue::default());
        assert_eq!(
            Dialogue::load(Some(r#"{"awaiting":{"await":"martian"}}"#)),
            Dialogue::default()
        );
        assert_eq!(Dialogue::default().store(), None);
    }
}
