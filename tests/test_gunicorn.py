"""gunicorn.conf.py: gunicorn reads it with sane values, and gunicorn serving the portal
with it refuses an oversized body with 413 before reading it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gunicorn.app.base import Application

from tests.test_request_limits import TWO_GB, raw_post

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "gunicorn.conf.py"


class ConfigOnly(Application):
    """gunicorn's own loading of a config file, without an app to serve."""

    def load_config(self):
        self.load_config_from_file(str(CONF))

    def load(self):
        raise AssertionError("nothing is served")


def test_gunicorn_reads_the_config_file_with_sane_values(monkeypatch):
    for name in ("WEB_CONCURRENCY", "GUNICORN_BIND", "PORT", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    cfg = ConfigOnly().cfg
    assert cfg.bind == ["0.0.0.0:8000"]
    assert cfg.workers >= 3 and cfg.worker_class_str == "sync"
    assert 10 <= cfg.timeout <= 60 and 10 <= cfg.graceful_timeout <= cfg.timeout
    assert 1 <= cfg.keepalive <= 10
    assert cfg.limit_request_line == 4094
    assert 20 <= cfg.limit_request_fields <= 100
    assert cfg.limit_request_field_size == 8190
    assert cfg.preload_app is True
    assert cfg.worker_tmp_dir == ("/dev/shm" if os.path.isdir("/dev/shm") else None)  # noqa: S108
    assert cfg.accesslog == "-"


def test_every_name_in_the_config_file_is_a_gunicorn_setting():
    # gunicorn skips names it does not know: a misspelt setting would be ignored silently.
    namespace = {}
    exec(compile(CONF.read_text(), str(CONF), "exec"), namespace)  # noqa: S102
    names = {n for n, v in namespace.items() if not n.startswith("_") and not callable(v)}
    names -= {"multiprocessing", "os"}
    assert names <= set(ConfigOnly().cfg.settings), names - set(ConfigOnly().cfg.settings)
    assert {"bind", "workers", "timeout", "limit_request_line", "preload_app"} <= names


def test_the_environment_sets_bind_workers_and_timeout(monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9000,unix:/run/portal.sock")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_TIMEOUT", "45")
    cfg = ConfigOnly().cfg
    assert cfg.bind == ["127.0.0.1:9000", "unix:/run/portal.sock"]
    assert (cfg.workers, cfg.timeout) == (3, 45)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn_url(tmp_path_factory):
    """gunicorn with gunicorn.conf.py, one worker, serving the test settings with a limit of
    100,000 bytes. Only the middleware's refusals are asked of it: it has no database."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REQUEST_BODY_MAX_BYTES": "100000",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not listen within 60 s: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_gunicorn_answers_a_2_gb_declaration_at_once(gunicorn_url):
    status, headers, body, took = raw_post(
        gunicorn_url,
        "/api/v1/refund-requests/",
        {"Content-Type": "application/json", "Content-Length": TWO_GB},
    )
    assert status == 413, body[:300]
    assert headers["Content-Type"] == "application/json"
    assert b"larger than 0.1 MB" in body
    assert took < 2, f"the 413 took {took:.1f} s: the server waited for the body"


def test_gunicorn_refuses_a_chunked_body_over_the_limit(gunicorn_url):
    host, port = gunicorn_url.removeprefix("http://").split(":")
    chunk = b"x" * 10_000
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /settings/billing/ HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        # Eleven chunks of 10,000 bytes: the refusal comes once the 100,001st byte is read.
        for _ in range(11):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    status_line = answer.partition(b"\r\n")[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:300]
    assert b"This request is larger than 0.1 MB" in answer
