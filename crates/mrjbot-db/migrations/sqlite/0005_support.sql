-- 0005_support: what support tickets and broadcasts need beyond 0002.
-- Kept column for column identical to migrations/postgres/0005_support.sql.

-- When the newest message of a ticket was written: support queues sort by it.
ALTER TABLE tickets ADD COLUMN last_message_at INTEGER;
UPDATE tickets SET last_message_at = (
    SELECT MAX(m.created_at) FROM ticket_messages m WHERE m.ticket_id = tickets.id
);
-- Open tickets per customer are counted on every new ticket.
CREATE INDEX tickets_user_id_status_idx ON tickets (user_id, status);
CREATE INDEX tickets_last_message_at_idx ON tickets (last_message_at);

-- Deliveries that failed because the person blocked the bot, counted apart from
-- `failed` (which now means any other failure). The counters stay disjoint:
-- total = sent + failed + blocked + pending.
ALTER TABLE broadcasts ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked >= 0);
-- The sender takes the pending rows of a broadcast in id order; with the id in the
-- index neither engine sorts the pending rows on every batch.
DROP INDEX broadcast_deliveries_broadcast_id_status_idx;
CREATE INDEX broadcast_deliveries_broadcast_id_status_id_idx
    ON broadcast_deliveries (broadcast_id, status, id);
