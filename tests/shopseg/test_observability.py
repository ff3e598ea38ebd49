"""What an operator sees: JSON log lines with the work's ids and no email addresses; Sentry and
OpenTelemetry off by default and, when their variable is set, really sending (to a local server)."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shopseg.celery import app
from shopseg.observability import JsonFormatter, PlainFormatter, log_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lines():
    """Log lines of the `shopseg.test` logger, formatted as they are emitted (inside their context)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("shopseg.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_a_line_is_one_json_object_with_the_context_ids_and_no_email(lines):
    log = logging.getLogger("shopseg.test")
    with log_context(shop=7):
        with log_context(segment=3):
            log.info("recomputed for jane.doe+vip@example.co.uk", extra={"customers": 12})
        log.warning("after")
    log.info("outside")
    first, second, third = lines()
    assert first["message"] == "recomputed for [email]" and first["level"] == "INFO"
    assert (first["shop"], first["segment"], first["customers"], first["logger"]) == (7, 3, 12, "shopseg.test")
    assert second["shop"] == 7 and "segment" not in second
    assert "shop" not in third
    assert "example.co.uk" not in json.dumps([first, second, third])


def test_the_text_format_masks_too():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "mail %s", ("a.b@shop.example",), None)
    with log_context(shop=1):
        assert PlainFormatter("%(message)s").format(record) == "mail [email] [shop=1]"


@app.task(name="tests.shopseg.logging_task")
def logging_task(shop_id: int, note: str) -> None:
    logging.getLogger("shopseg.test").info("working on %s", note)


def test_a_task_s_lines_name_the_task_its_id_and_the_ids_it_was_given(lines, settings):
    result = logging_task.apply(args=(42, "x"))
    line, = lines()
    assert (line["task"], line["task_id"], line["shop_id"]) == ("tests.shopseg.logging_task", result.id, 42)
    assert "note" not in line       # only ids, never other arguments


def test_production_logs_json_by_default():
    env = {k: v for k, v in os.environ.items() if k not in ("SHOPSEG_LOG_FORMAT", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    code = "from django.conf import settings; print(settings.LOGGING['handlers']['console']['formatter'])"
    prod = {"SHOPSEG_ENV": "production", "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "a.example",
            "SHOPIFY_API_KEY": "key", "SHOPIFY_API_SECRET": "secret", "SHOPSEG_APP_URL": "https://a.example",
            "SHOPSEG_TOKEN_KEYS": Fernet.generate_key().decode()}
    assert _manage_shell(code, env).strip() == "text"
    assert _manage_shell(code, {**env, **prod}).strip() == "json"


# -- Sentry and OpenTelemetry, against a local collector ---------------------------------------------
class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, int]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.path, len(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


def _manage_shell(code: str, env: dict) -> str:
    done = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_sentry_and_opentelemetry_are_off_unless_switched_on():
    env = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    out = _manage_shell("import sentry_sdk; from opentelemetry import trace; "
                        "print(sentry_sdk.get_client().is_active(), type(trace.get_tracer_provider()).__name__)", env)
    assert out.split() == ["False", "ProxyTracerProvider"]


def test_sentry_sends_errors_when_its_dsn_is_set(collector):
    env = {**os.environ, "SENTRY_DSN": f"http://public@{collector}/1"}
    _manage_shell("import sentry_sdk; sentry_sdk.capture_message('shopseg test'); sentry_sdk.flush(5)", env)
    assert any(path.startswith("/api/1/") for path, size in _Collector.received)


def test_opentelemetry_exports_a_request_s_trace_when_its_endpoint_is_set(collector):
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector}"}
    _manage_shell("from django.test import Client; from opentelemetry import trace; "
                  "assert Client().get('/healthz').status_code == 200; trace.get_tracer_provider().shutdown()", env)
    assert [path for path, size in _Collector.received if size] == ["/v1/traces"]
