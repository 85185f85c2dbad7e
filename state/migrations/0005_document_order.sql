-- Document facts only move forward (issue 16): a change whose facts about a document are
-- older than the stored ones, or cannot be ordered after a stored deletion, leaves the stored
-- facts in place (`kyro_core::ledger::merge`). Each such document is recorded here, in the
-- change's own transaction, with the facts the change carried and why it was out of order.
CREATE TABLE kyro_document_out_of_order (
    -- The generation of the change that carried the late facts.
    generation BIGINT NOT NULL,
    tenant_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    -- `out_of_order` or `unproven_after_deletion`.
    event_order TEXT NOT NULL,
    -- What ordered it: `revision`, `watermark` or `event_timestamp`; NULL when nothing did.
    evidence TEXT,
    revision TEXT,
    watermark BIGINT,
    tombstone BIGINT NOT NULL CHECK (tombstone IN (0, 1)),
    event_timestamp_ms BIGINT,
    recorded_at_ms BIGINT NOT NULL,
    PRIMARY KEY (generation, tenant_id, namespace, doc_id)
);

-- How many of a captured change's documents arrived out of order (0 for retrieves).
ALTER TABLE kyro_capture_step ADD COLUMN documents_out_of_order BIGINT NOT NULL DEFAULT 0;
