#!/usr/bin/env python
"""Decisions per second of the refund policy engine, and the case runner's time.

    .venv/bin/python bench/policy_engine.py [--lines 100000] [--cases 10000]

100,000 random lines (every kind, reason, window side) across the three presets, one
line per request, then 10,000 generated cases through the runner's load-and-check path.
Target: at least 20,000 decisions per second.
"""

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from core.calendar import vendor_holidays  # noqa: E402
from refunds.policy import (  # noqa: E402
    KINDS,
    PRESETS,
    REASONS,
    AccountFacts,
    Context,
    LineFacts,
    RequestFacts,
    decide,
)
from refunds.policy.cases import load, run  # noqa: E402


def random_line(rng: random.Random, i: int) -> tuple[LineFacts, RequestFacts, AccountFacts]:
    paid = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
    kind = rng.choice(KINDS)
    units = rng.choice([None, 100, 50_000])
    line = LineFacts(
        id=str(i),
        kind=kind,
        amount=Decimal(rng.randrange(100, 50_000)) / 100,
        paid=paid,
        first_purchase=rng.random() < 0.7,
        period=(paid, paid + timedelta(days=rng.choice([30, 31, 365]))),
        units=units,
        units_used=rng.randrange(units + 1) if units else 0,
        activated=rng.random() < 0.3,
        delivered=rng.random() < 0.5,
        trial_end=paid if rng.random() < 0.1 else None,
        refund_days=rng.choice([None, None, 7]),
    )
    request = RequestFacts(
        date=paid + timedelta(days=rng.randrange(60)),
        reason=rng.choice(REASONS),
        event=paid + timedelta(days=rng.randrange(20)) if rng.random() < 0.5 else None,
        full_order=rng.random() < 0.1,
    )
    account = AccountFacts(
        status="suspended_tos" if rng.random() < 0.05 else "active",
        partner="Northwind" if rng.random() < 0.05 else None,
    )
    return line, request, account


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(2026)
    ctx = Context(currency="USD", digits=2, holidays=vendor_holidays())
    presets = list(PRESETS.values())
    work = [random_line(rng, i) for i in range(args.lines)]
    started = time.perf_counter()
    for i, (line, request, account) in enumerate(work):
        decide(presets[i % 3], account=account, lines=[line], request=request, ctx=ctx)
    elapsed = time.perf_counter() - started
    print(
        f"engine: {args.lines:,} decisions in {elapsed:.2f} s = "
        f"{args.lines / elapsed:,.0f} per second (target: at least 20,000)"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.yaml"
        rows = ["policy: acelle", "cases:"]
        for i in range(args.cases):
            paid = date(2026, 1, 1) + timedelta(days=i % 300)
            asked = paid + timedelta(days=i % 40)
            rows += [
                f"  - name: generated {i}",
                f'    lines: [{{id: c, kind: credit_pack, amount: "100.00", paid: {paid}, units: 100, units_used: {i % 101}}}]',
                f"    request: {{date: {asked}}}",
                "    expect: {c: {outcome: refund}}",
            ]
        path.write_text("\n".join(rows) + "\n")
        started = time.perf_counter()
        results = [run(case) for case in load(str(path))]
        elapsed = time.perf_counter() - started
    print(
        f"runner: {len(results):,} cases loaded and checked in {elapsed:.2f} s "
        f"({sum(r.ok for r in results):,} matched the generated expectation)"
    )


if __name__ == "__main__":
    main()
