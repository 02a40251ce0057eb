import time

from django.db import migrations


def create_default_experiment(apps, schema_editor):
    Experiment = apps.get_model("tracking", "Experiment")
    now = int(time.time() * 1000)
    Experiment.objects.get_or_create(
        pk=0,
        defaults={
            "name": "Default",
            "artifact_location": "mlflow-artifacts:/0",
            "creation_time": now,
            "last_update_time": now,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunPython(create_default_experiment, migrations.RunPython.noop)]
