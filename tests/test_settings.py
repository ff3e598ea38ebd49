"""Settings: a missing variable names itself; production settings pass `check --deploy`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from shopseg.env import as_bool, env

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "SHOPSEG_ENV": "production", "DJANGO_SECRET_KEY": "k" * 20 + "-Zq8#pW2!vN5^rT1&yU7*iO3(pA9)sD6_fG4",
    "DJANGO_ALLOWED_HOSTS": "shopseg.example.com", "SHOPIFY_API_KEY": "key", "SHOPIFY_API_SECRET": "secret",
    "SHOPSEG_APP_URL": "https://shopseg.example.com", "SHOPSEG_TOKEN_KEYS": Fernet.generate_key().decode(),
}


# Set by the test harness itself (the browser tests, beside Playwright's event loop); never in deployment.
HARNESS = ("DJANGO_ALLOW_ASYNC_UNSAFE",)


def manage(*args, **env_vars):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k not in HARNESS}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env_vars},
                          capture_output=True, text=True, timeout=120)


def test_missing_variable_is_named(monkeypatch):
    monkeypatch.delenv("SHOPSEG_NOT_SET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SHOPSEG_NOT_SET"):
        env("SHOPSEG_NOT_SET")
    assert env("SHOPSEG_NOT_SET", 5) == 5


def test_invalid_value_is_named(monkeypatch):
    monkeypatch.setenv("SHOPSEG_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="SHOPSEG_FLAG"):
        env("SHOPSEG_FLAG", cast=as_bool)


def test_production_passes_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_secrets():
    partial = {k: v for k, v in PRODUCTION.items() if k != "SHOPIFY_API_SECRET"}
    result = manage("check", **partial)
    assert result.returncode != 0 and "SHOPIFY_API_SECRET" in result.stderr


def test_devstore_is_not_part_of_production():
    """devstore is a development tool: production settings leave it out, and its commands bring their own."""
    from django.conf import settings

    assert "devstore" not in settings.INSTALLED_APPS
    assert "Unknown command" in manage("shell", "-c", "from django.core.management import call_command; "
                                       "call_command('devstore', '--help')", **PRODUCTION).stderr
    assert manage("devstore", "--help").returncode == 0
