"""OpenTelemetry traces over OTLP (HTTP/protobuf), when an endpoint is configured.

Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); the exporter's
other standard variables apply (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`). Without one nothing here runs.

Each `/v1/messages` request becomes a SERVER span (the gateway's hop of the client's trace:
its id is the parent the provider saw in `traceparent`, gateway/tracing.py) with one CLIENT span
per upstream attempt, named and described with the GenAI semantic conventions
(`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
`gen_ai.response.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `error.type`).
Spans are built from the finished request's record after its response, and a batch processor
exports them from its own thread: tracing adds nothing to the request's latency. A request
whose client marked its trace as not sampled is not exported.
"""

from __future__ import annotations

import atexit
import os
from functools import cache
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from core import ids
from providers.kinds import KINDS

if TYPE_CHECKING:
    from core.target import Target
    from gateway.tracing import Trace
    from gateway.usage.record import UsageRecord

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SCOPE = InstrumentationScope("tollgate")


@cache
def _processor() -> BatchSpanProcessor | None:
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    processor = BatchSpanProcessor(OTLPSpanExporter())
    atexit.register(processor.shutdown)  # what is queued goes out before the process ends
    return processor


@cache
def _resource() -> Resource:
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "tollgate")})


def enabled() -> bool:
    return _processor() is not None


def _telemetry_name(kind: str) -> str:
    """gen_ai.provider.name of a provider kind (OpenTelemetry's well-known values)."""
    row = KINDS.get(kind)
    return row.telemetry_name if row is not None else "other"


def _ns(epoch: float) -> int:
    return int(epoch * 1e9)


def export_request(
    record: UsageRecord,
    *,
    trace: Trace | None,
    path: str,
    max_tokens: int | None,
    attempts: list,  # gateway.pipeline.attempts.Attempt (the pipeline imports this module)
    targets: list[Target],
) -> None:
    """Queue the spans of one finished request (no-op without an OTLP endpoint): the server's
    span for `path`, and one client span per upstream attempt."""
    processor = _processor()
    if processor is None or trace is None or not int(trace.flags, 16) & 1:
        return
    trace_id, flags = int(trace.trace_id, 16), TraceFlags(int(trace.flags, 16))
    server = SpanContext(trace_id, int(trace.span_id, 16), is_remote=False, trace_flags=flags)
    parent = None
    if trace.parent_id:
        parent = SpanContext(trace_id, int(trace.parent_id, 16), is_remote=True, trace_flags=flags)
    failed = record.status == "error"
    attributes = {
        "http.request.method": "POST",
        "url.path": path,
        "http.response.status_code": record.http_status,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "tollgate.request_id": record.request_id,
        "tollgate.tenant_id": record.tenant_id or 0,
        "tollgate.key_prefix": record.key_prefix,
        "tollgate.cost_usd": float(record.cost_usd),
    }
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    if failed:
        attributes["error.type"] = record.error_type or "error"
    processor.on_end(
        ReadableSpan(
            name=f"chat {record.model}" if record.model else f"POST {path}",
            context=server,
            parent=parent,
            resource=_resource(),
            attributes=attributes,
            kind=SpanKind.SERVER,
            instrumentation_scope=SCOPE,
            status=Status(StatusCode.ERROR if failed else StatusCode.UNSET),
            start_time=_ns(record.started_at),
            end_time=_ns(record.finished_at),
        )
    )
    kinds = {t.provider_name: t.kind for t in targets}
    answered = len(attempts) - 1 if record.status == "ok" else -1
    for n, attempt in enumerate(attempts):
        span_attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _telemetry_name(kinds.get(attempt.provider, "")),
            "gen_ai.request.model": attempt.upstream_model,
            "tollgate.provider": attempt.provider,
        }
        if attempt.status is not None:
            span_attributes["http.response.status_code"] = attempt.status
        if attempt.upstream_request_id:
            span_attributes["tollgate.upstream_request_id"] = attempt.upstream_request_id
        if attempt.error_type:
            span_attributes["error.type"] = attempt.error_type
        if n == answered:
            span_attributes["gen_ai.response.model"] = attempt.upstream_model
            span_attributes["gen_ai.usage.input_tokens"] = record.input_tokens
            span_attributes["gen_ai.usage.output_tokens"] = record.output_tokens
        started = attempt.started_at or record.started_at
        processor.on_end(
            ReadableSpan(
                name=f"chat {attempt.upstream_model}",
                context=SpanContext(
                    trace_id, ids.random_bits(64), is_remote=False, trace_flags=flags
                ),
                parent=server,
                resource=_resource(),
                attributes=span_attributes,
                kind=SpanKind.CLIENT,
                instrumentation_scope=SCOPE,
                status=Status(StatusCode.ERROR if attempt.error_type else StatusCode.UNSET),
                start_time=_ns(started),
                end_time=_ns(started + attempt.latency_ms / 1000),
            )
        )
