"""OpenTelemetry traces across a web request, the jobs it queues and the rendering they do.

Off unless an OTLP endpoint is configured (KINDLY_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT):
then `span` is a no-op and opentelemetry is never imported. On, spans go over OTLP/HTTP
(protobuf) to the endpoint's /v1/traces in batches; a job carries its request's context in
its RQ meta (`carrier`), so the job's span joins the request's trace. Spans name routes'
rules and job functions and carry ids and slugs only, like the log (kindly.infra.logs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

TRACEPARENT = "traceparent"
"""The W3C header (and RQ meta key) that carries a trace's context."""

_provider: Any = None
_tracer: Any = None


def configure(endpoint: str | None, service: str) -> None:
    """Export this process's spans to the OTLP/HTTP collector at `endpoint` (None: off)."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("kindly")


def enabled() -> bool:
    """Whether spans are recorded in this process."""
    return _tracer is not None


@contextmanager
def span(name: str, parent: Mapping[str, Any] | None = None, **attributes: Any) -> Iterator[Any]:
    """A span around the block (None when tracing is off), a child of the current span or,
    given `parent` (headers or a job's meta holding `traceparent`), of that remote one."""
    if _tracer is None:
        yield None
        return
    context = None
    if parent is not None and parent.get(TRACEPARENT):
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract({TRACEPARENT: parent[TRACEPARENT]})
    clean = {key: value for key, value in attributes.items() if value is not None}
    with _tracer.start_as_current_span(name, context=context, attributes=clean) as current:
        yield current


def carrier() -> dict[str, str]:
    """The current span's context as {"traceparent": …}, for a job's meta ({} when off)."""
    if _tracer is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    found: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(found)
    return found


def trace_id() -> str | None:
    """The current trace's id in hex, for the log line (None when off or outside a span)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def flush(timeout_ms: int = 5000) -> None:
    """Send the spans still waiting in the batch (a forked job ends with os._exit)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)
