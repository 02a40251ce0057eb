from django.apps import AppConfig
from django.db.backends.signals import connection_created


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal.sqlite_statistics import refresh_statistics

        connection_created.connect(refresh_statistics, dispatch_uid="portal.sqlite_statistics")
