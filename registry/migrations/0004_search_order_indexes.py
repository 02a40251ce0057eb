"""Search that stays fast (issue 9): the registry's searches order by last update.

model-versions/search orders by last_updated_timestamp DESC unless told otherwise, and
registered-models/search is often asked for the most recently updated. With these
indexes a page of the newest is read in order from the index, testing the filter as it
goes, rather than by sorting every matching row.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_version_location_index")]

    operations = [
        migrations.AddIndex(
            model_name="modelversion",
            index=models.Index(fields=["last_updated_timestamp"], name="model_version_updated"),
        ),
        migrations.AddIndex(
            model_name="registeredmodel",
            index=models.Index(fields=["last_updated_timestamp"], name="registered_model_updated"),
        ),
    ]
