from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and users"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals, staff_roles

        # After every app: a later app's permissions exist only once it has migrated.
        post_migrate.connect(staff_roles.sync_staff_roles, dispatch_uid="sync-staff-roles")
        signals.connect()
        # Any process may queue a job (a management command mailing a licence key, say),
        # not only the server that starts the worker.
        from config.celery import ensure_broker_folder

        ensure_broker_folder()
