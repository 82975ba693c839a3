"""Malformed case files (policy-cases/README.md, "A malformed file is reported..."): each
is named with its file, case and key, the runner exits 2 and goes on with the other
files; no input makes it crash, hang or print a traceback."""

import json
import os
import string
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refunds.policy import cases as case_files
from refunds.policy.cases import CaseFileError, load, run
from tests.refunds.test_policy_cases import _check

GOOD_LINE = {"id": "a", "kind": "plugin", "amount": "'1.00'", "paid": "2026-01-01"}
HANG_GUARD = 5.0  # seconds: generous; only there to fail a hang instead of waiting on it


def line(**changes) -> str:
    """A flow mapping for one line; values are YAML text, None leaves the key out."""
    fields = {**GOOD_LINE, **changes}
    pairs = (f"{key}: {value}" for key, value in fields.items() if value is not None)
    return "{" + ", ".join(pairs) + "}"


def case_file(
    lines=None,
    request="{date: 2026-01-02}",
    expect="{a: {outcome: refund}}",
    head="policy: acelle\n",
    name="c",
    extra="",
    raw_lines=None,
) -> str:
    """A file of one case; `lines` is the text inside the lines' brackets, `raw_lines` the
    whole value."""
    lines = raw_lines if raw_lines is not None else f"[{lines or line()}]"
    return (
        f"{head}cases:\n  - name: {name}\n    lines: {lines}\n"
        f"    request: {request}\n    expect: {expect}\n{extra}"
    )


