"""Drives the official KyroDB Python SDK (kyrodb 1.0.3) through every flow of the Runtime API v1
against a running `kyro serve`, the way an agent team would: the SDK's public client, its request
models, and nothing else.

Flows, in order: health, write-through upsert, retrieve, trace, diagnosis, feedback (record and
read), change event (and its replay), invalidation, delete, proof report, proof bundle, root
cause, capture export, replay diff, counterfactual replay, and a shadow session (created from the
capture's primer, then served from). Every answer is decoded by the SDK's own models; a decode
error names the fields the SDK refused.

The client comes from the SDK's own environment variables (KYRODB_BASE_URL,
KYRODB_DATA_PLANE_TOKEN, KYRODB_OBSERVABILITY_TOKEN); the store to write to and its vector size
are arguments. The runtime must serve that namespace from a write_through store.

Exit status: 0 when every flow worked; 1 at the first failure, with what failed and why (with
--keep-going: after trying every flow whose inputs exist, with every failure listed).

Run by tests/it/sdk.rs with the venv scripts/setup-contract.sh builds (target/sdk-venv).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Optional

from pydantic import ValidationError

import kyrodb
from kyrodb import (
    ChangeEvent,
    ChangeScope,
    ChangeTarget,
    ChangeTargetType,
    ChangeType,
    ContextFeedback,
    CounterfactualIntervention,
    CounterfactualReplayScenario,
    DeleteDocumentRequest,
    Document,
    FeedbackSignal,
    FreshnessMode,
    InvalidationRequest,
    KyroDBAPIError,
    KyroDBClient,
    KyroDBDecodeError,
    KyroDBError,
    ProofBundleRequest,
    ReplayDiffRequest,
    ReplayPrimerState,
    ReplayRunReport,
    RootCauseReportRequest,
    Scope,
    ShadowSessionCreateRequest,
    UpsertDocumentRequest,
    WriteScope,
)

MAX_INPUT_CHARS = 160


class FlowFailed(Exception):
    """A flow answered, but not what the contract promises."""


class MissingInput(Exception):
    """A flow needs the result of an earlier flow that failed."""


class Flows:
    """The flows, sharing what earlier ones returned."""

    def __init__(self, client: KyroDBClient, args: argparse.Namespace) -> None:
        self.client = client
        self.args = args
        self.scope = Scope(tenant_id=args.tenant, namespace=args.namespace)
        self.write_scope = WriteScope(tenant_id=args.tenant, namespace=args.namespace)
        self.embedding = [1.0] + [0.0] * (args.dimension - 1)
        self.doc_id = f"sdk-flow-{uuid.uuid4().hex[:12]}"
        self.results: dict[str, Any] = {}

    def need(self, name: str) -> Any:
        if name not in self.results:
            raise MissingInput(f"needs the result of '{name}', which failed")
        return self.results[name]

    def health(self) -> None:
        health = self.client.admin.health()
        capabilities = health.connector_capabilities or {}
        for flag in ("supports_write_through", "scoped_upsert", "scoped_delete"):
            value = capabilities.get(flag)
            if value is not True:
                raise FlowFailed(f"connector_capabilities.{flag} is {value!r}, not true")
        ownership = (health.connector_certification or {}).get("ownership")
        if ownership != "write_through":
            raise FlowFailed(f"connector_certification.ownership is {ownership!r}")

    def upsert(self) -> None:
        result = self.client.upsert_document(
            UpsertDocumentRequest(
                scope=self.write_scope,
                document=Document(
                    id=self.doc_id,
                    embedding=self.embedding,
                    content="refunds are paid within 14 days",
                    metadata={"lang": "en"},
                ),
            ),
            idempotency_key=f"{self.doc_id}-upsert",
        )
        expect(result.outcome.value == "inserted", f"outcome {result.outcome.value}, not inserted")
        expect(result.mutation_ack.verified, "the mutation ACK is not verified")

    def retrieve(self) -> None:
        packet = self.client.retrieve(
            query_embedding=self.embedding,
            scope=self.scope,
            top_k=3,
            freshness_mode=FreshnessMode.STRICT,
            query_text="how long do refunds take",
        )
        ids = [item.id for item in packet.items]
        expect(self.doc_id in ids, f"the upserted document is not served: {ids}")
        self.results["retrieve"] = packet

    def trace(self) -> None:
        packet = self.need("retrieve")
        trace = self.client.observability.get_trace(packet.trace_id)
        expect(trace.trace_id == packet.trace_id, "the trace names another trace id")

    def diagnosis(self) -> None:
        packet = self.need("retrieve")
        diagnosis = self.client.observability.diagnose_trace(packet.trace_id)
        expect(diagnosis.trace_id == packet.trace_id, "the diagnosis names another trace id")
        expect(diagnosis.recommended_actions, "the diagnosis recommends nothing")

    def feedback(self) -> None:
        packet = self.need("retrieve")
        stored = self.client.record_feedback(
            ContextFeedback(
                trace_id=packet.trace_id,
                signal=FeedbackSignal.USEFUL,
                item_ids=[self.doc_id],
                comment="the answer cited the refund policy",
            )
        )
        expect(stored.trace_known, "the feedback's trace is not known")
        listed = self.client.observability.get_feedback(packet.trace_id)
        expect(len(listed) == 1, f"{len(listed)} feedback entries, not 1")

    def change_event(self) -> None:
        event = ChangeEvent(
            target=ChangeTarget(type=ChangeTargetType.DOCUMENT, doc_id=self.doc_id),
            change_type=ChangeType.CONTENT_UPDATED,
            scope=ChangeScope(tenant_id=self.args.tenant, namespace=self.args.namespace),
            timestamp=datetime.now(timezone.utc),
            source_event_id=f"{self.doc_id}-changed",
        )
        first = self.client.ingest_change_event(event)
        expect(first.accepted, "the change event is not accepted")
        replayed = self.client.ingest_change_event(event)
        expect(
            replayed.generation == first.generation,
            f"the replayed event got generation {replayed.generation}, not {first.generation}",
        )

    def invalidate(self) -> None:
        result = self.client.invalidate(
            InvalidationRequest(
                target=ChangeTarget(type=ChangeTargetType.NAMESPACE, namespace=self.args.namespace),
                tenant_id=self.args.tenant,
                reason="sdk flow: namespace rebuilt",
            ),
            idempotency_key=f"{self.doc_id}-invalidate",
        )
        expect(result.accepted, "the invalidation is not accepted")

    def delete(self) -> None:
        result = self.client.delete_document(
            DeleteDocumentRequest(scope=self.write_scope, id=self.doc_id),
            idempotency_key=f"{self.doc_id}-delete",
        )
        expect(result.outcome.value == "deleted", f"outcome {result.outcome.value}, not deleted")
        expect(result.mutation_ack.verified, "the mutation ACK is not verified")

    def proof_report(self) -> None:
        report = self.client.observability.context_proof_report(recent=50)
        expect(report.traces_considered >= 1, "the proof report considered no trace")

    def proof_bundle(self) -> None:
        bundle = self.client.admin.build_proof_bundle(ProofBundleRequest(recent=50))
        expect(bundle.schema_version == 4, f"schema_version {bundle.schema_version}")

    def root_cause(self) -> None:
        report = self.client.admin.build_root_cause_report(
            RootCauseReportRequest(recent=50, include_non_stale=True)
        )
        expect(report.schema_version == 2, f"schema_version {report.schema_version}")

    def capture(self) -> None:
        capture = self.client.admin.export_replay_capture(recent=50)
        expect(capture.total_steps == len(capture.steps), "total_steps is not the number of steps")
        expect(capture.total_steps > 0, "the capture holds no step")
        self.results["capture"] = capture

    def replay_diff(self) -> None:
        capture = self.need("capture")
        records = [step["observed_record"] for step in capture.steps if "observed_record" in step]
        expect(records, "no captured step carries its observed_record")
        run = ReplayRunReport(
            generated_at=capture.generated_at,
            total_steps=len(records),
            retrieve_steps=sum(1 for record in records if record.get("step_type") == "retrieve"),
            complete_count=sum(1 for record in records if record.get("status") == "complete"),
            degraded_count=sum(1 for record in records if record.get("status") == "degraded"),
            stale_blocked_count=sum(
                1 for record in records if record.get("status") == "stale_blocked"
            ),
            total_latency_ms=0.0,
            records=records,
        )
        diff = self.client.admin.diff_replay_runs(ReplayDiffRequest(baseline=run, candidate=run))
        expect(diff.compared_steps == len(records), f"compared {diff.compared_steps} steps")
        expect(diff.changed_steps == 0, f"{diff.changed_steps} steps changed against themselves")

    def counterfactual(self) -> None:
        capture = self.need("capture")
        first = capture.steps[0].get("observed_record", {}).get("step_index", 0)
        result = self.client.admin.run_counterfactual_replay(
            capture=capture,
            scenario=CounterfactualReplayScenario(
                name="drop the first captured step",
                interventions=[CounterfactualIntervention.drop_step(first)],
            ),
        )
        expect(result.intervention_count == 1, f"{result.intervention_count} interventions")

    def shadow_session(self) -> None:
        capture = self.need("capture")
        primer = capture.replay_primer or ReplayPrimerState()
        session = self.client.admin.create_shadow_session(
            ShadowSessionCreateRequest(replay_primer=primer)
        )
        expect(session.session_id, "no session id")
        shadow = KyroDBClient.from_env(shadow_session_id=session.session_id)
        with shadow:
            packet = shadow.retrieve(
                query_embedding=self.embedding,
                scope=self.scope,
                top_k=3,
                freshness_mode=FreshnessMode.BALANCED,
            )
            trace = shadow.observability.get_trace(packet.trace_id)
            expect(trace.trace_id == packet.trace_id, "the shadow trace names another trace id")
            shadow.admin.health()


FLOWS: list[tuple[str, Callable[[Flows], None]]] = [
    ("health", Flows.health),
    ("write-through upsert", Flows.upsert),
    ("retrieve", Flows.retrieve),
    ("trace", Flows.trace),
    ("diagnosis", Flows.diagnosis),
    ("feedback", Flows.feedback),
    ("change event", Flows.change_event),
    ("invalidate", Flows.invalidate),
    ("write-through delete", Flows.delete),
    ("proof report", Flows.proof_report),
    ("proof bundle", Flows.proof_bundle),
    ("root cause", Flows.root_cause),
    ("capture export", Flows.capture),
    ("replay diff", Flows.replay_diff),
    ("counterfactual", Flows.counterfactual),
    ("shadow session", Flows.shadow_session),
]


def expect(condition: object, message: str) -> None:
    if not condition:
        raise FlowFailed(message)


def explain(error: BaseException) -> str:
    """What went wrong, with the fields the SDK's models refused for a decode error."""
    if isinstance(error, KyroDBDecodeError):
        cause = error.__cause__
        lines = [f"the SDK could not decode the answer: {error}"]
        if isinstance(cause, ValidationError):
            for detail in cause.errors(include_url=False):
                location = ".".join(str(part) for part in detail["loc"]) or "(root)"
                value = repr(detail.get("input"))
                if len(value) > MAX_INPUT_CHARS:
                    value = value[:MAX_INPUT_CHARS] + "..."
                lines.append(f"    {location}: {detail['msg']} (got {value})")
        return "\n".join(lines)
    if isinstance(error, KyroDBAPIError):
        return f"the runtime refused: HTTP {error.status_code} {error.code}: {error.message}"
    if isinstance(error, KyroDBError):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__}: {error}"


