"""Search that starts from the most selective condition (issue 9).

- Latest metrics, params and run tags carry their run's experiment, and each table has an
  index that leads with it: (experiment, key, value...) serves a condition on one key and
  an order by it, inside one experiment, without touching the other runs.
- Run.start_time is NOT NULL (services always set it; rows written around them get 0), so
  the search can page on it by position.
- PostgreSQL only, where it can: trigram indexes (pg_trgm) on param and tag values for
  LIKE '%text%' with three or more literal characters in a row, and multivariate statistics
  on (key, value prefix) so the planner knows how many rows `params.x = 'v'` matches for
  that key rather than across all keys. Without pg_trgm (the extension cannot be created by
  this database user) such LIKEs are checked per candidate run: correct, and slower only
  when the pattern matches few runs of a large experiment.
"""

from django.db import DatabaseError, migrations, models, transaction
from django.db.models import F

from tracking.sql import CodePoints, Prefix

SEARCH_PREFIX = 200  # tracking.sql.SEARCH_PREFIX when this migration was written

_COPY_EXPERIMENT = (
    "UPDATE {table} SET experiment_id = "
    "(SELECT tracking_run.experiment_id FROM tracking_run WHERE tracking_run.id = {table}.run_id)"
)
_TABLES = ("tracking_latestmetric", "tracking_param", "tracking_runtag")


def copy_experiment(apps, schema_editor):
    for table in _TABLES:
        schema_editor.execute(_COPY_EXPERIMENT.format(table=table))
    schema_editor.execute("UPDATE tracking_run SET start_time = 0 WHERE start_time IS NULL")


def postgres_search_extras(apps, schema_editor):
    """Trigram indexes and key/value statistics, each only where this server allows it."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        try:
            with transaction.atomic(using=connection.alias):  # a savepoint: a refusal leaves the rest intact
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError:
            pass  # no privilege, or the extension is not installed: LIKEs are checked per run
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            for table in ("tracking_param", "tracking_runtag"):
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_value_trgm ON {table} USING gin (value gin_trgm_ops)"
                )
        if connection.pg_version >= 140000:  # statistics on expressions
            # Without the index's COLLATE "C": PostgreSQL 15 matches such a statistic to
            # neither form of the condition, and this one to both.
            for table in ("tracking_param", "tracking_runtag"):
                cursor.execute(
                    f"CREATE STATISTICS IF NOT EXISTS {table}_key_value_stats (mcv) "
                    f"ON key, substr(value, 1, {SEARCH_PREFIX}) FROM {table}"
                )


def postgres_search_extras_reverse(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("tracking_param", "tracking_runtag"):
        schema_editor.execute(f"DROP INDEX IF EXISTS {table}_value_trgm")
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {table}_key_value_stats")


def _experiment_field(null: bool):
    return models.ForeignKey(
        null=null,
        db_index=False,
        on_delete=models.deletion.CASCADE,
        related_name="+",
        to="tracking.experiment",
    )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0003_grant_levels_private")]

    operations = [
        *(
            migrations.AddField(model_name=model, name="experiment", field=_experiment_field(null=True))
            for model in ("latestmetric", "param", "runtag")
        ),
        migrations.RunPython(copy_experiment, migrations.RunPython.noop),
        *(
            migrations.AlterField(model_name=model, name="experiment", field=_experiment_field(null=False))
            for model in ("latestmetric", "param", "runtag")
        ),
        migrations.AlterField(model_name="run", name="start_time", field=models.BigIntegerField()),
        migrations.RemoveIndex(model_name="latestmetric", name="latest_metric_key_value"),
        migrations.AddIndex(
            model_name="latestmetric",
            index=models.Index(fields=["experiment", "key", "is_nan", "value", "run"], name="latest_metric_search"),
        ),
        migrations.AddIndex(
            model_name="param",
            index=models.Index(F("experiment"), F("key"), CodePoints(Prefix("value")), F("run"), name="param_search"),
        ),
        migrations.AddIndex(
            model_name="runtag",
            index=models.Index(F("experiment"), F("key"), CodePoints(Prefix("value")), F("run"), name="run_tag_search"),
        ),
        migrations.RunPython(postgres_search_extras, postgres_search_extras_reverse),
    ]