def _bomb(levels=9) -> str:
    """Billion laughs: each anchor stands for nine of the one before."""
    rows = ["- &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"- &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(rows)


JPY = "policy: acelle\ncurrency: JPY\n"
ONECLOUD = "policy: onecloud\n"
BIG = "1" + "0" * 100

MALFORMED = {
    # unknown key, kind, reason, preset, time zone, outcome, status
    "unknown file key": ("policy: acelle\nsurprise: 1\ncases: []\n", None, "surprise"),
    "unknown case key": (case_file(extra="    colour: red\n"), "c", "colour"),
    "unknown line key": (case_file(line(colour="red")), "c", "lines[0].colour"),
    "unknown request key": (case_file(request="{date: 2026-01-02, mood: 1}"), "c", "request.mood"),
    "unknown account key": (
        case_file(extra="    account: {tier: gold}\n"),
        "c",
        "account.tier",
    ),
    "unknown expect key": (
        case_file(expect="{a: {outcome: refund, why: x}}"),
        "c",
        "expect.a.why",
    ),
    "unknown kind": (case_file(line(kind="spaceship")), "c", "lines[0].kind"),
    "unknown reason": (
        case_file(request="{date: 2026-01-02, reason: boredom}"),
        "c",
        "request.reason",
    ),
    "unknown preset": ("policy: nope\ncases: []\n", None, "policy"),
    "missing preset": ("cases: []\n", None, "policy"),
    "unknown time zone": (
        case_file(head="policy: acelle\ntimezone: Mars/Olympus\n"),
        None,
        "timezone",
    ),
    "time zone path": (
        case_file(head="policy: acelle\ntimezone: ../../etc/passwd\n"),
        None,
        "timezone",
    ),
    "unknown currency": (case_file(head="policy: acelle\ncurrency: XYZ\n"), None, "currency"),
    "unknown outcome": (case_file(expect="{a: {outcome: maybe}}"), "c", "expect.a.outcome"),
    "missing outcome": (case_file(expect="{a: {amount: '1.00'}}"), "c", "expect.a.outcome"),
    "unknown status": (case_file(extra="    account: {status: banned}\n"), "c", "account.status"),
    # a value of the wrong type anywhere
    "kind is a list": (case_file(line(kind="[a]")), "c", "lines[0].kind"),
    "name is a mapping": (case_file(name="{x: 1}"), "#1", "name"),
    "name is a bool": (case_file(name="yes"), "#1", "name"),
    "policy is a list": (case_file(head="policy: [acelle]\n"), None, "policy"),
    "timezone is a list": (case_file(head="policy: acelle\ntimezone: [UTC]\n"), None, "timezone"),
    "currency is a mapping": (case_file(head="policy: acelle\ncurrency: {}\n"), None, "currency"),
    "reason is a list": (
        case_file(request="{date: 2026-01-02, reason: [outage]}"),
        "c",
        "request.reason",
    ),
    "outcome is a mapping": (
        case_file(expect="{a: {outcome: {refund: 1}}}"),
        "c",
        "expect.a.outcome",
    ),
    "amount is a float": (case_file(line(amount="1.5")), "c", "lines[0].amount"),
    "amount is an integer": (case_file(line(amount="15")), "c", "lines[0].amount"),
    "amount is infinite": (case_file(line(amount=".inf")), "c", "lines[0].amount"),
    "refunded is a float": (case_file(line(refunded="0.5")), "c", "lines[0].refunded"),
    "expected amount is a float": (
        case_file(expect="{a: {outcome: refund, amount: 1.0}}"),
        "c",
        "expect.a.amount",
    ),
    "clause is a float": (
        case_file(expect="{a: {outcome: refund, clause: 3.1}}"),
        "c",
        "expect.a.clause",
    ),
    "boolean is a string": (
        case_file(line(first_purchase="'yes'")),
        "c",
        "lines[0].first_purchase",
    ),
    "boolean YAML cannot build": (case_file(line(used="!!bool maybe")), "c", "lines[0].used"),
    "units is a float": (case_file(line(kind="credit_pack", units="1.5")), "c", "lines[0].units"),
    "units is a string": (case_file(line(kind="credit_pack", units="'5'")), "c", "lines[0].units"),
    "units YAML cannot build": (
        case_file(line(kind="credit_pack", units="!!int ''")),
        "c",
        "lines[0].units",
    ),
    "period is a date": (case_file(line(period="2026-01-01")), "c", "lines[0].period"),
    "period of three": (
        case_file(line(period="[2026-01-01, 2026-02-01, 2026-03-01]")),
        "c",
        "lines[0].period",
    ),
    "period backwards": (
        case_file(line(period="[2026-02-01, 2026-01-01]")),
        "c",
        "lines[0].period",
    ),
    "lines is a mapping": (case_file(raw_lines="{a: 1}"), "c", "lines"),
    "lines is empty": (case_file(raw_lines="[]"), "c", "lines"),
    "lines is missing": (case_file(raw_lines="null"), "c", "lines"),
    "cases is a mapping": ("policy: acelle\ncases: {a: 1}\n", None, "cases"),
    "case is a list": ("policy: acelle\ncases: [[1]]\n", "#1", None),
    "account is a list": (case_file(extra="    account: []\n"), "c", "account"),
    "partner is a list": (
        case_file(extra="    account: {partner: [Northwind]}\n"),
        "c",
        "account.partner",
    ),
    "request is a list": (case_file(request="[2026-01-02]"), "c", "request"),
    "expect is a list": (case_file(expect="[a]"), "c", "expect"),
    "line id is a list": (case_file(line(id="[a]")), "c", "lines[0].id"),
    "line id is a float": (
        case_file(line(id="1.5"), expect="{1.5: {outcome: refund}}"),
        "c",
        "lines[0].id",
    ),
    "line id is a bool": (
        case_file(line(id="true"), expect="{true: {outcome: refund}}"),
        "c",
        "lines[0].id",
    ),
    "line id is empty": (
        case_file(line(id="''"), expect="{'': {outcome: refund}}"),
        "c",
        "lines[0].id",
    ),
    "line ids repeat": (case_file(f"{line()}, {line()}"), "c", "lines"),
    "line ids repeat as 1 and '1'": (
        case_file(f"{line(id='1')}, {line(id=repr('1'))}", expect="{1: {outcome: refund}}"),
        "c",
        "lines",
    ),
    "a line is missing its amount": (case_file(line(amount=None)), "c", "lines[0].amount"),
    "a request is missing its date": (case_file(request="{reason: outage}"), "c", "request.date"),
    # dates that do not exist or lie outside the years 1970 to 2199
    "month 13 (YAML)": (case_file(line(paid="2026-13-01")), "c", "lines[0].paid"),
    "30 February (string)": (case_file(line(paid="'2026-02-30'")), "c", "lines[0].paid"),
    "day 0 (string)": (case_file(line(paid="'2026-01-00'")), "c", "lines[0].paid"),
    "year 9999": (case_file(line(paid="9999-12-31")), "c", "lines[0].paid"),
    "year 1": (case_file(line(paid="0001-01-01")), "c", "lines[0].paid"),
    "year 0 (YAML)": (case_file(line(paid="0000-01-01")), "c", "lines[0].paid"),
    "year 1969": (
        case_file(line(paid="1969-12-31"), request="{date: 1969-12-31}"),
        "c",
        "lines[0].paid",
    ),
    "year 2200": (case_file(request="{date: 2200-01-01}"), "c", "request.date"),
    "year 1 with an offset": (
        case_file(line(paid="'0001-01-01T00:00:00+05:00'")),
        "c",
        "lines[0].paid",
    ),
    "year 9999 with an offset (YAML)": (
        case_file(line(paid="9999-12-31T23:00:00-05:00")),
        "c",
        "lines[0].paid",
    ),
    "a local date in 2200": (
        case_file(request="{date: '2199-12-31T23:00:00-05:00'}"),
        "c",
        "request.date",
    ),
    "a datetime without its offset": (
        case_file(line(paid="'2026-01-01T10:00:00'")),
        "c",
        "lines[0].paid",
    ),
    "a YAML datetime without its offset": (
        case_file(line(paid="2026-01-01 10:00:00")),
        "c",
        "lines[0].paid",
    ),
    "not a date": (case_file(line(paid="'March 3rd'")), "c", "lines[0].paid"),
    "a week date": (case_file(line(paid="'2026-W01-1'")), "c", "lines[0].paid"),
    "a date YAML cannot build": (case_file(line(paid="!!timestamp garbage")), "c", "lines[0].paid"),
    "a date as a number": (case_file(line(paid="20260101")), "c", "lines[0].paid"),
    "a period end that does not exist": (
        case_file(line(period="[2026-01-01, 2026-02-30]")),
        "c",
        "lines[0].period[1]",
    ),
    "a trial end that does not exist": (
        case_file(line(trial_end="'2026-04-31'")),
        "c",
        "lines[0].trial_end",
    ),
    "an event that does not exist": (
        case_file(request="{date: 2026-01-02, event: '2026-01-32'}"),
        "c",
        "request.event",
    ),
    # amounts: a plain decimal string, the currency's decimals, 12 digits before the point
    "an exponent": (case_file(line(amount="'1e3'")), "c", "lines[0].amount"),
    "an exponent, unquoted": (case_file(line(amount="1e3")), "c", "lines[0].amount"),
    "underscores": (case_file(line(amount="'1_000'")), "c", "lines[0].amount"),
    "NaN": (case_file(line(amount="'NaN'")), "c", "lines[0].amount"),
    "Infinity": (case_file(line(amount="'Infinity'")), "c", "lines[0].amount"),
    "a minus sign": (case_file(line(amount="'-1.00'")), "c", "lines[0].amount"),
    "minus zero": (case_file(line(amount="'-0.00'")), "c", "lines[0].amount"),
    "a plus sign": (case_file(line(amount="'+1.00'")), "c", "lines[0].amount"),
    "a leading space": (case_file(line(amount="' 1.00'")), "c", "lines[0].amount"),
    "a trailing space": (case_file(line(amount="'1.00 '")), "c", "lines[0].amount"),
    "a trailing newline": (case_file(line(amount='"1.00\\n"')), "c", "lines[0].amount"),
    "a point without decimals": (case_file(line(amount="'1.'")), "c", "lines[0].amount"),
    "decimals without a whole part": (case_file(line(amount="'.50'")), "c", "lines[0].amount"),
    "a thousands separator": (case_file(line(amount="'1,000.00'")), "c", "lines[0].amount"),
    "non-ASCII digits": (case_file(line(amount="'\u0661\u0660\u0660'")), "c", "lines[0].amount"),
    "an empty amount": (case_file(line(amount="''")), "c", "lines[0].amount"),
    "three decimals in USD": (case_file(line(amount="'1.005'")), "c", "lines[0].amount"),
    "decimals in JPY": (case_file(line(amount="'100.5'"), head=JPY), "c", "lines[0].amount"),
    "a zero decimal in JPY": (case_file(line(amount="'100.0'"), head=JPY), "c", "lines[0].amount"),
    "13 digits before the point": (
        case_file(line(amount="'1234567890123.00'")),
        "c",
        "lines[0].amount",
    ),
    "13 digits with leading zeros": (
        case_file(line(amount="'0000000000001'")),
        "c",
        "lines[0].amount",
    ),
    "an expected amount with an exponent": (
        case_file(expect="{a: {outcome: refund, amount: '1e0'}}"),
        "c",
        "expect.a.amount",
    ),
    "an expected amount with decimals in JPY": (
        case_file(
            line(amount="'100'"), head=JPY, expect="{a: {outcome: refund, amount: '100.00'}}"
        ),
        "c",
        "expect.a.amount",
    ),
    "refunded not an amount": (case_file(line(refunded="'some'")), "c", "lines[0].refunded"),
    "refunded with three decimals": (case_file(line(refunded="'0.001'")), "c", "lines[0].refunded"),
    # limits
    "refund_days above 3650": (case_file(line(refund_days="3651")), "c", "lines[0].refund_days"),
    "refund_days a bool": (case_file(line(refund_days="true")), "c", "lines[0].refund_days"),
    "refund_days negative": (case_file(line(refund_days="-1")), "c", "lines[0].refund_days"),
    "units of 0": (case_file(line(kind="credit_pack", units="0")), "c", "lines[0].units"),
    "units of 10**100": (case_file(line(kind="credit_pack", units=BIG)), "c", "lines[0].units"),
    "units of 10**5000": (
        case_file(line(kind="credit_pack", units="1" + "0" * 5000)),
        "c",
        "lines[0].units",
    ),
    "a sexagesimal number of 100,000 places": (
        case_file(line(kind="credit_pack", units="1" + ":0" * 100_000)),
        "c",
        "lines[0].units",
    ),
    "units used above units": (
        case_file(line(kind="credit_pack", units="5", units_used="6")),
        "c",
        "lines[0].units_used",
    ),
    "units used negative": (
        case_file(line(kind="credit_pack", units_used="-1")),
        "c",
        "lines[0].units_used",
    ),
    "refunded above amount": (case_file(line(refunded="'1.01'")), "c", "lines[0].refunded"),
    "a request before the payment": (case_file(request="{date: 2025-12-31}"), "c", "request.date"),
    "a request before a payment made later that day elsewhere": (
        case_file(
            line(paid="'2026-01-02T01:00:00+00:00'"),
            request="{date: '2026-01-01T23:00:00+00:00'}",
        ),
        "c",
        "request.date",
    ),
    "an event after the request": (
        case_file(request="{date: 2026-01-02, event: 2026-01-03}"),
        "c",
        "request.event",
    ),
    "an app subscription without period": (
        case_file(line(kind="app_subscription")),
        "c",
        "lines[0].period",
    ),
    "a onecloud app subscription without period": (
        case_file(line(kind="app_subscription"), head=ONECLOUD),
        "c",
        "lines[0].period",
    ),
    "a onecloud subscription without period": (
        case_file(line(kind="subscription"), head=ONECLOUD),
        "c",
        "lines[0].period",
    ),
    "an expect that leaves out a line": (
        case_file(f"{line()}, {line(id='b')}"),
        "c",
        "expect.b",
    ),
    "an empty expect": (case_file(expect="{}"), "c", "expect.a"),
    "an expect that names an unknown line": (
        case_file(expect="{a: {outcome: refund}, b: {outcome: none}}"),
        "c",
        "expect.b",
    ),
    "an expect for a null key": (
        case_file(expect="{a: {outcome: refund}, null: {outcome: none}}"),
        "c",
        "expect.null",
    ),
    "an expect that gives a line twice, as 1 and '1'": (
        case_file(line(id="1"), expect="{1: {outcome: refund}, '1': {outcome: refund}}"),
        "c",
        "expect.1",
    ),
    # a duplicated YAML key, at any level
    "a file key twice": ("policy: acelle\npolicy: onecloud\ncases: []\n", None, "policy"),
    "a case key twice": (case_file(extra="    name: d\n"), "d", "name"),
    "a line key twice": (
        case_file("{id: a, kind: plugin, amount: '1.00', paid: 2026-01-01, amount: '2.00'}"),
        "c",
        "lines[0].amount",
    ),
    "a request key twice": (
        case_file(request="{date: 2026-01-02, date: 2026-01-03}"),
        "c",
        "request.date",
    ),
    "an account key twice": (
        case_file(extra="    account: {status: active, status: active}\n"),
        "c",
        "account.status",
    ),
    "an expect key twice": (
        case_file(expect="{a: {outcome: refund}, a: {outcome: none}}"),
        "c",
        "expect.a",
    ),
    "an expect entry key twice": (
        case_file(expect="{a: {outcome: refund, outcome: none}}"),
        "c",
        "expect.a.outcome",
    ),
    "a key twice in block style": (
        "policy: acelle\ncases:\n  - name: c\n    lines:\n      - id: a\n        kind: plugin\n"
        "        kind: usage\n        amount: '1.00'\n        paid: 2026-01-01\n"
        "    request: {date: 2026-01-02}\n    expect: {a: {outcome: refund}}\n",
        "c",
        "lines[0].kind",
    ),
    "true and 1 are the same key": ("policy: acelle\ncases: []\n1: a\ntrue: b\n", None, "true"),
}


@pytest.mark.parametrize(("text", "case", "key"), MALFORMED.values(), ids=MALFORMED.keys())
def test_each_malformed_condition_is_named_with_file_case_and_key(tmp_path, text, case, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = _check(path)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    where = str(path) + (f", case “{case}”" if case else "") + (f", key “{key}”" if key else "")
    assert where + ":" in err
    with pytest.raises(CaseFileError) as raised:
        load(str(path))
    assert (raised.value.case, raised.value.key) == (case, key)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (case_file(line(amount="'1e3'")), '“1e3” is not a plain decimal amount such as "49.00"'),
        (case_file(line(amount="'100.5'"), head=JPY), "“100.5” has more decimals than JPY has (0)"),
        (case_file(line(paid="2026-13-01")), "“2026-13-01” is not a date that exists"),
        (case_file(line(paid="9999-12-31")), "9999-12-31 lies outside the years 1970 to 2199"),
        (case_file(line(refunded="'1.01'")), "“1.01” is more than the amount paid"),
        (case_file(line(kind="[a]")), "must be a kind name, not a list"),
        (
            case_file(line(kind="credit_pack", units=BIG)),
            "must be a whole number from 1 to 1,000,000,000,000, not a number of more than 38 digits",
        ),
        (
            case_file(line(kind="subscription"), head=ONECLOUD),
            "is missing: the onecloud rule for subscription counts from it",
        ),
        (
            case_file(request="{date: 2025-12-31}"),
            "2025-12-31 is before line “a” was paid (2026-01-01)",
        ),
        ("policy: acelle\npolicy: acelle\ncases: []\n", "is given twice"),
    ],
)
def test_the_problem_is_said_plainly(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CaseFileError) as raised:
        load(str(path))
    assert raised.value.problem == problem


