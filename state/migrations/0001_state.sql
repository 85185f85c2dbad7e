-- The host's durable state: the freshness ledger (runtime generation, scope generations,
-- change-event dedupe, per-document facts) and the trace store.
--
-- This file runs unchanged on SQLite (>= 3.35) and PostgreSQL, so it sticks to the types both
-- understand and sqlx's `Any` driver can decode: TEXT and BIGINT only. Booleans are stored as
-- BIGINT 0/1 because the `Any` driver rejects SQLite columns declared BOOLEAN. Unsigned values
-- (generations, watermarks) are stored as signed BIGINT and range-checked in Rust.

-- The runtime generation: exactly one row (id = 1). Every applied change increments it inside
-- its transaction, so the row lock (PostgreSQL) or the write lock (SQLite) serializes appliers
-- and commit order equals generation order.
CREATE TABLE kyro_generation (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL CHECK (value >= 0)
);

INSERT INTO kyro_generation (id, value) VALUES (1, 0);

-- The change-event dedupe ledger: one row per accepted source event id.
CREATE TABLE kyro_processed_event (
    source_event_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    processed_at_ms BIGINT NOT NULL
);

CREATE INDEX kyro_processed_event_by_generation ON kyro_processed_event (generation);

-- The generation of the latest change that touched each scope key.
CREATE TABLE kyro_scope_generation (
    scope_key TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    acknowledged_at_ms BIGINT NOT NULL,
    change_trigger TEXT NOT NULL
);

-- The latest acknowledged facts about each document.
CREATE TABLE kyro_document_state (
    tenant_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    revision TEXT,
    watermark BIGINT,
    tombstone BIGINT NOT NULL CHECK (tombstone IN (0, 1)),
    event_timestamp_ms BIGINT,
    PRIMARY KEY (tenant_id, namespace, doc_id)
);

-- Request traces; the body is a JSON document the host writes and reads back verbatim.
CREATE TABLE kyro_trace (
    trace_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE INDEX kyro_trace_by_created_at ON kyro_trace (created_at_ms, trace_id);
