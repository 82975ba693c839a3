from celery import shared_task
from django.utils import timezone

from accounts.tasks import MAIL_RETRY

from . import emails, services
from .models import Incident


@shared_task
def incident_deadlines_sweep() -> int:
    return services.incident_deadlines_sweep(now=timezone.now())


@shared_task(**MAIL_RETRY)
def send_incident_email(incident_id: int, event: str) -> bool:
    incident = (
        Incident.objects.select_related("account", "opened_by").filter(pk=incident_id).first()
    )
    if incident is None:
        return False
    return emails.send_incident_update(incident=incident, event=event)