@pytest.mark.parametrize(
    "text",
    [
        case_file(line(amount="'123456789012.00'")),  # 12 digits before the point
        case_file(line(amount="'0'")),
        case_file(line(amount="'100'"), head=JPY, expect="{a: {outcome: refund, amount: '100'}}"),
        case_file(line(paid="1970-01-01")),
        case_file(line(paid="2199-12-30"), request="{date: 2199-12-31}"),
        case_file(line(refund_days="3650")),
        case_file(
            line(kind="credit_pack", units="5", units_used="5"), expect="{a: {outcome: none}}"
        ),
        case_file(line(refunded="'1.00'"), expect="{a: {outcome: none}}"),
        case_file(line(id="7"), expect="{7: {outcome: refund}}"),
        case_file(line(id="7"), expect="{'7': {outcome: refund}}"),
        case_file(line(kind="subscription")),  # acelle counts from the payment: no period needed
        case_file(
            line(paid="'2026-01-01T23:30:00-05:00'"), request="{date: '2026-01-02T05:00:00Z'}"
        ),
        case_file(request="{date: 2026-01-02, event: 2026-01-02}"),
        # an anchor and a merge within the budget; the merged key is overridden, not repeated
        case_file(
            "&line {id: a, kind: plugin, amount: '1.00', paid: 2026-01-01}, {<<: *line, id: b}",
            expect="{a: {outcome: refund}, b: {outcome: refund}}",
        ),
    ],
)
def test_values_at_the_limits_are_accepted(tmp_path, text):
    path = tmp_path / "good.yaml"
    path.write_text(text)
    code, out, err = _check(path)
    assert code == 0, err + out


