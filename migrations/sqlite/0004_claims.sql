-- Every claim of a delivery takes the next number, never reset (unlike attempts): a worker
-- whose lease ran out, and whose delivery was claimed again since, can no longer renew or
-- finish it. A fencing token.
ALTER TABLE deliveries ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;
