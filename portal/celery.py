"""The Celery app. Tasks run eagerly on the embedded default (no broker configured) and on
workers when CELERY_BROKER_URL or REDIS_URL is set (see settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
