from django.conf import settings

from portal.celery import app


def test_celery_reads_django_settings():
    assert app.conf.task_always_eager == settings.CELERY_TASK_ALWAYS_EAGER
    assert app.conf.task_serializer == "json"


def test_tasks_run_eagerly_without_a_broker_and_on_workers_with_one():
    # The embedded default has no broker: tasks run in-process. With REDIS_URL (CI's second
    # leg) the broker is Redis and tasks go to workers.
    if settings.CELERY_BROKER_URL:
        assert not app.conf.task_always_eager
        assert app.conf.broker_url == settings.CELERY_BROKER_URL
    else:
        assert app.conf.task_always_eager
