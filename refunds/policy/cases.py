"""Case files (policy-cases/README.md): parse, run through the engine, report.

A malformed file raises CaseFileError naming the file, the case and the key. No input
makes the reader crash or hang: a file is read only up to a size, and one pass over
the parser's events bounds its nesting and what its aliases expand to before PyYAML
builds anything (_check_events).
"""

import datetime as dt
import gc
import os
import re
import stat
import zoneinfo
from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from .engine import Context, decide
from .presets import PRESETS
from .types import KINDS, OUTCOMES, REASONS, AccountFacts, Decision, LineFacts, RequestFacts

FILE_KEYS = {"policy", "timezone", "currency", "cases"}
CASE_KEYS = {"name", "account", "lines", "request", "expect"}
ACCOUNT_KEYS = {"status", "partner"}
LINE_KEYS = {
    "id", "kind", "amount", "paid", "first_purchase", "period", "units", "units_used",
    "activated", "delivered", "used", "trial_end", "refund_days", "defective", "refunded",
}  # fmt: skip
REQUEST_KEYS = {"date", "reason", "event", "evidence", "full_order"}
EXPECT_KEYS = {"outcome", "amount", "clause"}
STATUSES = ("active", "suspended_tos")

# The limits of the README's "malformed" paragraph, and the reader's own.
FIRST_YEAR, LAST_YEAR = 1970, 2199
WHOLE_DIGITS = 12  # digits before the point of an amount
MAX_REFUND_DAYS = 3650
MAX_UNITS = 10**12
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 500_000  # some 14,000 cases
MAX_DEPTH = 50  # the format itself nests 6 deep
ALIAS_BUDGET = 10_000  # nodes that aliases may add to a file, all told


def counts_from_period(policy: str, kind: str) -> bool:
    """Rules that count from the service period (onecloud §1, onecloud §4); the README
    makes `period` mandatory for these kinds."""
    return kind == "app_subscription" or (policy == "onecloud" and kind == "subscription")


class CaseFileError(ValueError):
    def __init__(self, file: str, case: str | None, key: str | None, problem: str):
        self.file, self.case, self.key, self.problem = file, case, key, problem
        where = file + (f", case “{case}”" if case else "") + (f", key “{key}”" if key else "")
        super().__init__(f"{where}: {problem}")

    def as_dict(self) -> dict:
        return {"file": self.file, "case": self.case, "key": self.key, "problem": self.problem}


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


# --- YAML ---------------------------------------------------------------------------------

# libyaml's loader when the wheel has it: several times faster.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class _Invalid:
    """A scalar that YAML resolves but cannot build (2026-13-01, a 4,000-digit number):
    kept as text, so that the reader reports it with its case and key."""

    text: str


class _Mapping(dict):
    twice: tuple = ()  # keys given twice in this mapping, for the reader to report


class CaseLoader(_BaseLoader):
    """The safe loader, but a mapping remembers the keys it was given twice, and a scalar
    it cannot build becomes an _Invalid instead of an exception without a key."""

    def flatten_mapping(self, node):
        # The pairs `<<` merges in come first, then the mapping's own; the first flatten
        # (another mapping's merge may come before this one's) counts the own.
        if not hasattr(node, "own"):
            node.own = sum(key.tag != _MERGE for key, _ in node.value)
        super().flatten_mapping(node)

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises
        self.flatten_mapping(node)
        merged = len(node.value) - node.own
        mapping, seen, twice = _Mapping(), set(), []
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            if index >= merged:  # an own key may override a merged one, not another own
                if key in seen:
                    twice.append(key)
                seen.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        if twice:
            mapping.twice = tuple(twice)
        return mapping

    def construct_yaml_map(self, node):
        data = _Mapping()
        yield data
        value = self.construct_mapping(node)
        data.update(value)
        if value.twice:
            data.twice = value.twice


def _lenient(construct, longest=None):
    def build(loader, node):
        if longest is not None and len(node.value) > longest:
            # int() of a long sexagesimal "1:0:0:…" takes quadratic time
            return _Invalid(node.value)
        try:
            return construct(loader, node)
        except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError):
            return _Invalid(str(node.value))

    return build


