"""What every bench shares: Django set up, a throwaway database with ANALYZE, percentiles,
and the one line per figure that `make bench` (bench/run_all.py) gathers into its table.

A bench script starts with

    from _common import django_setup
    django_setup()

(bench/ is the script's own folder, so `_common` imports without a package), builds its
data inside `with throwaway_database():`, calls `analyze()` once the data is written, and
ends each figure it measures with `report(...)`.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(settings: str = "config.settings.test") -> None:
    """Django on `settings` (the test settings by default: eager Celery, mail kept in
    memory), on the PostgreSQL of DATABASE_URL when it is set, else SQLite."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import gc

    import django

    django.setup()
    # As every portal process does after start-up (config/wsgi.py, manage.py, a Celery
    # worker's start: core.tasks): what it loaded is left out of the collector's walks.
    gc.freeze()


@contextmanager
def throwaway_database(*, file: bool = False):
    """A test database of its own (test_<name> beside DATABASE_URL's, or SQLite in
    memory; in a temporary file with `file=True`, for other processes such as gunicorn's
    workers), migrated, and dropped afterwards whatever happens."""
    import tempfile

    from django.db import connection

    if file and connection.vendor == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-db-")
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{folder}/bench.sqlite3"
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False, serialize=False)
    try:
        yield connection
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def analyze() -> None:
    """Fresh planner statistics after the bulk load, as autovacuum would give a real
    database: without them PostgreSQL plans the tables as empty. On PostgreSQL also the
    visibility map that autovacuum keeps (VACUUM), without which no index-only scan
    reads a table loaded a moment ago."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
        elif connection.vendor == "sqlite":
            cursor.execute("ANALYZE")


def database_label() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        # A bench that never opened the database (policy_engine) is not made to open it.
        if connection.connection is None:
            return "PostgreSQL"
        return f"PostgreSQL {connection.pg_version // 10000}"
    return connection.vendor


def percentile(values, pct: float) -> float:
    """The nearest-rank percentile (pct in 0..100) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def report(
    bench: str,
    what: str,
    figure: float,
    unit: str,
    *,
    target: str = "",
    ok: bool | None = None,
    baseline: str = "",
) -> bool:
    """Print one measured figure and hand it to `make bench`'s table.

    `bench` is the script (for example "billing_page"), `what` the measure ("overview p95
    at 1x"), `target` the issue's target in words ("<= 100 ms"), `ok` whether it was met
    (None: a figure without a target), `baseline` the same run's reference figure where
    there is one (the bare view's p95 for a page, the 1x figure for a 10x one). Returns `ok` (True when None)."""
    verdict = {True: "OK", False: "MISSED", None: ""}[ok]
    text = f"{what}: {figure:,.1f} {unit}"
    if baseline:
        text += f" (reference: {baseline})"
    if target:
        text += f"; target {target}"
    if verdict:
        text += f" -> {verdict}"
    print(text, flush=True)
    path = os.environ.get("BENCH_REPORT")
    if path:
        row = {
            "bench": bench,
            "what": what,
            "figure": figure,
            "unit": unit,
            "target": target,
            "ok": ok,
            "baseline": baseline,
            "database": database_label() if _django_ready() else "",
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
    return ok is not False


def _django_ready() -> bool:
    from django.apps import apps

    return apps.ready
