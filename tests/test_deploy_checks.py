"""Production settings pass Django's deploy checks without a warning, HSTS included."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "q7#Vt2!pLz9@Wm4$Rb8^Xn1&Kc6*Hd3%Jf5+Gs0-Yw8~Ue2=Ta7?Lo4;Pi9",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal@db/portal",
    "REDIS_URL": "redis://redis:6379/0",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
}


def _production_env(**overrides):
    # Only what a process needs from the runner's environment: the suite's own variables
    # (DJANGO_ALLOW_ASYNC_UNSAFE for the browser tests, say) would fail the checks.
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {**kept, **PRODUCTION, **overrides}


def test_the_deploy_checks_pass_without_a_warning_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production_sends_hsts_for_a_year_with_subdomains_and_preload():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)"
    )
    default = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert default.stdout.split() == ["31536000", "True", "True"], default.stderr
    off = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(SECURE_HSTS_PRELOAD="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert off.stdout.split() == ["31536000", "True", "False"], off.stderr
