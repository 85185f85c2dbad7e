#!/usr/bin/env python3
"""Loads 12 sample documents into the local Qdrant server in the layout the KyroDB connector reads.

Uses only the Python standard library and Qdrant's REST API (port 6333):

    QDRANT_API_KEY=kyro-local-dev-key python3 load_sample.py

Layout (connectors/qdrant/src/payload.rs): the point id is a UUID derived from
SHA-256(len tenant, tenant, len namespace, namespace, len doc id, doc id) with 8-byte big-endian
lengths and the UUID version 8 / RFC variant bits set; the payload holds tenant_id, namespace,
doc_id, content, metadata (strings) and metadata_numeric (the values that read as numbers).
"""

import hashlib
import json
import os
import urllib.request
import uuid

URL = os.environ.get("QDRANT_REST_URL", "http://127.0.0.1:6333")
API_KEY = os.environ.get("QDRANT_API_KEY", "kyro-local-dev-key")
COLLECTION = "kyro_documents"
DIMENSION = 8


def point_id(tenant: str, namespace: str, doc_id: str) -> str:
    digest = hashlib.sha256()
    for part in (tenant, namespace, doc_id):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def numeric(text: str):
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if number not in (float("inf"), float("-inf")) and number == number else None


def call(method: str, path: str, body=None):
    request = urllib.request.Request(
        f"{URL}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode("utf-8"),
        headers={"api-key": API_KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def main() -> None:
    exists = call("GET", f"/collections/{COLLECTION}/exists")["result"]["exists"]
    if not exists:
        call("PUT", f"/collections/{COLLECTION}", {"vectors": {"size": DIMENSION, "distance": "Cosine"}})
    call("PUT", f"/collections/{COLLECTION}/index?wait=true",
         {"field_name": "tenant_id", "field_schema": {"type": "keyword", "is_tenant": True}})
    call("PUT", f"/collections/{COLLECTION}/index?wait=true",
         {"field_name": "namespace", "field_schema": {"type": "keyword"}})

    points = []
    n = 0
    for tenant in ("acme", "globex"):
        for namespace in ("support", "docs"):
            for doc_idx in range(3):
                n += 1
                doc_id = f"{namespace}-{doc_idx + 1}"
                metadata = {"lang": "en" if doc_idx != 2 else "de", "product": "widget", "year": str(2022 + doc_idx)}
                vector = [((n * 7 + d * 3) % 11) / 10.0 + 0.05 for d in range(DIMENSION)]
                points.append({
                    "id": point_id(tenant, namespace, doc_id),
                    "vector": vector,
                    "payload": {
                        "tenant_id": tenant,
                        "namespace": namespace,
                        "doc_id": doc_id,
                        "content": f"{tenant} {namespace} document {doc_idx + 1}",
                        "metadata": metadata,
                        "metadata_numeric": {k: v for k, v in ((k, numeric(v)) for k, v in metadata.items()) if v is not None},
                    },
                })
    call("PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": points})
    print(f"loaded {len(points)} documents into {COLLECTION}")


if __name__ == "__main__":
    main()