def test_a_merged_key_overridden_is_not_a_key_given_twice():
    # The anchor with a merge is built after the mapping that merges it in again.
    text = "c: &c {k: 0, j: 0}\na: {x: &b {<<: *c, k: 1}}\nd: {<<: *b, k: 2}\ne: {k: 1, k: 2}\n"
    document = yaml.load(text, Loader=case_files.CaseLoader)  # noqa: S506 (the safe loader)
    assert document["d"] == {"k": 2, "j": 0} and document["a"]["x"] == {"k": 1, "j": 0}
    assert [getattr(document[key], "twice", ()) for key in "cade"] == [(), (), (), ("k",)]
    assert document["a"]["x"].twice == ()


# --- files that are not case files ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"# only a comment\n", "is empty"),
        (b"- policy: acelle\n- cases: []\n", "must be a mapping, not a list"),
        (b"hello\n", "must be a mapping, not “hello”"),
        (b"42\n", "must be a mapping, not 42"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "is not UTF-8 text"),
        (bytes(range(256)) * 64, "is not UTF-8 text"),
        (b"policy: acelle\x00\ncases: []\n", "holds a NUL byte"),
        (b"policy: acelle\ncases: []\n---\npolicy: acelle\n", "is not valid YAML"),
        (b"policy: [acelle\n", "is not valid YAML"),
        (b"policy: !!python/object/apply:os.system [ls]\ncases: []\n", "is not valid YAML"),
        (b"? [a]\n: 1\n", "is not valid YAML"),
        (b"x: *nowhere\n", "is not valid YAML"),
        (b"policy: acelle\ncases: []\n" + b"#" * (17 * 2**20), "is larger than 16 MB"),
    ],
    ids=[
        "empty",
        "a comment",
        "a list at the top",
        "a string at the top",
        "a number at the top",
        "a PNG",
        "every byte",
        "a NUL byte",
        "two documents",
        "unclosed",
        "a python tag",
        "an unhashable key",
        "an undefined alias",
        "too large",
    ],
)
def test_a_file_that_is_not_a_case_file_is_reported(tmp_path, content, problem):
    path = tmp_path / "odd.yaml"
    path.write_bytes(content)
    code, out, err = _check(path)
    assert code == 2
    assert f"{path}: {problem}" in err
    assert "Traceback" not in out + err


