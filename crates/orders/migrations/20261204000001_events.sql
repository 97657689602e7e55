-- Events with many seats, learnt from `event.created` / `event.updated` (one message per
-- event): the replica of the event, a replica ticket per seat (ids derived with the events
-- crate's `seat_id`), and which order holds each seat.
CREATE TABLE events (
    id            uuid PRIMARY KEY,
    title         text NOT NULL,
    price_cents   bigint NOT NULL CHECK (price_cents > 0),
    seats         integer NOT NULL CHECK (seats > 0),
    max_per_buyer integer NOT NULL CHECK (max_per_buyer > 0),
    starts_at     timestamptz NOT NULL,
    -- The version of the last applied event message, as for tickets.
    version       bigint NOT NULL CHECK (version >= 0)
);

ALTER TABLE tickets ADD COLUMN event_id uuid REFERENCES events (id);
ALTER TABLE tickets ADD COLUMN seat integer;

-- Which live or paid order holds each seat: this service's own bookkeeping, kept by the same
-- statements that create, cancel and refund orders, so that "the best available seat" is one
-- index lookup (`FOR UPDATE SKIP LOCKED`: buyers racing for an event each take a different
-- free seat instead of queueing behind one row). The unique index on orders stays the final
-- word on who holds a ticket.
--
-- It is a table of its own, not a column of the replica's `tickets`, so that a cancellation
-- never takes a lock on the replica row that a concurrent order holds while it waits on the
-- unique index (that would deadlock).
CREATE TABLE seats (
    ticket_id uuid PRIMARY KEY REFERENCES tickets (id),
    event_id  uuid NOT NULL REFERENCES events (id),
    seat      integer NOT NULL,
    order_id  uuid
);
CREATE UNIQUE INDEX seats_by_number ON seats (event_id, seat);
CREATE INDEX seats_free ON seats (event_id, seat) WHERE order_id IS NULL;
