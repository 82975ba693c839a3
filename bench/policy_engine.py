#!/usr/bin/env python
"""Decisions per second of the refund policy engine, and the case runner's time.

    .venv/bin/python bench/policy_engine.py [--lines 100000] [--cases 10000]

100,000 random lines (every kind, reason, window side) across the three presets, one
line per request, then 10,000 generated cases through the runner's load-and-check path.
The generated cases are credit packs under acelle §2, each with the outcome and amount the
text gives (expected()): every one must match, or the bench fails. Target: at least
20,000 decisions per second.
"""

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from _common import django_setup, report

django_setup()

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


def expected(days: int, used: int, units: int = 100, amount: Decimal = Decimal("100.00")):
    """acelle §2 for a credit pack asked for `days` after its purchase with `used` of its
    `units` spent (policy-cases README, "Readings": nothing used within 7 days is refunded
    in full; otherwise the unused units at unit rate within 30 days; after 30 days
    nothing; "within N days" includes day N)."""
    if days <= 7 and used == 0:
        return "refund", amount
    unused = (amount * (units - used) / units).quantize(Decimal("0.01"))
    if days <= 30 and unused > 0:
        return "refund", unused
    return "none", Decimal("0.00")


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
    print(f"engine: {args.lines:,} decisions in {elapsed:.2f} s")
    rate = args.lines / elapsed
    report(
        "policy_engine", "decisions per second", rate, "/s", target=">= 20,000", ok=rate >= 20_000
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.yaml"
        rows = ["policy: acelle", "cases:"]
        for i in range(args.cases):
            paid = date(2026, 1, 1) + timedelta(days=i % 300)
            days, used = i % 40, i % 101
            asked = paid + timedelta(days=days)
            outcome, amount = expected(days, used)
            rows += [
                f"  - name: generated {i}",
                f'    lines: [{{id: c, kind: credit_pack, amount: "100.00", paid: {paid}, units: 100, units_used: {used}}}]',
                f"    request: {{date: {asked}}}",
                f'    expect: {{c: {{outcome: {outcome}, amount: "{amount}"}}}}',
            ]
        path.write_text("\n".join(rows) + "\n")
        started = time.perf_counter()
        results = [run(case) for case in load(str(path))]
        elapsed = time.perf_counter() - started
    matched = sum(r.ok for r in results)
    print(f"runner: {len(results):,} cases loaded and checked in {elapsed:.2f} s")
    report("policy_engine", "generated cases per second", len(results) / elapsed, "/s")
    report(
        "policy_engine",
        "generated cases matching acelle §2",
        100 * matched / len(results),
        "%",
        target="100 %",
        ok=matched == len(results),
    )
    if matched != len(results):
        wrong = next(r for r in results if not r.ok)
        sys.exit(f"{len(results) - matched:,} generated cases did not match, e.g. {wrong}")


if __name__ == "__main__":
    main()
