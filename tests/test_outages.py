"""Outages: PostgreSQL unreachable."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.1)
    return result


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
