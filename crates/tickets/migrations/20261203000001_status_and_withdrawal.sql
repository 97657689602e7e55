-- A ticket's status, and withdrawal.
--
-- `sold`: the order holding the ticket was paid (`order.completed`). Only meaningful while
-- `order_id` is set; releasing the ticket clears both. The status readers see is derived:
-- available (no order), reserved (an order, unpaid), sold (an order, paid).
ALTER TABLE tickets ADD COLUMN sold boolean NOT NULL DEFAULT false;
ALTER TABLE tickets ADD CONSTRAINT tickets_sold_needs_order CHECK (NOT sold OR order_id IS NOT NULL);

-- `withdrawn_at`: the seller took the ticket off sale. The row stays (orders and events
-- point at it) but no read shows it again, and it can never be reserved.
ALTER TABLE tickets ADD COLUMN withdrawn_at timestamptz;

-- The public list leaves withdrawn tickets out; rebuild its index to match.
DROP INDEX tickets_available;
CREATE INDEX tickets_available ON tickets (id DESC) WHERE order_id IS NULL AND withdrawn_at IS NULL;

-- "My listings", newest first.
CREATE INDEX tickets_by_owner ON tickets (user_id, id DESC) WHERE withdrawn_at IS NULL;
