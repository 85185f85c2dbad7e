-- Capture sequences correct across hosts (issue 16, item 6). Each host allocated sequences
-- from its own counter, seeded from the largest stored one, so two hosts sharing one
-- database handed out the same sequence. Now every transaction that adds capture steps
-- takes this row (its row lock on PostgreSQL, the write lock on SQLite) and advances it by
-- the steps it adds: sequences are unique and increase in commit order across hosts, with a
-- gap where an allocated step was not written (a duplicate trace id).
CREATE TABLE kyro_capture_counter (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL CHECK (value >= 0)
);

INSERT INTO kyro_capture_counter (id, value)
    SELECT 1, COALESCE(MAX(sequence), 0) FROM kyro_capture_step;
