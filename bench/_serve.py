"""Pages measured as production serves them: gunicorn (gunicorn.conf.py, sync workers,
preload_app) on loopback with config.settings.bench, over the bench's throwaway database,
beside the bare view /bench/bare/ in the same run.

    from _common import django_setup, throwaway_database, analyze
    from _serve import Served, login_cookie

    django_setup("config.settings.bench")
    with throwaway_database(file=True):   # SQLite: a file the workers can open
        ...build..., analyze()
        with Served(workers=2) as server:
            bare = server.measure("/bench/bare/", cookie, requests=200)
            page = server.measure("/settings/billing/", cookie, requests=200)
            print(server.memory())   # RSS and private memory per worker

Requests are sent one at a time (each figure is a page's own time, not the server's
throughput) on a fresh connection each, as a sync worker closes after every answer.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, percentile


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def login_cookie(user) -> str:
    """A session for `user` in the bench's database, as the Cookie header's value."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def database_url() -> str:
    """DATABASE_URL for the workers: the throwaway database this process built."""
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] or ""
    if conf.get("PASSWORD"):
        auth += f":{conf['PASSWORD']}"
    host = f"{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{conf['NAME']}"


@dataclass
class Timing:
    path: str
    requests: int
    p50: float
    p95: float
    status: int


class Served:
    """gunicorn serving the portal on a free loopback port, stopped on exit."""

    def __init__(self, workers: int = 2, settings: str = "config.settings.bench"):
        self.workers = workers
        self.settings = settings
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-gunicorn-{self.port}.log"  # noqa: S108

    def __enter__(self) -> Served:
        from django.db import connection

        if connection.vendor == "sqlite" and connection.settings_dict["NAME"] in ("", ":memory:"):
            raise RuntimeError(
                "gunicorn's workers need a database file: throwaway_database(file=True)"
            )
        connection.close()  # the workers see everything committed so far
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": self.settings,
            "DATABASE_URL": database_url(),
            "WEB_CONCURRENCY": str(self.workers),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_CMD_ARGS": "--access-logfile=/dev/null",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [str(gunicorn), "-c", str(ROOT / "gunicorn.conf.py"), "config.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.log}")
            try:
                if self._get("/bench/bare/")[0] == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer within 60 s: see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _get(self, path: str, cookie: str = "") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}
            if cookie:
                headers["Cookie"] = cookie
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def measure(
        self, path: str, cookie: str = "", *, requests: int = 200, warm: int = 20
    ) -> Timing:
        """p50 and p95 in ms of `requests` GETs of `path`, after `warm` unmeasured ones
        (every worker compiles its templates and fills its caches on its first requests).
        A page that does not answer 200 is an error, not a figure."""
        for _ in range(warm):
            status, body = self._get(path, cookie)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            status, body = self._get(path, cookie)
            timings.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return Timing(path, requests, percentile(timings, 50), percentile(timings, 95), status)

    def worker_pids(self) -> list[int]:
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent pid is the 2nd field after the command's closing parenthesis.
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
        return sorted(pids)

    def memory(self) -> list[dict]:
        """Per worker, in MB: RSS, PSS (its fair share of pages shared with the others)
        and private memory (pages no other process maps), from /proc/PID/smaps_rollup."""
        rows = []
        for pid in self.worker_pids():
            fields = {}
            for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines()[1:]:
                name, value, *_ = line.split()
                fields[name.rstrip(":")] = int(value) / 1024
            rows.append(
                {
                    "pid": pid,
                    "rss": fields.get("Rss", 0.0),
                    "pss": fields.get("Pss", 0.0),
                    "private": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0),
                    "shared": fields.get("Shared_Clean", 0.0) + fields.get("Shared_Dirty", 0.0),
                }
            )
        return rows
