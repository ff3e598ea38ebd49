"""What an operator sees: structured logs, and optional Sentry and OpenTelemetry.

Logs are one JSON object a line (`SHOPSEG_LOG_FORMAT=json`, the production default): time, level,
logger, message, and the context of the work in hand: the Celery task and its id, and the shop and
other ids a caller binds with `log_context`. Never personal data: the code logs counts and ids,
and as a safety net anything shaped like an email address is masked before it is written.

Sentry (`SENTRY_DSN`) and OpenTelemetry (`OTEL_EXPORTER_OTLP_ENDPOINT`, Shopify-free OTLP/HTTP
traces of requests and tasks) are off unless their variable is set; neither is sent personal data
(`send_default_pii=False`; spans carry routes and task names, not bodies).
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
from collections.abc import Iterator

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("shopseg_log_context", default={})
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# LogRecord attributes that are not the caller's `extra`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def log_context(**ids) -> Iterator[None]:
    """Every log line inside carries these ids (shop=…, segment=…); nested contexts add to it."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**ids) -> contextvars.Token:
    """Like log_context, for a scope a with-block cannot wrap (a Celery task: see celery.py)."""
    return _context.set({**_context.get(), **ids})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def _masked(text: str) -> str:
    return EMAIL.sub("[email]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, context ids, the caller's `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": _masked(record.getMessage()),
            **_context.get(),
            **{k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")},
        }
        if record.exc_info:
            line["exception"] = _masked(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """The development format, with the same context ids and the same masking."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in _context.get().items())
        return _masked(super().format(record) + (f" [{context}]" if context else ""))


def sentry_init(dsn: str, *, environment: str) -> None:
    import sentry_sdk  # optional at run time: imported only where switched on
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(dsn=dsn, environment=environment, send_default_pii=False,
                    integrations=[DjangoIntegration(), CeleryIntegration()],
                    traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")))


def opentelemetry_init(endpoint: str, *, service: str) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
