"""Outages: Redis (cache and broker) stopped under a live server, a worker killed with
SIGKILL in the middle of a job, PostgreSQL unreachable. Each test runs a redis-server of
its own on a spare port (tests/redis_server.py)."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from celery import Celery
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from tests.redis_server import RedisServer, free_port, needs_redis_server

ROOT = Path(__file__).resolve().parents[1]
VISIBILITY_TIMEOUT = 5


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.1)
    return result


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --- Redis stopped under a live server ---------------------------------------------------


class TwoAMinute(UserRateThrottle):
    rate = "2/min"


@pytest.fixture
def portal_on(redis_server, settings, monkeypatch):
    """The portal's cache (database 1) and broker (database 0) on the test's Redis, jobs
    sent to the broker rather than run in-process, and the API throttled. The views
    took their throttle classes when imported, hence APIView itself."""
    from config.celery import app

    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": redis_server.url(1),
            "KEY_PREFIX": "outage",
            "OPTIONS": {
                "socket_connect_timeout": 0.5,
                "socket_timeout": 0.5,
                "pause_after_error": 0.2,
            },
        }
    }
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "2/m/ip,2/5m/key"}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_CLASSES": [f"{__name__}.TwoAMinute"],
    }
    monkeypatch.setattr(APIView, "throttle_classes", [TwoAMinute])
    saved = {
        key: app.conf[key]
        for key in ("task_always_eager", "broker_url", "broker_transport_options")
    }
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_server.url(0)
    app.conf.broker_transport_options = {"socket_connect_timeout": 0.5, "socket_timeout": 2}
    yield app
    app.conf.update(saved)


def signed_in_session(base_url, email, password):
    browser = requests.Session()
    page = browser.get(f"{base_url}/accounts/login/", timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = browser.post(
        f"{base_url}/accounts/login/",
        {"login": email, "password": password, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )
    return browser, answer


@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_the_portal_answers_and_its_mail_waits_for_redis(
    live_server, redis_server, portal_on
):
    from celery.contrib.testing.worker import start_worker
    from django.core import mail
    from rest_framework.authtoken.models import Token

    from accounts.tasks import send_invitation_email
    from core import outbox
    from core.models import OutboxMessage
    from tests.factories import PASSWORD, AccountFactory, owner_of

    account = AccountFactory(seats_paid=3)
    owner = owner_of(account)
    api = {"Authorization": f"Token {Token.objects.create(user=owner).key}"}
    me = f"{live_server.url}/api/v1/me/"

    # Redis up: the rate limits and the throttle count, in Redis.
    for _ in range(2):
        assert signed_in_session(live_server.url, owner.email, "wrong")[1].status_code == 200
    _, refused = signed_in_session(live_server.url, owner.email, PASSWORD)
    assert "Too many failed login attempts" in refused.text
    assert [requests.get(me, headers=api, timeout=10).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]

    redis_server.stop()
    started = time.monotonic()
    browser, signed_in = signed_in_session(live_server.url, owner.email, PASSWORD)
    assert signed_in.status_code == 302, signed_in.text  # the rate limit lets it through
    dashboard = browser.get(f"{live_server.url}/", timeout=10)
    assert dashboard.status_code == 200 and owner.email in dashboard.text
    assert [requests.get(me, headers=api, timeout=10).status_code for _ in range(3)] == [200] * 3
    invited = requests.post(
        f"{live_server.url}/api/v1/accounts/{account.pk}/invitations/",
        json={"email": "invitee@example.com", "role": "member", "with_seat": True},
        headers=api,
        timeout=10,
    )
    assert invited.status_code == 201, invited.text
    health = requests.get(f"{live_server.url}/healthz", timeout=10)
    assert time.monotonic() - started < 15  # ten requests, no timeouts piling up
    assert health.status_code == 503
    assert health.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "cache": "unavailable", "broker": "unavailable"},
    }
    message = OutboxMessage.objects.get(task=send_invitation_email.name)
    assert message.sent_at is None and message.attempts == 1  # refused, kept
    assert mail.outbox == []

    # Redis back: the relay publishes the job, a worker runs it, the mail goes out.
    redis_server.start()
    assert outbox.relay() == 1
    with start_worker(portal_on, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        wait_for(lambda: mail.outbox, 30, "the invitation mail")
    assert [m.to for m in mail.outbox] == [["invitee@example.com"]]
    message.refresh_from_db()
    assert message.sent_at and message.done_at
    assert requests.get(f"{live_server.url}/healthz", timeout=10).status_code == 200


# --- a worker killed in the middle of a job ----------------------------------------------


@pytest.fixture
def worker_database(tmp_path, django_db_blocker):
    """The test database as a URL another process can open: PostgreSQL's test database,
    or a file copy of SQLite's in-memory one (for a transactional test: a copy taken
    inside a test's transaction waits for it forever)."""
    from django.db import connection

    with django_db_blocker.unblock():
        db = connection.settings_dict
        if connection.vendor == "postgresql":
            return (
                f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            )
        connection.ensure_connection()
        path = tmp_path / "worker.sqlite3"
        with sqlite3.connect(path) as copy:
            connection.connection.backup(copy)
        copy.close()
        return f"sqlite:///{path}"


