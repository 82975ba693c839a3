from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = "Inbound mail"

    def ready(self):
        from . import webhook  # noqa: F401  (anymail's inbound mail signal)
