"""Send the webhook deliveries that are due: retries whose time has come, and deliveries no
worker took. Beat runs the same sweep every minute when there is a broker; on the embedded
default (no broker, no beat) run this by hand or from cron to retry failed deliveries."""

from django.core.management.base import BaseCommand

from portal.webhooks import services


class Command(BaseCommand):
    help = "Queue (or, without a broker, send) the webhook deliveries that are due."

    def handle(self, *args, **options):
        count = services.webhook_deliveries_sweep()
        self.stdout.write(f"{count} webhook deliveries queued.")
