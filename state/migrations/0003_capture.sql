-- Replay capture (runtime contract: GET /v1/replay/capture). One row per serving step, written
-- in the same transaction as the step's trace (retrieve) or ledger change (change event,
-- invalidation, verified mutation ACK), so a step is captured exactly when it took effect.
-- `generation` and `status` are what the step answered; `request` is the request body as the
-- client sent it (replaying the step sends it again); `body` is JSON the host writes (the
-- planner's inputs and the rest of the observed record) and reads back verbatim.
-- `sequence` orders steps; each host allocates it from its own counter (seeded from the largest
-- stored value), so hosts sharing one database interleave in time order, not strictly.
CREATE TABLE IF NOT EXISTS kyro_capture_step (
    step_id        TEXT   PRIMARY KEY,
    sequence       BIGINT NOT NULL,
    captured_at_ms BIGINT NOT NULL,
    tenant_id      TEXT,
    step_type      TEXT   NOT NULL,
    pre_generation BIGINT NOT NULL,
    generation     BIGINT NOT NULL,
    status         TEXT   NOT NULL,
    request        TEXT   NOT NULL,
    body           TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS kyro_capture_by_sequence ON kyro_capture_step (sequence);
CREATE INDEX IF NOT EXISTS kyro_capture_by_time ON kyro_capture_step (captured_at_ms);
CREATE INDEX IF NOT EXISTS kyro_feedback_by_time ON kyro_feedback (received_at_ms);
