-- Events with many seats. Each seat is a ticket (`event_id`, `seat`), its id the UUID v5 of
-- the event id and the seat's label, so other services derive the same seats from one
-- `event.created`.
CREATE TABLE events (
    -- UUIDv7.
    id            uuid PRIMARY KEY,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    venue         text NOT NULL CHECK (length(venue) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    starts_at     timestamptz NOT NULL,
    -- Fixed at creation, like the seats and the per-buyer limit.
    price_cents   bigint NOT NULL CHECK (price_cents > 0 AND price_cents <= 100000000),
    seats         integer NOT NULL CHECK (seats BETWEEN 1 AND 100000),
    max_per_buyer integer NOT NULL CHECK (max_per_buyer BETWEEN 1 AND 10),
    user_id       uuid NOT NULL,
    -- Grows by one per edit; sales do not change it.
    version       bigint NOT NULL DEFAULT 0,
    -- Seats held by an order (reserved or sold), kept in the transaction that reserves or
    -- releases a seat, so `available` (seats - held) is one row read.
    held          integer NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= seats),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Upcoming events, soonest first (and `after` paging on the same order).
CREATE INDEX events_upcoming ON events (starts_at, id);
-- "My events".
CREATE INDEX events_by_owner ON events (user_id, id DESC);
-- Word search over title, venue and description.
CREATE INDEX events_search ON events
    USING gin (to_tsvector('simple', title || ' ' || venue || ' ' || description));

ALTER TABLE tickets ADD COLUMN event_id uuid REFERENCES events (id);
ALTER TABLE tickets ADD COLUMN seat integer;
ALTER TABLE tickets ADD CONSTRAINT tickets_seat_of_event CHECK ((event_id IS NULL) = (seat IS NULL));

-- Seats stay out of the resale list and out of "my listings".
DROP INDEX tickets_available;
CREATE INDEX tickets_available ON tickets (id DESC)
    WHERE order_id IS NULL AND withdrawn_at IS NULL AND event_id IS NULL;
DROP INDEX tickets_by_owner;
CREATE INDEX tickets_by_owner ON tickets (user_id, id DESC)
    WHERE withdrawn_at IS NULL AND event_id IS NULL;

-- One ticket per seat, and an event's free seats in seat order.
CREATE UNIQUE INDEX tickets_seats ON tickets (event_id, seat) WHERE event_id IS NOT NULL;
CREATE INDEX tickets_free_seats ON tickets (event_id, seat)
    WHERE order_id IS NULL AND event_id IS NOT NULL;
