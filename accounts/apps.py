from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and users"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals, staff_roles

        post_migrate.connect(staff_roles.sync_staff_roles, sender=self)
        signals.connect()
