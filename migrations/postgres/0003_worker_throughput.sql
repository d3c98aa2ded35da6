-- A worker's training throughput (examples per second) at its last heartbeat, for
-- GET /v1/workers; NULL while idle or before its first progress report.
ALTER TABLE workers ADD COLUMN examples_per_sec DOUBLE PRECISION;
