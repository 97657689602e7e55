-- Users of Ticketing. E-mails are stored lower-cased by the service; the unique index is on
-- the stored value, so two concurrent sign-ups with one address cannot both insert (the loser
-- gets a unique violation, answered 409), with no read-then-write check.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    -- PHC string ($argon2id$...), never the password.
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);