class Worker:
    """`celery -A config worker` in a process of its own, on the test's Redis and
    database, with a visibility timeout of seconds rather than minutes."""

    def __init__(self, redis_server, database_url, tmp_path, name):
        self.log = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "REDIS_URL": redis_server.url(0),
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "DATABASE_URL": database_url,
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
        }
        env.pop("CELERY_BROKER_URL", None)
        with self.log.open("wb") as log:
            # A fixed command line; start_new_session: SIGKILL goes to the whole group.
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                    *("--pool=solo", "--concurrency=1", "-I", "tests.outage_tasks"),
                    *("--without-mingle", "--without-gossip", "--without-heartbeat"),
                    *("--loglevel=INFO", "-n", f"{name}@%h"),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_run_again_by_another_worker(
    redis_server, worker_database, tmp_path
):
    runs = tmp_path / "runs.txt"
    runs.touch()
    first = Worker(redis_server, worker_database, tmp_path, "first")
    second = None
    try:
        producer = Celery("outage-test", broker=redis_server.url(0))
        producer.conf.task_serializer = "json"
        producer.send_task("tests.outage_tasks.block", args=[str(runs), 3])
        wait_for(lambda: "started" in runs.read_text(), 30, "the first worker to start the job")
        started_at = time.monotonic()
        first.kill()
        # The job is out (unacknowledged) until its visibility timeout passes; the next
        # worker to sweep Redis after that (here, the new one as it starts) takes it back.
        time.sleep(max(0.0, started_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
        second = Worker(redis_server, worker_database, tmp_path, "second")
        wait_for(lambda: "finished" in runs.read_text(), 30, "the job to be run again")
        redelivered_after = time.monotonic() - started_at
        time.sleep(1)  # no third run
        lines = runs.read_text().split()
    except AssertionError as exc:
        outputs = first.output() + (second.output() if second else "")
        raise AssertionError(f"{exc}\n{outputs}") from exc
    finally:
        first.kill()
        if second:
            second.kill()
    assert lines == [
        *("started", str(first.process.pid)),
        *("started", str(second.process.pid)),
        *("finished", str(second.process.pid)),
    ]
    assert redelivered_after < 30
    assert "Traceback" not in first.output() + second.output()
    # Each worker, as it starts, ran the outbox relay.
    for worker in (first, second):
        assert re.search(r"Task core\.tasks\.outbox_relay\[outbox-.+\] succeeded", worker.output())


# --- PostgreSQL unreachable ----------------------------------------------------------------


@pytest.fixture
def portal_without_its_database(tmp_path):
    """The portal under gunicorn, its PostgreSQL at a port nothing listens on."""
    port, database_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://portal@127.0.0.1:{database_port}/portal",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
    }
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        # A fixed command line.
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "1", "config.wsgi:application"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            requests.get(f"{base_url}/healthz", timeout=5)
        except requests.ConnectionError:
            assert process.poll() is None, log.read_text()
            return False
        return True

    try:
        wait_for(answers, 60, "gunicorn to serve")
        yield base_url, database_port
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_with_postgresql_unreachable_pages_and_the_api_answer_503(portal_without_its_database):
    base_url, database_port = portal_without_its_database
    health = requests.get(f"{base_url}/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "cache": "ok", "broker": "ok"},
    }
    # A signed-in visitor's page needs the session, in the database.
    page = requests.get(f"{base_url}/", cookies={"sessionid": "a" * 32}, timeout=10)
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Briefly unavailable" in page.text
    browser = requests.Session()
    form = browser.get(f"{base_url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    sign_in = browser.post(
        f"{base_url}/accounts/login/",
        {"login": "someone@example.com", "password": "x", "csrfmiddlewaretoken": token},
        timeout=10,
    )
    assert sign_in.status_code == 503 and "Briefly unavailable" in sign_in.text
    api = requests.get(f"{base_url}/api/v1/me/", headers={"Authorization": "Token x"}, timeout=10)
    assert api.status_code == 503 and api.headers["Retry-After"] == "30"
    assert api.json() == {
        "detail": "The service is briefly unavailable. Please try again in a minute."
    }
    for answer in (health, page, sign_in, api):
        for word in ("psycopg", "OperationalError", "Traceback", "connection", str(database_port)):
            assert word not in answer.text
