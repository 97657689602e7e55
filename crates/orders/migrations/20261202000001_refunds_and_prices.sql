-- Refunded orders, and the price an order was created at.

-- 'refunded': paid, then refunded by an operator. It leaves the one-active-order-per-ticket
-- index (which lists the statuses that hold a ticket), so the ticket can be ordered again.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete', 'refunded'));

-- The ticket's price and version when the order was created: the buyer pays what they were
-- shown, whatever the seller changes later. NULL only for orders created before these
-- columns existed (they show the replica's price, as before).
ALTER TABLE orders ADD COLUMN price_cents bigint CHECK (price_cents > 0);
ALTER TABLE orders ADD COLUMN ticket_version bigint;

-- No longer written: payments now refunds a charge that lands on a cancelled order itself
-- (its `refunds` table). Kept for the rows recorded before.
COMMENT ON TABLE payment_conflicts IS
    'Payments for cancelled orders recorded before payments refunded them automatically; no longer written.';