def test_a_directory_a_missing_file_and_a_device_are_reported(tmp_path):
    code, _, err = _check(tmp_path, tmp_path / "nowhere.yaml", "/dev/null")
    assert code == 2
    assert f"{tmp_path}: is a directory, not a case file" in err
    assert "nowhere.yaml: cannot be read (No such file or directory)" in err
    assert "/dev/null: is not a regular file" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_a_fifo_does_not_make_the_runner_wait(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    started = time.perf_counter()
    code, _, err = _check(path)
    assert time.perf_counter() - started < HANG_GUARD
    assert code == 2 and "is not a regular file" in err


# --- every file is checked -------------------------------------------------------------


def test_a_malformed_file_does_not_stop_the_others(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(case_file())
    bad = tmp_path / "bad.yaml"
    bad.write_text(case_file(line(amount="1.5")))
    failing = tmp_path / "failing.yaml"
    failing.write_text(case_file(name="wrong on purpose", expect="{a: {outcome: none}}"))
    code, out, err = _check(good, bad, failing)
    assert code == 2  # a malformed file outranks a failed case
    assert f"pass  {good}: c" in out
    assert f"FAIL  {failing}: wrong on purpose" in out
    assert out.strip().endswith("1 passed, 1 failed")
    assert f"{bad}, case “c”, key “lines[0].amount”" in err

    code, out, err = _check(good, bad, failing, as_json=True)
    assert code == 2
    body = json.loads(out)
    assert (body["passed"], body["failed"]) == (1, 1)
    assert [(case["file"], case["ok"]) for case in body["cases"]] == [
        (str(good), True),
        (str(failing), False),
    ]
    assert body["malformed"] == [
        {
            "file": str(bad),
            "case": "c",
            "key": "lines[0].amount",
            "problem": 'must be a decimal string such as "49.00", not 1.5',
        }
    ]


def test_two_malformed_files_are_both_reported(tmp_path):
    first, second = tmp_path / "one.yaml", tmp_path / "two.yaml"
    first.write_text(case_file(line(kind="spaceship")))
    second.write_text(case_file(request="{date: 2026-01-02, reason: boredom}"))
    code, _, err = _check(first, second)
    assert code == 2
    assert "one.yaml, case “c”, key “lines[0].kind”" in err
    assert "two.yaml, case “c”, key “request.reason”" in err


# --- bombs, cycles and nesting ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # the anchors under an unknown key, used as the name, an amount, the lines, an
        # expectation; and defined inside a case
        f"bombs:\n{_bomb()}\n" + case_file(name="*l8"),
        f"bombs:\n{_bomb()}\n" + case_file(line(amount="*l8")),
        f"bombs:\n{_bomb()}\n" + case_file(raw_lines="*l8"),
        f"bombs:\n{_bomb()}\n" + case_file(expect="{a: *l8}"),
        case_file(extra="    account:\n      partner:\n" + _bomb().replace("- ", "        - ")),
        # `<<` merges copy their mappings: nine of nine of nine ...
        "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n"
        + "".join(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}\n" for i in range(1, 9))
        + case_file(),
    ],
    ids=["name", "amount", "lines", "expect", "inside a case", "merges"],
)
def test_a_billion_laughs_is_refused_quickly(tmp_path, text):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.perf_counter()
    code, out, err = _check(path)
    assert time.perf_counter() - started < HANG_GUARD
    assert code == 2
    assert "its aliases expand past 10,000 values" in err
    assert "Traceback" not in out + err


