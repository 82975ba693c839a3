"""The case tables (tests/policy_cases and ../shared/policy-cases) through the runner's code."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from refunds.policy.cases import CaseFileError, load, run

ROOT = Path(__file__).resolve().parents[2]
OWN = sorted((ROOT / "tests" / "policy_cases").glob("*.yaml"))
# The vendor's worked examples live beside the checkout (../shared/policy-cases); a
# clone elsewhere (CI) uses the copy kept in tests/policy_cases/shared.
SHARED_DIR = next(
    folder
    for folder in (
        ROOT.parent / "shared" / "policy-cases",
        ROOT / "tests" / "policy_cases" / "shared",
    )
    if folder.is_dir()
)
SHARED = sorted(SHARED_DIR.glob("*.yaml"))
CASES = [case for path in OWN + SHARED for case in load(str(path))]


def test_the_tables_cover_every_preset_with_at_least_100_cases():
    own = [case for case in CASES if case.file in {str(path) for path in OWN}]
    assert len(own) >= 100
    assert {case.policy for case in own} == {"onecloud", "onecrm", "acelle"}
    assert SHARED, "the shared worked examples must be found and run"
    refunded = {case.policy for case in own if any(line.refunded for line in case.lines)}
    assert refunded == {"onecloud", "onecrm", "acelle"}, "earlier refunds, in every preset"


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{Path(case.file).name}: {case.name}")
def test_case(case):
    result = run(case)
    assert result.ok, result.failures
    for decision in result.decisions.values():
        assert decision.explanation.endswith((".", ")")) and decision.clause


def _check(*paths, as_json=False):
    out, err = StringIO(), StringIO()
    args = ["refund_policy", "check", *map(str, paths)] + (["--json"] if as_json else [])
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # CommandError: call_command raises instead of exiting
        code = getattr(exc, "returncode", 1)
    return code, out.getvalue(), err.getvalue()


def test_the_command_passes_the_tables_and_prints_a_closing_line():
    code, out, _ = _check(*OWN, *SHARED)
    assert code == 0
    assert out.strip().splitlines()[-1] == f"{len(CASES)} passed, 0 failed"


def test_a_failing_case_is_named_with_what_was_expected_and_decided(tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "policy: acelle\ncases:\n"
        "  - name: wrong on purpose\n"
        "    lines: [{id: plan, kind: subscription, amount: '29.00', paid: 2026-03-01}]\n"
        "    request: {date: 2026-03-20}\n"
        "    expect: {plan: {outcome: refund, amount: '29.00'}}\n"
    )
    code, out, _ = _check(path)
    assert code == 1
    assert "FAIL" in out and "wrong on purpose" in out
    assert "expected outcome refund, amount 29.00; got none 0.00 (acelle §1.3)" in out
    assert out.strip().endswith("0 passed, 1 failed")


def test_json_output(tmp_path):
    code, out, _ = _check(SHARED_DIR / "examples.yaml", as_json=True)
    body = json.loads(out)
    assert code == 0 and body["passed"] == 3 and body["failed"] == 0
    first = body["cases"][0]
    assert first["ok"] is True and first["lines"]["plan"]["outcome"] == "refund"
    assert first["lines"]["plan"]["amount"] == "29.00"
    assert "1.1" in first["lines"]["plan"]["clause"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("policy: nope\ncases: []\n", "key “policy”"),
        ("policy: acelle\nsurprise: 1\ncases: []\n", "key “surprise”"),
        ("policy: acelle\ncases: []\n", "key “cases”"),
        ("policy: acelle\ntimezone: Mars/Olympus\ncases: [{}]\n", "key “timezone”"),
        ("policy: acelle\ncurrency: XYZ\ncases: [{}]\n", "key “currency”"),
        (
            "policy: acelle\ncases:\n  - name: c1\n    lines: [{id: a, kind: spaceship, amount: '1.00', paid: 2026-01-01}]\n    request: {date: 2026-01-02}\n    expect: {}\n",
            "case “c1”, key “lines[0].kind”",
        ),
        (
            "policy: acelle\ncases:\n  - name: c2\n    lines: [{id: a, kind: plugin, amount: 1.5, paid: 2026-01-01}]\n    request: {date: 2026-01-02}\n    expect: {}\n",
            "case “c2”, key “lines[0].amount”",
        ),
        (
            "policy: acelle\ncases:\n  - name: c3\n    lines: [{id: a, kind: plugin, amount: '1.00', paid: 2026-13-01}]\n    request: {date: 2026-01-02}\n    expect: {}\n",
            "case “c3”, key “lines[0].paid”: “2026-13-01” is not a date that exists",
        ),
        (
            "policy: acelle\ncases:\n  - name: c3b\n    lines: [{id: a, kind: plugin, amount: '1.00', paid: 'March 3rd'}]\n    request: {date: 2026-01-02}\n    expect: {}\n",
            "case “c3b”, key “lines[0].paid”",
        ),
        (
            "policy: acelle\ncases:\n  - name: c4\n    lines: [{id: a, kind: plugin, amount: '1.00', paid: 2026-01-01}]\n    request: {date: 2026-01-02, reason: boredom}\n    expect: {}\n",
            "case “c4”, key “request.reason”",
        ),
        (
            "policy: acelle\ncases:\n  - name: c5\n    lines: [{id: a, kind: plugin, amount: '1.00', paid: 2026-01-01}]\n    request: {date: 2026-01-02}\n    expect: {b: {outcome: refund}}\n",
            "case “c5”, key “expect.b”",
        ),
        (
            "policy: acelle\ncases:\n  - name: c6\n    lines: [{id: a, kind: plugin, amount: '1.00', paid: 2026-01-01, colour: red}]\n    request: {date: 2026-01-02}\n    expect: {}\n",
            "case “c6”, key “lines[0].colour”",
        ),
        ("policy: [unclosed\n", "is not valid YAML"),
    ],
)
def test_a_malformed_file_names_file_case_and_key_and_exits_2(tmp_path, text, where):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = _check(path)
    assert code == 2
    assert str(path) in err and where in err
    assert "Traceback" not in err + out
    with pytest.raises(CaseFileError):
        load(str(path))


def test_a_missing_file_is_named(tmp_path):
    code, _, err = _check(tmp_path / "nowhere.yaml")
    assert code == 2 and "nowhere.yaml: cannot be read" in err
