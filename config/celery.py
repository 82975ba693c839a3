import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# core.task_base.OutboxTask: a job from the outbox that already ran is not run again.
app = Celery("portal", task_cls="core.task_base:OutboxTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folder() -> None:
    """The filesystem transport needs its folder before the first message."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        (Path(settings.CELERY_BROKER_FOLDER) / "control").mkdir(parents=True, exist_ok=True)
