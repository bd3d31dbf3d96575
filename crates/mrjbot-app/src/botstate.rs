//! Storage the Telegram bot needs between updates, over the same store as everything
//! else so it survives restarts and is shared by replicas: the dialogue of each chat
//! (what the bot waits for), the last update handled, and the polling lease (only one
//! replica may call `getUpdates`; Telegram answers a second poller with 409).

use crate::App;
use crate::error::AppResult;
use mrjbot_db::{bot as repo, settings as settings_repo};

const LEASE_KEY: &str = "bot.poller";
const OFFSET_KEY: &str = "bot.update_offset";

impl App {
    /// The stored dialogue of a chat (JSON written by the bot).
    pub async fn bot_dialogue(&self, chat_id: i64) -> AppResult<Option<String>> {
        let mut c = self.db().read().await?;
        Ok(repo::dialogue(c.conn(), chat_id).await?)
    }

    /// Stores (`Some`) or forgets (`None`) the dialogue of a chat.
    pub async fn set_bot_dialogue(&self, chat_id: i64, state: Option<&str>) -> AppResult<()> {
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        match state {
            Some(s) => repo::put_dialogue(tx.conn(), chat_id, s, now).await?,
            None => repo::clear_dialogue(tx.conn(), chat_id).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes or renews the polling lease for `holder` for `ttl`.
    pub async fn bot_lease(&self, holder: &str, ttl: std::time::Duration) -> AppResult<bool> {
        let now = self.now().millis();
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let mut tx = self.db().begin().await?;
        let got = repo::try_lease(tx.conn(), LEASE_KEY, holder, now, ttl).await?;
        tx.commit().await?;
        Ok(got)
    }

    /// Gives the polling lease up (on shutdown), so another replica takes over at once.
    pub async fn release_bot_lease(&self, holder: &str) -> AppResult<()> {
        let mut tx = self.db().begin().await?;
        repo::release_lease(tx.conn(), LEASE_KEY, holder).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The next update id to ask Telegram for (every update below it was handled).
    pub async fn bot_offset(&self) -> AppResult<i64> {
        let mut c = self.db().read().await?;
        Ok(settings_repo::get(c.conn(), OFFSET_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Records that every update below `offset` was handled.
    pub async fn set_bot_offset(&self, offset: i64) -> AppResult<()> {
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        settings_repo::put(tx.conn(), OFFSET_KEY, &offset.to_string(), now, None).await?;
        tx.commit().await?;
        Ok(())
    }
}
