-- Which replica claimed a delivery: a replica that restarts takes back its own running
-- work at once instead of waiting for its lease to run out.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
