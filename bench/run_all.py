#!/usr/bin/env python
"""Every bench, one after the other, and their figures in one table (`make bench`).

    .venv/bin/python bench/run_all.py [--only billing_page,sweeps] [--skip first_run]

Each bench runs in its own process, on the PostgreSQL of DATABASE_URL when it is set
(SQLite otherwise), and hands its figures over through BENCH_REPORT (bench/_common.py
report()). Its own output is shown as it runs; the table follows. A bench that exits 2
does not apply to this database (it says why). Exits 1 when a bench failed or a target
was missed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The order they run in: quick ones first, the fresh-clone run last.
ORDER = [
    "policy_engine",
    "billing_page",
    "staff_queues",
    "marketplace",
    "invoices",
    "mail_intake",
    "renewals",
    "sweeps",
    "deadline_sweep",
    "first_run",
]
NOT_APPLICABLE = 2


def benches() -> list[str]:
    found = {p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_")} - {"run_all"}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--skip", default="", help="comma-separated bench names")
    args = parser.parse_args()
    names = benches()
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    names = [n for n in names if n not in args.skip.split(",")]
    database = "PostgreSQL (DATABASE_URL)" if os.environ.get("DATABASE_URL") else "SQLite"
    outcomes: dict[str, str] = {}
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as report:
        path = report.name
    env = {**os.environ, "BENCH_REPORT": path}
    for name in names:
        print(f"\n=== bench/{name}.py on {database} ===", flush=True)
        started = time.monotonic()
        code = subprocess.run(  # noqa: S603
            [sys.executable, str(HERE / f"{name}.py")], env=env, check=False
        ).returncode
        took = time.monotonic() - started
        outcomes[name] = {0: "ran", NOT_APPLICABLE: "not on this database"}.get(
            code, f"FAILED (exit {code})"
        )
        outcomes[name] += f" in {took:.0f} s"
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    Path(path).unlink(missing_ok=True)
    cells = [["bench", "measure", "figure", "reference (same run)", "target", "result", "database"]]
    for row in rows:
        figure = f"{row['figure']:,.1f} {row['unit']}".strip()
        result = {True: "ok", False: "MISSED", None: ""}[row["ok"]]
        cells.append(
            [
                row["bench"],
                row["what"],
                figure,
                row["baseline"],
                row["target"],
                result,
                row["database"],
            ]
        )
    print("\n" + table(cells))
    print()
    for name, outcome in outcomes.items():
        print(f"bench/{name}.py: {outcome}")
    missed = sum(row["ok"] is False for row in rows)
    failed = sum("FAILED" in outcome for outcome in outcomes.values())
    print(f"\n{len(rows)} figures, {missed} targets missed, {failed} benches failed")
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
