"""Case files (policy-cases/README.md): parse, run through the engine, report.

A malformed file raises CaseFileError naming the file, the case and the key.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import yaml

from .engine import Context, decide
from .presets import PRESETS
from .types import KINDS, OUTCOMES, REASONS, AccountFacts, Decision, LineFacts, RequestFacts

FILE_KEYS = {"policy", "timezone", "currency", "cases"}
CASE_KEYS = {"name", "account", "lines", "request", "expect"}
ACCOUNT_KEYS = {"status", "partner"}
LINE_KEYS = {
    "id", "kind", "amount", "paid", "first_purchase", "period", "units", "units_used",
    "activated", "delivered", "used", "trial_end", "refund_days", "defective",
}  # fmt: skip
REQUEST_KEYS = {"date", "reason", "event", "evidence", "full_order"}
EXPECT_KEYS = {"outcome", "amount", "clause"}


class CaseFileError(ValueError):
    def __init__(self, file: str, case: str | None, key: str | None, problem: str):
        where = file + (f", case “{case}”" if case else "") + (f", key “{key}”" if key else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    policy: str
    ctx: Context
    account: AccountFacts
    lines: list[LineFacts]
    request: RequestFacts
    expect: dict[str, dict]


@dataclass(frozen=True)
class Result:
    case: Case
    decisions: dict[str, Decision]
    failures: dict[str, str]  # line id -> what differs

    @property
    def ok(self) -> bool:
        return not self.failures


class _Reader:
    def __init__(self, file: str, tz: zoneinfo.ZoneInfo):
        self.file, self.tz, self.case = file, tz, None

    def fail(self, key, problem):
        raise CaseFileError(self.file, self.case, key, problem)

    def mapping(self, value, key, allowed):
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping")
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.fail(f"{key}.{unknown[0]}" if key else unknown[0], "is not a known key")
        return value

    def date(self, value, key) -> dt.date:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                self.fail(key, "a datetime needs its UTC offset")
            return value.astimezone(self.tz).date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                self.fail(key, f"“{value}” is not a date")
            if len(value) <= 10:
                return parsed.date()
            if parsed.tzinfo is None:
                self.fail(key, "a datetime needs its UTC offset")
            return parsed.astimezone(self.tz).date()
        self.fail(key, f"“{value}” is not a date")

    def amount(self, value, key) -> Decimal:
        if not isinstance(value, str):
            self.fail(key, 'must be a decimal string such as "49.00"')
        try:
            amount = Decimal(value)
        except InvalidOperation:
            self.fail(key, f"“{value}” is not a decimal amount")
        if not amount.is_finite() or amount < 0:
            self.fail(key, f"“{value}” is not an amount")
        return amount

    def boolean(self, value, key) -> bool:
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def integer(self, value, key) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(key, "must be a whole number, 0 or more")
        return value

    def line(self, raw, index) -> LineFacts:
        key = f"lines[{index}]"
        raw = self.mapping(raw, key, LINE_KEYS)
        for required in ("id", "kind", "amount", "paid"):
            if required not in raw:
                self.fail(f"{key}.{required}", "is missing")
        if raw["kind"] not in KINDS:
            self.fail(f"{key}.kind", f"“{raw['kind']}” is not a kind")
        period = None
        if raw.get("period") is not None:
            value = raw["period"]
            if not isinstance(value, list) or len(value) != 2:
                self.fail(f"{key}.period", "must be [start, end]")
            period = (self.date(value[0], f"{key}.period"), self.date(value[1], f"{key}.period"))
            if period[1] <= period[0]:
                self.fail(f"{key}.period", "must end after it starts")
        units = raw.get("units")
        used = raw.get("units_used", 0)
        if units is not None:
            units = self.integer(units, f"{key}.units")
        used = self.integer(used, f"{key}.units_used")
        if units is not None and used > units:
            self.fail(f"{key}.units_used", "is more than the units")
        return LineFacts(
            id=str(raw["id"]),
            kind=raw["kind"],
            amount=self.amount(raw["amount"], f"{key}.amount"),
            paid=self.date(raw["paid"], f"{key}.paid"),
            first_purchase=self.boolean(raw.get("first_purchase", True), f"{key}.first_purchase"),
            period=period,
            units=units,
            units_used=used,
            activated=self.boolean(raw.get("activated", False), f"{key}.activated"),
            delivered=self.boolean(raw.get("delivered", False), f"{key}.delivered"),
            used=self.boolean(raw.get("used", False), f"{key}.used"),
            trial_end=(
                self.date(raw["trial_end"], f"{key}.trial_end") if raw.get("trial_end") else None
            ),
            refund_days=(
                self.integer(raw["refund_days"], f"{key}.refund_days")
                if raw.get("refund_days") is not None
                else None
            ),
            defective=self.boolean(raw.get("defective", False), f"{key}.defective"),
        )


def load(path: str) -> list[Case]:
    try:
        with open(path, encoding="utf-8") as handle:
            # libyaml's safe loader when the wheel has it: several times faster.
            document = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except OSError as exc:
        raise CaseFileError(path, None, None, f"cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise CaseFileError(path, None, None, f"is not valid YAML ({exc})") from exc
    except ValueError as exc:  # a value YAML resolves but cannot build: 2026-13-01
        raise CaseFileError(path, None, None, f"holds an impossible value ({exc})") from exc
    reader = _Reader(path, zoneinfo.ZoneInfo("UTC"))
    document = reader.mapping(document, "", FILE_KEYS)
    policy = document.get("policy")
    if policy not in PRESETS:
        reader.fail("policy", f"“{policy}” is not a preset ({', '.join(PRESETS)})")
    try:
        reader.tz = zoneinfo.ZoneInfo(str(document.get("timezone", "UTC")))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        reader.fail("timezone", f"“{document.get('timezone')}” is not a time zone")
    from accounts.models import CURRENCIES

    currency = document.get("currency", "USD")
    if currency not in CURRENCIES:
        reader.fail("currency", f"“{currency}” is not a billing currency")
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        reader.fail("cases", "must be a list of cases")
    from .. import calendar

    ctx = Context(
        currency=currency, digits=CURRENCIES[currency], holidays=calendar.vendor_holidays()
    )
    cases = []
    for index, raw in enumerate(raw_cases):
        reader.case = f"#{index + 1}"
        raw = reader.mapping(raw, "", CASE_KEYS)
        reader.case = str(raw.get("name") or f"#{index + 1}")
        account = reader.mapping(raw.get("account") or {}, "account", ACCOUNT_KEYS)
        if account.get("status", "active") not in ("active", "suspended_tos"):
            reader.fail("account.status", "must be active or suspended_tos")
        lines = raw.get("lines")
        if not isinstance(lines, list) or not lines:
            reader.fail("lines", "must be a list of lines")
        facts = [reader.line(line, i) for i, line in enumerate(lines)]
        ids = [line.id for line in facts]
        if len(set(ids)) != len(ids):
            reader.fail("lines", "line ids must be unique within a case")
        request = reader.mapping(raw.get("request"), "request", REQUEST_KEYS)
        if "date" not in request:
            reader.fail("request.date", "is missing")
        reason = request.get("reason", "no_longer_needed")
        if reason not in REASONS:
            reader.fail("request.reason", f"“{reason}” is not a reason")
        expect = reader.mapping(raw.get("expect"), "expect", set(ids))
        for line_id, wanted in expect.items():
            wanted = reader.mapping(wanted, f"expect.{line_id}", EXPECT_KEYS)
            if wanted.get("outcome") not in OUTCOMES:
                reader.fail(
                    f"expect.{line_id}.outcome", f"“{wanted.get('outcome')}” is not an outcome"
                )
            if "amount" in wanted:
                reader.amount(wanted["amount"], f"expect.{line_id}.amount")
        cases.append(
            Case(
                file=path,
                name=reader.case,
                policy=policy,
                ctx=ctx,
                account=AccountFacts(
                    status=account.get("status", "active"), partner=account.get("partner")
                ),
                lines=facts,
                request=RequestFacts(
                    date=reader.date(request["date"], "request.date"),
                    reason=reason,
                    event=reader.date(request["event"], "request.event")
                    if request.get("event")
                    else None,
                    evidence=reader.boolean(request.get("evidence", False), "request.evidence"),
                    full_order=reader.boolean(
                        request.get("full_order", False), "request.full_order"
                    ),
                ),
                expect=expect,
            )
        )
    return cases


def run(case: Case) -> Result:
    decisions = decide(
        PRESETS[case.policy],
        account=case.account,
        lines=case.lines,
        request=case.request,
        ctx=case.ctx,
    )
    failures = {}
    for line_id, wanted in case.expect.items():
        got = decisions[line_id]
        problems = []
        if got.outcome != wanted["outcome"]:
            problems.append(f"outcome {wanted['outcome']}")
        if "amount" in wanted and got.amount != Decimal(wanted["amount"]):
            problems.append(f"amount {wanted['amount']}")
        if "clause" in wanted and str(wanted["clause"]) not in got.clause:
            problems.append(f"clause containing {wanted['clause']}")
        if problems:
            failures[line_id] = (
                f"expected {', '.join(problems)}; got {got.outcome} {got.amount} ({got.clause})"
            )
    return Result(case=case, decisions=decisions, failures=failures)
