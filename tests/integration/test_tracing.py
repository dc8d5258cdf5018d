"""OpenTelemetry across a request, the jobs it queues and their rendering: one trace, sent
over OTLP/HTTP (protobuf) to a collector stub on loopback; none of it without an endpoint."""

from __future__ import annotations

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from kindly.infra import logs, tracing
from tests.support.app import PORTFOLIO, front_client, installed, load_campaign, make_settings
from tests.unit.test_api import auth, key_for


class Collector:
    """An OTLP/HTTP trace receiver on a free loopback port: keeps each span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.paths: list[str] = []
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.paths.append(self.path)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = next(a.value.string_value for a in resource.resource.attributes
                                   if a.key == "service.name")  # fmt: skip
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.append({
                                "service": service, "name": span.name,
                                "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "attributes": {a.key: a.value for a in span.attributes},
                            })  # fmt: skip
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    stub = Collector()
    yield stub
    tracing.configure(None, "kindly-test")
    stub.close()


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_a_render_request_its_jobs_and_their_rendering_share_one_trace(
    tmp_path, postgres_url, redis_url, collector, json_lines
):
    from workers.worker import run

    settings = make_settings(Path(tmp_path / "var"), KINDLY_DATABASE_URL=postgres_url,
                             KINDLY_REDIS_URL=redis_url,
                             KINDLY_OTLP_ENDPOINT=collector.url)  # fmt: skip
    with installed(settings) as context:
        load_campaign(context, text=PORTFOLIO)
        client = front_client(context, KINDLY_EVENT_WRITER=False, TESTING=True)
        secret = key_for(context, "manager")
        answer = client.post("/api/v1/campaigns/winter/render", headers=auth(secret),
                             json={"kinds": ["site"]})  # fmt: skip
        assert answer.status_code == 202, answer.get_data(as_text=True)
        run(settings, ["render"], burst=True)  # the worker's own tracer, fed by the job meta
        tracing.flush()

    assert set(collector.paths) == {"/v1/traces"}
    [request] = [s for s in collector.spans if s["service"] == "kindly-web"]
    assert request["name"] == "POST /api/v1/campaigns/<slug>/render"
    assert request["attributes"]["http.route"].string_value == "/api/v1/campaigns/<slug>/render"
    assert request["attributes"]["kindly.campaign"].string_value == "winter"
    jobs = [s for s in collector.spans if s["name"] == "job workers.jobs.render_debtor"]
    renders = [s for s in collector.spans if s["name"] == "render site"]
    assert len(jobs) == 3 and len(renders) == 3
    assert {s["trace_id"] for s in [request, *jobs, *renders]} == {request["trace_id"]}
    assert {job["parent"] for job in jobs} == {request["span_id"]}
    assert {render["parent"] for render in renders} == {job["span_id"] for job in jobs}
    assert {job["service"] for job in jobs} == {"kindly-worker"}

    lines = json_lines()  # the log lines name the same trace
    [request_line] = [line for line in lines if line["logger"] == "kindly.request"]
    job_lines = [line for line in lines if line["logger"] == "kindly.job"]
    assert request_line["trace_id"] == request["trace_id"] and len(job_lines) == 3
    assert {line["trace_id"] for line in job_lines} == {request["trace_id"]}
    assert {line["campaign"] for line in job_lines} == {"winter"}


def test_without_an_endpoint_nothing_is_traced_or_sent(tmp_path, redis_url, collector):
    settings = make_settings(Path(tmp_path / "var"), KINDLY_REDIS_URL=redis_url)
    with installed(settings) as context:
        load_campaign(context)
        client = front_client(context, KINDLY_EVENT_WRITER=False, TESTING=True)
        assert client.get("/healthz").status_code == 200
        assert not tracing.enabled() and tracing.carrier() == {}
    assert collector.spans == []
