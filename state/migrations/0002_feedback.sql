-- Feedback on traces (runtime contract: POST /v1/context/feedback). Kept even when the trace is
-- unknown or gone (trace_known = 0), so nothing a user said is lost.
CREATE TABLE IF NOT EXISTS kyro_feedback (
    feedback_id    TEXT   PRIMARY KEY,
    trace_id       TEXT   NOT NULL,
    tenant_id      TEXT,
    signal         TEXT   NOT NULL,
    item_ids       TEXT   NOT NULL,
    comment        TEXT,
    received_at_ms BIGINT NOT NULL,
    trace_known    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS kyro_feedback_trace_idx ON kyro_feedback (trace_id, received_at_ms);
