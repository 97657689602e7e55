-- Payments and what they need to know about orders. Money is integer cents, never floating
-- point. States and statuses are text with a CHECK rather than PostgreSQL enums, so adding
-- one later is one ALTER of the check.
--
-- Lock order: a transaction that touches both an order and its payment locks the order row
-- first (`orders` before `payments`), so a payment request, its completion and a webhook can
-- never deadlock each other.

-- A replica of the orders service's orders: only what a payment checks and charges. Written by
-- the `order.created` / `order.cancelled` listeners; `status` also becomes 'complete' here
-- when a payment succeeds (in the payment's transaction), so a second payment is refused at
-- once instead of after a round trip through orders.
CREATE TABLE orders (
    id          uuid PRIMARY KEY,
    -- The buyer: only they may pay.
    user_id     uuid NOT NULL,
    -- What a payment charges, exactly.
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    status      text NOT NULL
                CHECK (status IN ('created', 'awaiting:payment', 'cancelled', 'complete')),
    -- The version of the last applied event. Event n is applied only over n-1. Completing an
    -- order here does not change it: only the orders service's events do.
    version     bigint NOT NULL CHECK (version >= 0)
);

-- One row per order: its payment, holding the latest attempt. The UNIQUE on order_id is what
-- makes concurrent requests for one order share one attempt (and one idempotency key)
-- instead of each charging.
CREATE TABLE payments (
    -- UUIDv7. The id answered to the buyer and carried by `payment.created`.
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL UNIQUE REFERENCES orders (id),
    -- pending: recorded before the provider is called; the call is in flight (a lease is
    --          held) or ended without an answer (the next request calls again, same key);
    -- processing: accepted by the provider, settled later by a webhook;
    -- succeeded: charged (final); declined / failed: refused, nothing charged, may be retried
    --          as a new attempt.
    state           text NOT NULL
                    CHECK (state IN ('pending', 'processing', 'succeeded', 'declined', 'failed')),
    -- 1, 2, ...: a new attempt (and idempotency key) starts only after a refused one.
    attempt         integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    provider        text NOT NULL,
    -- The attempt's parameters, kept so that a retry of the attempt sends exactly the same
    -- request under the same key (a provider refuses a key reused with other parameters).
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL,
    -- A payment method or card token: an opaque reference at the provider, not card data.
    token           text NOT NULL,
    -- The provider's charge (Stripe: the PaymentIntent id), once known.
    charge_id       text UNIQUE,
    -- The provider's message for a declined or failed attempt.
    failure_message text,
    -- Why the last call of a pending attempt got no answer (outage, timeout).
    last_error      text,
    -- The request calling the provider for this attempt, until lease_until. Another request
    -- may take the attempt over only once the lease has run out.
    lease_token     uuid,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (state NOT IN ('succeeded', 'processing') OR charge_id IS NOT NULL)
);

-- Charges that succeeded at the provider but that no payment can hold: a second charge for
-- an order that was already paid, or a webhook for an order we have no attempt for. Each row
-- is money to give back; the record is kept for an operator, never dropped.
CREATE TABLE unmatched_charges (
    charge_id   text PRIMARY KEY,
    order_id    uuid,
    amount      bigint,
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