CaseLoader.add_constructor("tag:yaml.org,2002:map", CaseLoader.construct_yaml_map)
for _tag, _longest in (("int", 4000), ("float", 4000), ("bool", None), ("timestamp", None)):
    _tag = f"tag:yaml.org,2002:{_tag}"
    CaseLoader.add_constructor(_tag, _lenient(CaseLoader.yaml_constructors[_tag], _longest))


def _read(path: str) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        raise CaseFileError(
            path, None, None, f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        ) from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        problem = (
            "is a directory, not a case file"
            if stat.S_ISDIR(mode)
            else "is not a regular file (a pipe or a device?)"
        )
        raise CaseFileError(path, None, None, problem)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise CaseFileError(path, None, None, f"cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_BYTES:
        raise CaseFileError(path, None, None, f"is larger than {MAX_BYTES // 2**20} MB")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFileError(
            path, None, None, f"is not UTF-8 text (byte {exc.start:,}: a binary file?)"
        ) from exc
    if b"\0" in data:
        raise CaseFileError(path, None, None, "holds a NUL byte: a binary file?")
    return data


def _check_events(data: bytes, file: str) -> None:
    """Bound the document before it is composed. libyaml's composer recurses in C (it
    crashes some 50,000 levels deep) and its scanner is quadratic in flow nesting; and
    aliases can make a small file stand for billions of nodes: PyYAML shares them, but
    `<<` merges copy them, and whatever walks the result walks every copy."""
    # One frame per open collection: [mapping?, anchor, nodes, children, key, name].
    frames: list[list] = []
    sizes: dict = {}  # anchor -> the nodes it stands for (None while still open)
    added = nodes = 0
    for event in yaml.parse(data, Loader=_BaseLoader):
        kind = type(event)
        if kind is ScalarEvent:
            size = 1
            nodes += 1
            if nodes > MAX_NODES:
                _fail_at(file, frames, f"holds more than {MAX_NODES:,} values")
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif kind is AliasEvent:
            size = sizes.get(event.anchor, 1)  # undefined: the composer says so
            if size is None:
                _fail_at(file, frames, f"the alias *{event.anchor} is inside its own anchor")
            added += size
            if added > ALIAS_BUDGET:
                _fail_at(
                    file,
                    frames,
                    f"its aliases expand past {ALIAS_BUDGET:,} values (*{event.anchor})",
                )
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if len(frames) == MAX_DEPTH:
                _fail_at(file, frames, f"nests deeper than {MAX_DEPTH} levels")
            if event.anchor is not None:
                sizes[event.anchor] = None
            nodes += 1
            if nodes > MAX_NODES:
                _fail_at(file, frames, f"holds more than {MAX_NODES:,} values")
            frames.append([kind is MappingStartEvent, event.anchor, 1, 0, None, None])
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            frame = frames.pop()
            size = frame[2]
            if frame[1] is not None:
                sizes[frame[1]] = size
        else:
            if kind is DocumentStartEvent:
                sizes = {}
            continue
        if frames:
            parent = frames[-1]
            parent[2] += size
            if parent[0]:
                if not parent[3] % 2:
                    parent[4] = event.value if kind is ScalarEvent else None
                elif parent[4] == "name" and kind is ScalarEvent:
                    parent[5] = event.value
            parent[3] += 1


def _fail_at(file, frames, problem):
    """A CaseFileError for the place the event pass has reached: the case, and the key
    within it."""
    parts = []
    for mapping, _, _, children, key, _ in frames:
        if not mapping:
            parts.append(f"[{children}]")
        else:
            parts.append(("." if parts else "") + (_name(key) if children % 2 else "?"))
    case = None
    if len(frames) > 2 and frames[0][4] == "cases" and not frames[1][0] and frames[2][0]:
        case = _short(frames[2][5]) if frames[2][5] else f"#{frames[1][3] + 1}"
        parts = parts[2:]
        parts[0] = parts[0].lstrip(".")
    raise CaseFileError(file, case, _short("".join(parts), 80) or None, problem)


def _parse(path: str, data: bytes):
    # Nodes are many and acyclic: collecting while they are built is what makes a large
    # file slow (quadratic in the number of cases), so the collector waits.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _check_events(data, path)
        loader = CaseLoader(data)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except CaseFileError:
        raise
    except yaml.YAMLError as exc:
        raise CaseFileError(path, None, None, f"is not valid YAML ({_short(exc, 300)})") from exc
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as exc:
        raise CaseFileError(
            path, None, None, f"holds a value YAML cannot build ({_short(exc, 300)})"
        ) from exc
    except RecursionError as exc:
        raise CaseFileError(path, None, None, "nests too deep") from exc
    finally:
        if collecting:
            gc.enable()


# --- values ---------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def _short(value, longest=40) -> str:
    text = str(value)
    return text if len(text) <= longest else text[:longest] + "…"


def _show(value) -> str:
    """A value for a message: short, and never the walk of an alias bomb."""
    if isinstance(value, _Invalid):
        value = value.text
    if isinstance(value, str):
        return f"“{_short(value)}”"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}" if value.bit_length() < 128 else "a number of more than 38 digits"
    if isinstance(value, float | dt.date):
        return f"{value}"
    return {list: "a list", dict: "a mapping", _Mapping: "a mapping", bytes: "binary data"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _name(key) -> str:
    """A mapping key for a message's key path."""
    return _short(key) if isinstance(key, str) else _show(key)


def _join(key, child) -> str:
    return f"{key}.{_name(child)}" if key else _name(child)


class _Reader:
    def __init__(self, file: str):
        self.file, self.case = file, None
        self.tz = zoneinfo.ZoneInfo("UTC")
        self.currency, self.digits = "USD", 2

    def fail(self, key, problem):
        raise CaseFileError(self.file, self.case, key or None, problem)

    def mapping(self, value, key, allowed):
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, not {_show(value)}")
        if getattr(value, "twice", ()):
            self.fail(_join(key, value.twice[0]), "is given twice")
        unknown = [name for name in value if name not in allowed]
        if unknown:
            self.fail(_join(key, min(unknown, key=_name)), "is not a known key")
        return value

    def choice(self, value, key, options, what):
        if not isinstance(value, str):
            self.fail(key, f"must be {what} name, not {_show(value)}")
        if value not in options:
            self.fail(key, f"{_show(value)} is not {what} ({', '.join(options)})")
        return value

    def text(self, value, key) -> str:
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {_show(value)}")
        return value

    def date(self, value, key) -> dt.date:
        if isinstance(value, str):
            value = self._date_text(value, key)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                self.fail(key, "a datetime needs its UTC offset")
            # Before converting: near years 1 and 9999 the conversion overflows.
            self._in_range(value, value, key)
            local = value.astimezone(self.tz).date()
        elif isinstance(value, dt.date):
            local = value
        elif isinstance(value, _Invalid):
            self.fail(key, f"{_show(value)} is not a date that exists")
        else:
            self.fail(key, f"{_show(value)} is not a date")
        self._in_range(local, value, key)
        return local

    def _date_text(self, value, key):
        if _DATE.fullmatch(value):
            parse = dt.date.fromisoformat
        elif _DATETIME.fullmatch(value):
            parse = dt.datetime.fromisoformat
        else:
            self.fail(key, f"{_show(value)} is not a date (YYYY-MM-DD, or ISO with an offset)")
        try:
            return parse(value)
        except ValueError:
            self.fail(key, f"{_show(value)} is not a date that exists")

    def _in_range(self, day, given, key):
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            self.fail(key, f"{_show(given)} lies outside the years {FIRST_YEAR} to {LAST_YEAR}")

    def amount(self, value, key) -> Decimal:
        """A plain decimal string (README): digits, then a point and at most the
        currency's minor unit of decimals. No sign, exponent, underscore or space."""
        example = "49" if not self.digits else "49." + "0" * self.digits
        if not isinstance(value, str):
            self.fail(key, f'must be a decimal string such as "{example}", not {_show(value)}')
        match = _DECIMAL.fullmatch(value)
        if not match:
            self.fail(key, f'{_show(value)} is not a plain decimal amount such as "{example}"')
        whole, decimals = match.groups()
        if len(whole) > WHOLE_DIGITS:
            self.fail(key, f"{_show(value)} has more than {WHOLE_DIGITS} digits before the point")
        if decimals is not None and len(decimals) > self.digits:
            self.fail(
                key,
                f"{_show(value)} has more decimals than {self.currency} has ({self.digits})",
            )
        return Decimal(value)

    def boolean(self, value, key) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {_show(value)}")
        return value

    def integer(self, value, key, least=0, most=MAX_UNITS) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            self.fail(key, f"must be a whole number from {least:,} to {most:,}, not {_show(value)}")
        return value

    def line_id(self, value, key) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            self.fail(key, f"must be a name or a whole number, not {_show(value)}")
        return f"{value}"

    def line(self, raw, index, policy) -> LineFacts:
        key = f"lines[{index}]"
        raw = self.mapping(raw, key, LINE_KEYS)
        for required in ("id", "kind", "amount", "paid"):
            if required not in raw:
                self.fail(f"{key}.{required}", "is missing")
        kind = self.choice(raw["kind"], f"{key}.kind", KINDS, "a kind")
        amount = self.amount(raw["amount"], f"{key}.amount")
        period = None
        if raw.get("period") is not None:
            value = raw["period"]
            if not isinstance(value, list) or len(value) != 2:
                self.fail(f"{key}.period", f"must be [start, end], not {_show(value)}")
            period = (
                self.date(value[0], f"{key}.period[0]"),
                self.date(value[1], f"{key}.period[1]"),
            )
            if period[1] <= period[0]:
                self.fail(f"{key}.period", "must end after it starts")
        elif counts_from_period(policy, kind):
            self.fail(f"{key}.period", f"is missing: the {policy} rule for {kind} counts from it")
        units = raw.get("units")
        if units is not None:
            units = self.integer(units, f"{key}.units", least=1)
        used = self.integer(raw.get("units_used", 0), f"{key}.units_used")
        if units is not None and used > units:
            self.fail(f"{key}.units_used", f"{used:,} is more than the {units:,} units")
        refunded = self.amount(raw.get("refunded", "0"), f"{key}.refunded")
        if refunded > amount:
            self.fail(f"{key}.refunded", f"{_show(raw['refunded'])} is more than the amount paid")
        trial_end = raw.get("trial_end")
        refund_days = raw.get("refund_days")
        return LineFacts(
            id=self.line_id(raw["id"], f"{key}.id"),
            kind=kind,
            amount=amount,
            paid=self.date(raw["paid"], f"{key}.paid"),
            first_purchase=self.boolean(raw.get("first_purchase", True), f"{key}.first_purchase"),
            period=period,
            units=units,
            units_used=used,
            activated=self.boolean(raw.get("activated", False), f"{key}.activated"),
            delivered=self.boolean(raw.get("delivered", False), f"{key}.delivered"),
            used=self.boolean(raw.get("used", False), f"{key}.used"),
            trial_end=self.date(trial_end, f"{key}.trial_end") if trial_end is not None else None,
            refund_days=(
                self.integer(refund_days, f"{key}.refund_days", most=MAX_REFUND_DAYS)
                if refund_days is not None
                else None
            ),
            defective=self.boolean(raw.get("defective", False), f"{key}.defective"),
            refunded=refunded,
        )

    def request(self, raw, lines) -> RequestFacts:
        request = self.mapping(raw, "request", REQUEST_KEYS)
        if "date" not in request:
            self.fail("request.date", "is missing")
        on = self.date(request["date"], "request.date")
        for line in lines:
            if on < line.paid:
                self.fail("request.date", f"{on} is before line “{line.id}” was paid ({line.paid})")
        event = request.get("event")
        if event is not None:
            event = self.date(event, "request.event")
            if event > on:
                self.fail("request.event", f"{event} is after the request ({on})")
        return RequestFacts(
            date=on,
            reason=self.choice(
                request.get("reason", "no_longer_needed"), "request.reason", REASONS, "a reason"
            ),
            event=event,
            evidence=self.boolean(request.get("evidence", False), "request.evidence"),
            full_order=self.boolean(request.get("full_order", False), "request.full_order"),
        )

    def expect(self, raw, ids) -> dict[str, dict]:
        if not isinstance(raw, dict):
            self.fail("expect", f"must be a mapping of line ids, not {_show(raw)}")
        if getattr(raw, "twice", ()):
            self.fail(_join("expect", raw.twice[0]), "is given twice")
        expect = {}
        for line_id, wanted in raw.items():
            key = _join("expect", line_id)
            if isinstance(line_id, bool) or not isinstance(line_id, str | int):
                self.fail(key, "is not a line of this case")
            if f"{line_id}" not in ids:
                self.fail(key, "is not a line of this case")
            if f"{line_id}" in expect:
                self.fail(key, "is given twice")
            wanted = self.mapping(wanted, key, EXPECT_KEYS)
            if "outcome" not in wanted:
                self.fail(f"{key}.outcome", "is missing")
            self.choice(wanted["outcome"], f"{key}.outcome", OUTCOMES, "an outcome")
            if "amount" in wanted:
                self.amount(wanted["amount"], f"{key}.amount")
            if "clause" in wanted:
                self.text(wanted["clause"], f"{key}.clause")
            expect[f"{line_id}"] = wanted
        for line_id in ids:
            if line_id not in expect:
                self.fail(_join("expect", line_id), "is missing: expect gives every line")
        return expect


def load(path: str) -> list[Case]:
    document = _parse(path, _read(path))
    reader = _Reader(path)
    if document is None:
        reader.fail(None, "is empty")
    document = reader.mapping(document, "", FILE_KEYS)
    if "policy" not in document:
        reader.fail("policy", f"is missing ({', '.join(PRESETS)})")
    policy = reader.choice(document["policy"], "policy", tuple(PRESETS), "a preset")
    from accounts.models import CURRENCIES, known_timezones

    zone = reader.text(document.get("timezone", "UTC"), "timezone")
    if zone not in known_timezones():
        reader.fail("timezone", f"{_show(zone)} is not a time zone")
    reader.tz = zoneinfo.ZoneInfo(zone)
    reader.currency = reader.choice(
        document.get("currency", "USD"), "currency", tuple(CURRENCIES), "a billing currency"
    )
    reader.digits = CURRENCIES[reader.currency]
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        reader.fail("cases", f"must be a list of cases, not {_show(raw_cases)}")
    from core import calendar

    ctx = Context(
        currency=reader.currency, digits=reader.digits, holidays=calendar.vendor_holidays()
    )
    cases = []
    for index, raw in enumerate(raw_cases):
        reader.case = f"#{index + 1}"
        if not isinstance(raw, dict):
            reader.fail(None, f"must be a mapping, not {_show(raw)}")
        name = raw.get("name")
        if name is not None and (isinstance(name, bool) or not isinstance(name, str | int)):
            reader.fail("name", f"must be a string, not {_show(name)}")
        if name is not None and name != "":
            reader.case = _short(f"{name}", 200)
        raw = reader.mapping(raw, "", CASE_KEYS)
        account = raw.get("account")
        account = reader.mapping({} if account is None else account, "account", ACCOUNT_KEYS)
        partner = account.get("partner")
        if partner is not None:
            reader.text(partner, "account.partner")
        lines = raw.get("lines")
        if not isinstance(lines, list) or not lines:
            reader.fail("lines", f"must be a list of lines, not {_show(lines)}")
        facts = [reader.line(line, i, policy) for i, line in enumerate(lines)]
        ids = [line.id for line in facts]
        if len(set(ids)) != len(ids):
            reader.fail("lines", "line ids must be unique within a case")
        cases.append(
            Case(
                file=path,
                name=reader.case,
                policy=policy,
                ctx=ctx,
                account=AccountFacts(
                    status=reader.choice(
                        account.get("status", "active"), "account.status", STATUSES, "a status"
                    ),
                    partner=partner,
                ),
                lines=facts,
                request=reader.request(raw.get("request"), facts),
                expect=reader.expect(raw.get("expect"), ids),
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
        if "clause" in wanted and wanted["clause"] not in got.clause:
            problems.append(f"clause containing {wanted['clause']}")
        if problems:
            failures[line_id] = (
                f"expected {', '.join(problems)}; got {got.outcome} {got.amount} ({got.clause})"
            )
    return Result(case=case, decisions=decisions, failures=failures)
