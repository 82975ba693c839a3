import os
import subprocess
import sys

import pytest
from django.urls import reverse

GOOD = {
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://u@db/portal",
    "REDIS_URL": "redis://cache:6379/0",
    "DEBUG": "false",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "PORTAL_BASE_URL": "https://portal.example.com",
}


def _import_production(env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith("STRIPE_")}
    env.pop("BILLING_GATEWAY", None)
    env.update({k: v for k, v in env_overrides.items() if v is not None})
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_starts_with_safe_settings():
    result = _import_production(GOOD)
    assert result.returncode == 0, result.stderr


def test_production_starts_with_stripe_keys():
    stripe = {
        "BILLING_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": "sk_live_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    result = _import_production({**GOOD, **stripe})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "insecure-default-key-for-local-use-only"}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must name"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS must name"),
        ({"EMAIL_BACKEND": None}, "EMAIL_BACKEND must be a real mail provider"),
        (
            {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
            "EMAIL_BACKEND must be a real mail provider",
        ),
        ({"PORTAL_BASE_URL": "http://127.0.0.1:8000"}, "PORTAL_BASE_URL must be"),
        (
            {"BILLING_GATEWAY": "stripe", "STRIPE_WEBHOOK_SECRET": "whsec_x"},
            "STRIPE_SECRET_KEY must be set",
        ),
        (
            {"BILLING_GATEWAY": "stripe", "STRIPE_SECRET_KEY": "sk_live_x"},
            "STRIPE_WEBHOOK_SECRET must be set",
        ),
    ],
)
def test_production_refuses_unsafe_settings(override, message):
    result = _import_production({**GOOD, **override})
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr and message in result.stderr


@pytest.mark.django_db
def test_healthz_reports_database_cache_and_broker(client, settings, tmp_path):
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        settings.CELERY_BROKER_FOLDER = tmp_path
    response = client.get(reverse("healthz"))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_broken_part(client, monkeypatch):
    from config import health

    def broken():
        raise ConnectionError("down")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    # The part, never the exception or the driver: the answer is public.
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "cache": "ok", "broker": "unavailable"},
    }
    assert b"ConnectionError" not in response.content


def test_celery_is_configured_safely():
    from config.celery import app

    conf = app.conf
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_acks_late and conf.task_serializer == "json"
    assert "expire-invitations" in conf.beat_schedule


def test_in_production_redis_outlives_a_job_and_its_outage_errors_nothing():
    """A killed worker's job goes out again within minutes, but never while the job could
    still be running or waiting for its retry; the cache survives a Redis outage, and the
    sessions do not live in it."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], "
        "s.CELERY_TASK_TIME_LIMIT, s.JOB_RETRY_BACKOFF_MAX, "
        "s.CACHES['default']['BACKEND'], s.SESSION_ENGINE)"
    )
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith("CELERY_")}
    env.update(GOOD, DJANGO_SETTINGS_MODULE="config.settings.production")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    visibility, time_limit, retry_wait, cache, sessions = result.stdout.split()
    assert int(time_limit) + int(retry_wait) < int(visibility) <= 15 * 60
    assert cache == "core.cache.ResilientRedisCache"
    assert sessions == "django.contrib.sessions.backends.db"


def test_no_job_waits_for_its_retry_longer_than_the_visibility_timeout_allows(settings):
    from config.celery import app

    retrying = [task for task in app.tasks.values() if getattr(task, "autoretry_for", None)]
    assert retrying
    for task in retrying:
        assert task.retry_backoff, task.name
        assert task.retry_backoff_max <= settings.JOB_RETRY_BACKOFF_MAX, task.name


@pytest.mark.django_db
def test_openapi_schema_lists_the_endpoints(client):
    response = client.get(reverse("api_schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/me/",
        "/api/v1/accounts/",
        "/api/v1/accounts/{account_id}/members/",
        "/api/v1/accounts/{account_id}/invitations/",
        "/api/v1/accounts/{account_id}/support-contact/",
    ]:
        assert path in paths
    assert client.get(reverse("api_docs")).status_code == 200


@pytest.mark.django_db
def test_openapi_schema_is_valid_without_warnings():
    from django.core.management import call_command

    # Fails on any view the generator cannot describe, and on an invalid schema.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


@pytest.mark.django_db
def test_the_test_schema_of_dj_stripe_is_current():
    """The tests build dj-stripe's tables from tests/djstripe_migrations (config/settings/test.py)."""
    from django.core.management import call_command

    try:
        call_command("makemigrations", "djstripe", check=True, dry_run=True, verbosity=0)
    except SystemExit as exc:
        pytest.fail(f"tests/djstripe_migrations is stale (exit {exc.code}): regenerate it.")


@pytest.mark.django_db
def test_only_configured_mail_providers_have_webhooks_and_none_answers_500(client):
    from django.urls import get_resolver

    for esp in ("mailgun", "sendgrid", "mandrill", "amazon_ses", "sparkpost"):
        assert (
            client.post(f"/anymail/{esp}/inbound/", data="x", content_type="text/plain").status_code
            == 404
        )
    routes = [str(p.pattern) for p in get_resolver().url_patterns if str(p.pattern) == "anymail/"]
    assert routes
    for path in ("/anymail/postmark/inbound/", "/anymail/postmark/tracking/"):
        response = client.post(path, data="not json", content_type="application/json")
        assert response.status_code < 500, (path, response.status_code)
