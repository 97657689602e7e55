-- Refunds, card details for receipts, the order's deadline, and the record of declines that
-- limits card testing.

-- The replica learns when an order's time runs out (`order.created` carries it): a charge is
-- refused after it even if the cancellation has not arrived yet. NULL only for orders learnt
-- before this column existed.
ALTER TABLE orders ADD COLUMN expires_at timestamptz;
-- 'refunded': an operator's refund went through. Like 'complete', set here in the refund's
-- transaction so that a second refund is refused at once.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete', 'refunded'));

-- 'refunded': the charge was given back (by an operator, or automatically because the order
-- had been cancelled). Card brand and last four digits when the provider tells them, for the
-- receipt.
ALTER TABLE payments DROP CONSTRAINT payments_state_check;
ALTER TABLE payments ADD CONSTRAINT payments_state_check
    CHECK (state IN ('pending', 'processing', 'succeeded', 'declined', 'failed', 'refunded'));
ALTER TABLE payments DROP CONSTRAINT payments_check;
ALTER TABLE payments ADD CONSTRAINT payments_charged_have_a_charge
    CHECK (state NOT IN ('succeeded', 'processing', 'refunded') OR charge_id IS NOT NULL);
ALTER TABLE payments ADD COLUMN card_brand text;
ALTER TABLE payments ADD COLUMN card_last4 text;
-- The buyer, copied from the order, for "declines by one buyer" and the owner's receipts.
ALTER TABLE payments ADD COLUMN user_id uuid;

-- One refund per payment (refunds are whole). Recorded before the provider is called, like a
-- payment attempt, so a crash between the call and its record is settled by calling again
-- with the same idempotency key.
CREATE TABLE refunds (
    -- UUIDv7: answered to the operator and carried by `payment.refunded` as its `id`.
    id               uuid PRIMARY KEY,
    payment_id       uuid NOT NULL UNIQUE REFERENCES payments (id),
    order_id         uuid NOT NULL REFERENCES orders (id),
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    -- 'operator': asked for by an operator (the order becomes 'refunded');
    -- 'cancelled_order': the charge landed on an order already cancelled (it stays cancelled).
    reason           text NOT NULL CHECK (reason IN ('operator', 'cancelled_order')),
    -- The operator who asked, and when (created_at): every operator action is recorded.
    requested_by     uuid,
    -- pending: recorded, the provider is being asked (or did not answer: asked again, same
    --          key); succeeded: money given back (final); failed: the provider refused, a
    --          person must look (the operators' console lists it).
    state            text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    -- 1, 2, ...: an operator may try a refused refund again, under a new key.
    attempt          integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    provider_refund_id text UNIQUE,
    failure_message  text,
    last_error       text,
    lease_token      uuid,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'succeeded' OR provider_refund_id IS NOT NULL)
);

-- The background reconciler looks only at what is unfinished.
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE state = 'pending';
CREATE INDEX payments_pending ON payments (updated_at) WHERE state = 'pending';

-- Declined attempts, by buyer: after 5 within 10 minutes further attempts are refused (card
-- testing). Rows older than the window are pruned.
CREATE TABLE declines (
    user_id    uuid NOT NULL,
    order_id   uuid NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX declines_by_user ON declines (user_id, at);