def run(flows: Flows, keep_going: bool) -> int:
    failures: list[str] = []
    for name, flow in FLOWS:
        try:
            flow(flows)
        except MissingInput as missing:
            print(f"not run  {name}: {missing}")
            continue
        except Exception as error:  # noqa: BLE001 - every failure is reported the same way
            failures.append(name)
            print(f"FAILED   {name}: {explain(error)}", file=sys.stderr)
            if not keep_going:
                print(f"stopped at {name}; --keep-going tries every flow", file=sys.stderr)
                return 1
            continue
        print(f"ok       {name}")
    if failures:
        failed = ", ".join(failures)
        print(f"{len(failures)} of {len(FLOWS)} flows failed: {failed}", file=sys.stderr)
        return 1
    print(f"all {len(FLOWS)} flows worked with kyrodb {kyrodb.__version__}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", required=True, help="tenant to write and read as")
    parser.add_argument("--namespace", required=True, help="namespace a write_through store serves")
    parser.add_argument("--dimension", type=int, required=True, help="the store's vector size")
    parser.add_argument("--keep-going", action="store_true", help="try every flow, then report")
    args = parser.parse_args(argv)
    if kyrodb.__version__ != "1.0.3":
        print(f"kyrodb {kyrodb.__version__} is installed; these flows pin 1.0.3", file=sys.stderr)
        return 1
    with KyroDBClient.from_env() as client:
        return run(Flows(client, args), args.keep_going)


if __name__ == "__main__":
    sys.exit(main())