def test_a_bomb_inside_a_case_names_the_case_and_key(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(
        case_file(extra="    account:\n      partner:\n" + _bomb().replace("- ", "        - "))
    )
    with pytest.raises(CaseFileError) as raised:
        load(str(path))
    assert raised.value.case == "c"
    assert raised.value.key.startswith("account.partner[")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    path = tmp_path / "cycle.yaml"
    path.write_text(case_file(extra="    account: &me {partner: *me}\n"))
    code, _, err = _check(path)
    assert code == 2 and "the alias *me is inside its own anchor" in err


@pytest.mark.parametrize(
    "text",
    [
        "policy: acelle\ncases: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "policy: acelle\ncases: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "policy: acelle\ncases: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "policy: acelle\ncases:\n" + "- " * 100_000 + "x\n",
        case_file(line(period="[" * 10_000 + "]" * 10_000)),
        "policy: acelle\ncases: " + "[" * 1_000_000 + "\n",  # never closed
    ],
    ids=[
        "10,000 lists",
        "100,000 lists",
        "10,000 mappings",
        "100,000 block lists",
        "a period",
        "unclosed",
    ],
)
def test_deep_nesting_is_refused_quickly(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    started = time.perf_counter()
    code, out, err = _check(path)
    assert time.perf_counter() - started < HANG_GUARD
    assert code == 2
    assert "nests deeper than 50 levels" in err
    assert "RecursionError" not in err and "Traceback" not in out + err


def test_a_file_of_too_many_values_is_refused(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text("policy: acelle\ncases: [" + "1," * 600_000 + "]\n")
    started = time.perf_counter()
    code, _, err = _check(path)
    assert time.perf_counter() - started < HANG_GUARD
    assert code == 2 and "holds more than 500,000 values" in err


# --- anything else: cases, or a CaseFileError --------------------------------------------

TOKENS = list(string.ascii_letters + string.digits + " \n\t-:,.[]{}&*!|>'\"#?%@`<=~_+\u00e9")
TOKENS += ["policy: ", "cases:", "\n  - ", "lines: ", "kind: ", "amount: ", "2026-01-01", "<<: "]
TOKENS += ["&a ", "*a", "!!int ", "!!timestamp ", "!!binary ", "\u2028", "\ufeff", "\x85"]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join) | st.text(max_size=200)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.dates()
    | st.datetimes()
    | st.sampled_from(["1.00", "2026-03-01", "2026-03-01T10:00:00+05:00", "credit_pack", "refund"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Mostly sensible values, so that the draws get past the first check, and now and then
# anything at all.
KIND = st.sampled_from(["credit_pack", "app_subscription", "subscription", "plugin", "usage"])
LINE = {
    "id": st.sampled_from(["a", 1]) | VALUES,
    "kind": KIND | KIND | VALUES,
    "amount": st.sampled_from(["100.00", "0.50", "100", "999999999999.99"]) | VALUES,
    "paid": st.sampled_from(["2026-03-01", "2026-03-01T23:00:00-05:00"]) | VALUES,
}
FIELDS = {
    "period": st.just(["2026-03-01", "2026-04-01"]) | VALUES,
    "units": st.sampled_from([100, 3]) | VALUES,
    "units_used": st.sampled_from([0, 1, 50]) | VALUES,
    "refunded": st.sampled_from(["0.00", "10.00", "100.00"]) | VALUES,
    "refund_days": st.sampled_from([7, 3650]) | VALUES,
    "used": st.booleans() | VALUES,
}


def _load_text(folder: Path, text: str):
    path = folder / "random.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cases = load(str(path))
    except CaseFileError:
        return None
    assert isinstance(cases, list) and cases
    for case in cases:
        run(case)  # whatever loads, the engine decides
    return cases


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("random")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=YAMLISH)
def test_random_text_loads_or_is_reported(folder, text):
    _load_text(folder, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(["acelle", "onecloud", "onecrm"]) | VALUES,
    currency=st.sampled_from(["USD", "JPY"]) | VALUES,
    line=st.fixed_dictionaries(LINE, optional=FIELDS),
    request=st.fixed_dictionaries(
        {"date": st.sampled_from(["2026-03-02", "2026-03-20"]) | VALUES},
        optional={
            "reason": st.sampled_from(["outage", "billing_error", "defective"]) | VALUES,
            "event": st.sampled_from(["2026-03-01", "2026-03-02"]) | VALUES,
            "full_order": st.booleans() | VALUES,
        },
    ),
    expect=st.sampled_from([{"a": {"outcome": "refund"}}, {1: {"outcome": "none"}}]) | VALUES,
)
def test_random_structures_load_or_are_reported(folder, policy, currency, line, request, expect):
    document = {
        "policy": policy,
        "currency": currency,
        "cases": [{"name": "random", "lines": [line], "request": request, "expect": expect}],
    }
    _load_text(folder, yaml.safe_dump(document, allow_unicode=True))
