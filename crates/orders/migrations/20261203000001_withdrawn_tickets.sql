-- Tickets their seller withdrew (`ticket.withdrawn`): they can no longer be ordered, and the
-- orders placed for them in the same instant are cancelled.
ALTER TABLE tickets ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
