"""python manage.py refund_policy check FILE.yaml [...] [--json]

Runs refund case files (policy-cases/README.md) through the engine the portal uses.
Every file is checked: a malformed one is reported on stderr and the others still run.
Exit status: 2 if a file is malformed, else 1 if a case failed, else 0.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from refunds.policy.cases import CaseFileError, load, run


class Command(BaseCommand):
    help = "Check refund case files against the policy engine."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["check"])
        parser.add_argument("files", nargs="+", metavar="FILE.yaml")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, action, files, **options):
        cases, malformed = [], []
        for path in files:
            try:
                cases.extend(load(path))
            except CaseFileError as exc:
                self.stderr.write(str(exc))
                malformed.append(exc)
        results = [run(case) for case in cases]
        passed = sum(result.ok for result in results)
        failed = len(results) - passed
        if options["json"]:
            self.stdout.write(_json(results, passed, failed, malformed))
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
        if malformed:
            raise CommandError(f"{len(malformed)} file(s) malformed", returncode=2)
        if failed:
            raise CommandError(f"{failed} case(s) failed", returncode=1)


def _json(results, passed, failed, malformed) -> str:
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
            # Not in the README's object: the files that could not be checked.
            "malformed": [exc.as_dict() for exc in malformed],
        },
        indent=2,
    )
