"""python manage.py refund_mail parse FILE.eml [...] [--json]."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from refunds.mail.types import ParsedMail
from refunds.management.commands.refund_mail import Command

EML = Path(__file__).parent / "eml"
ROOT = Path(__file__).resolve().parents[3]


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("refund_mail", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_parse_prints_what_the_parser_reads():
    out, err = run("parse", str(EML / "28_attachments_pdf_png_exe_zip.eml"))
    assert err == ""
    assert "28_attachments_pdf_png_exe_zip.eml" in out
    for text in (
        "order number:   ORD-2026-000149",
        "payment date:   2026-03-03",
        "amount:         49.00 USD",
        "method:         Visa",
        "reason:         duplicate_charge (Charged twice)",
        "reason text:    I was charged twice, receipt attached.",
        "receipt.pdf (application/pdf, 45 bytes)",
        "invoice.exe (application/x-msdownload, 64 bytes)",
        "missing or odd: nothing",
    ):
        assert text in out


def test_parse_says_why_something_is_missing():
    out, _ = run(
        "parse",
        str(EML / "42_date_without_year.eml"),
        str(EML / "50_amount_without_currency.eml"),
    )
    assert "payment date:   -" in out
    assert "- The payment date “3 March” has no year." in out
    assert "amount:         49 (no currency)" in out
    assert "- The amount 49 has no currency." in out


def test_parse_json_is_a_list_of_parses_with_their_file():
    files = [str(EML / "01_canonical_em_dash.eml"), str(EML / "30_auto_submitted.eml")]
    out, _ = run("parse", *files, "--json")
    data = json.loads(out)
    assert [item["file"] for item in data] == files
    assert data[0]["order_number"] == "ORD-2026-000123"
    assert data[0]["amount"] == "49.00" and data[0]["payment_date"] == "2026-03-03"
    assert data[1]["is_auto"] is True
    assert set(data[0]) == {"file"} | set(ParsedMail().as_dict())


def test_an_unreadable_file_is_named_and_exits_2_after_the_others(tmp_path):
    missing = tmp_path / "missing.eml"
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "refund_mail",
            "parse",
            str(missing),
            str(EML / "01_canonical_em_dash.eml"),
            "--json",
            stdout=out,
            stderr=err,
        )
    assert raised.value.returncode == 2
    assert str(missing) in str(raised.value) and str(missing) in err.getvalue()
    assert [item["file"] for item in json.loads(out.getvalue())] == [
        str(EML / "01_canonical_em_dash.eml")
    ]


def test_a_directory_is_unreadable_too(tmp_path):
    with pytest.raises(CommandError) as raised:
        run("parse", str(tmp_path))
    assert raised.value.returncode == 2


def test_the_action_is_required():
    with pytest.raises(CommandError, match="ACTION"):
        run()


def test_from_the_command_line_no_traceback_and_status_2(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\xff\x00\xfe" * 1000)
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "refund_mail",
            "parse",
            str(garbage),
            str(tmp_path / "no.eml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "no.eml" in done.stderr
    assert "garbage.eml" in done.stdout and "The From header is missing." in done.stdout


def test_actions_dispatch_to_handle_methods():
    command = Command()
    parser = command.create_parser("manage.py", "refund_mail")
    options = vars(parser.parse_args(["parse", "x.eml", "--json"]))
    assert options["action"] == "parse" and options["files"] == ["x.eml"] and options["json"]
    assert callable(command.handle_parse)
