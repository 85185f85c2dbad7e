-- KyroDB pgvector live example: one table holds every document KyroDB syncs.
--
--   tenant_id   tenant that owns the row; every query is scoped to one tenant
--   namespace   logical collection inside a tenant (e.g. 'support', 'docs')
--   id          document id, unique within (tenant_id, namespace)
--   embedding   the document vector; the dimension must match the connector config
--   metadata    filterable attributes as a flat JSON object of string values
--   content     optional raw text the embedding was computed from
--   updated_at  change watermark: the connector resumes incremental syncs from it
--
-- Tests substitute the table name and the vector dimension in this file.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS kyro_documents (
  tenant_id  text        NOT NULL,
  namespace  text        NOT NULL,
  id         text        NOT NULL,
  embedding  vector(8)   NOT NULL,
  metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
  content    text,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, namespace, id)
);
CREATE INDEX IF NOT EXISTS kyro_documents_scope_idx ON kyro_documents (tenant_id, namespace, updated_at DESC);
CREATE INDEX IF NOT EXISTS kyro_documents_embedding_idx ON kyro_documents USING hnsw (embedding vector_cosine_ops);
