"""python manage.py refund_policy check FILE.yaml [...] [--json]

Runs refund case files (policy-cases/README.md) through the engine the portal uses.
Exit status: 0 all passed, 1 a case failed, 2 a file is malformed.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from refunds.policy.cases import CaseFileError, load, run


class Command(BaseCommand):
    help = "Check refund case files against the policy engine."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["check"])
        parser.add_argument("files", nargs="+", metavar="FILE.yaml")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, action, files, **options):
        cases = []
        for path in files:
            try:
                cases.extend(load(path))
            except CaseFileError as exc:
                self.stderr.write(str(exc))
                sys.exit(2)
        results = [run(case) for case in cases]
        passed = sum(result.ok for result in results)
        failed = len(results) - passed
        if options["json"]:
            self.stdout.write(_json(results, passed, failed))
        else:
            for result in results:
                where = f"{result.case.file}: {result.case.name}"
                if result.ok:
                    self.stdout.write(f"pass  {where}")
                else:
                    self.stdout.write(f"FAIL  {where}")
                    for line_id, problem in result.failures.items():
                        explanation = result.decisions[line_id].explanation
                        self.stdout.write(f"      {line_id}: {problem}. {explanation}")
            self.stdout.write(f"{passed} passed, {failed} failed")
        if failed:
            raise CommandError(f"{failed} case(s) failed", returncode=1)


def _json(results, passed, failed) -> str:
    return json.dumps(
        {
            "passed": passed,
            "failed": failed,
            "cases": [
                {
                    "file": result.case.file,
                    "name": result.case.name,
                    "ok": result.ok,
                    "lines": {
                        line_id: decision.as_dict()
                        for line_id, decision in result.decisions.items()
                    },
                }
                for result in results
            ],
        },
        indent=2,
    )
