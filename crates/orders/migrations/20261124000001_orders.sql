-- Orders and what they need to know about tickets. Prices are integer cents: never floating
-- point. Statuses are the contract's spellings, stored as text with a CHECK rather than a
-- PostgreSQL enum, so adding a status later is one ALTER of the check, not a type change.

-- A replica of the tickets service's tickets: only what an order shows and charges. Written
-- only by the `ticket.created` / `ticket.updated` listeners, never by a request, and never
-- deleted (orders point at it).
CREATE TABLE tickets (
    id          uuid PRIMARY KEY,
    title       text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    -- The version of the last applied event. Event n is applied only over n-1, so the
    -- replica goes through the same states as the original, in the same order.
    version     bigint NOT NULL CHECK (version >= 0)
);

CREATE TABLE orders (
    -- UUIDv7: time-ordered, so "newest first" is the primary key backwards.
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    -- A request can only order a ticket the replica knows (the insert selects from it).
    ticket_id   uuid NOT NULL REFERENCES tickets (id),
    status      text NOT NULL DEFAULT 'created'
                CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete')),
    -- Computed by the database (`now() + window`) so that creation, the sweep and the
    -- events all read one clock.
    expires_at  timestamptz NOT NULL,
    -- Starts at 0, grows by exactly one per change; carried by `order.cancelled`.
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The rule "a ticket is never sold twice" lives here and nowhere else: at most one order per
-- ticket that is live (created, awaiting:payment) or sold (complete). Two buyers racing for a
-- ticket both try to insert; the second insert waits for the first transaction and then fails
-- with a unique violation on this index (the flow turns it into 409). There is deliberately
-- no "is it free?" read before the insert: that read would race. A cancelled order leaves the
-- index, which frees its ticket at once.
CREATE UNIQUE INDEX orders_one_active_per_ticket ON orders (ticket_id)
    WHERE status IN ('created', 'awaiting:payment', 'complete');

-- "My orders, newest first".
CREATE INDEX orders_by_user ON orders (user_id, id DESC);

-- The safety sweep looks only at live orders by expiry; keep that lookup tiny.
CREATE INDEX orders_live_by_expiry ON orders (expires_at)
    WHERE status IN ('created', 'awaiting:payment');

-- Payments that arrived for an order that was already cancelled (it expired while the buyer
-- was paying). The order stays cancelled, since its ticket may already be someone else's;
-- each row is money to refund, so it is kept for an operator instead of being dropped. Keyed
-- by the payment id, so a redelivered `payment.created` records it once.
CREATE TABLE payment_conflicts (
    payment_id  uuid PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders (id),
    charge_id   text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
