"""The merchant's install click on devstore, followed hop by hop with Django's test client as the
app (as tests/conftest.py's run_install does): for benchmarks that drive the app in-process."""
from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def local(url: str) -> str:
    """An absolute app URL as Django's test client wants it (path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def install_in_process(devstore_url: str, shop: str, api_key: str) -> None:
    """Install the app into `shop` through the real OAuth flow; SystemExit if it is refused."""
    from django.test import Client

    client = Client()
    with httpx.Client(timeout=60) as http:
        click = http.get(f"{devstore_url}/shops/{shop}/admin/_install/{api_key}")
        entry = client.get(local(click.headers["Location"]))
        authorize = http.get(entry["Location"])
        done = client.get(local(authorize.headers["Location"]))
    if done.status_code != 302:
        raise SystemExit(f"install failed: {done.status_code}")
