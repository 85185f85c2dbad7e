-- Change-event ids and idempotency keys are unique per tenant (issue 15): keyed by the
-- tenant alone, a tenant that sent another tenant's predictable ids first made that tenant's
-- real events answer as replays or conflicts, and never apply.
--
-- `tenant_key` is `tenant:<tenant_id>`, or `global` for events whose scope names no tenant;
-- no tenant's key can equal `global`. Rows recorded before this migration do not say whose
-- they were, so they become `global`: a tenant's retry of an event first sent before the
-- upgrade applies once more (a new generation and a conservative invalidation, never a stale
-- answer), and no tenant can match another's old ids.
CREATE TABLE kyro_processed_event_by_tenant (
    tenant_key TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    processed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_key, source_event_id)
);

INSERT INTO kyro_processed_event_by_tenant
    (tenant_key, source_event_id, generation, fingerprint, processed_at_ms)
    SELECT 'global', source_event_id, generation, fingerprint, processed_at_ms
    FROM kyro_processed_event;

DROP TABLE kyro_processed_event;

ALTER TABLE kyro_processed_event_by_tenant RENAME TO kyro_processed_event;

CREATE INDEX kyro_processed_event_by_generation ON kyro_processed_event (generation);
