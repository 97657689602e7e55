-- Tickets owned by this service. Prices are integer cents: never floating point.
CREATE TABLE tickets (
    -- UUIDv7: time-ordered, so "newest first" and `before` paging use the primary key.
    id          uuid PRIMARY KEY,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    price_cents bigint NOT NULL CHECK (price_cents > 0 AND price_cents <= 100000000),
    user_id     uuid NOT NULL,
    -- Starts at 0, grows by exactly one per accepted change; replicas apply events in order.
    version     bigint NOT NULL DEFAULT 0,
    -- The order holding the ticket while reserved or sold.
    order_id    uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The public list: tickets nobody holds, newest first.
CREATE INDEX tickets_available ON tickets (id DESC) WHERE order_id IS NULL;

-- Orders known to be cancelled. `order.cancelled` and `order.created` travel on separate
-- consumers, so a cancellation can overtake its creation; a late `order.created` for an order
-- listed here is acknowledged and ignored, and the ticket stays free.
CREATE TABLE cancelled_orders (
    order_id     uuid PRIMARY KEY,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);
