from django.db import migrations, models

# Before levels, a creator held three rows (view, change, manage). A grantee now holds one
# level row: keep each grantee's highest and drop the rest; an owner left without a grant
# (none should be) gets MANAGE, so existing data keeps working.
_ORDER = ["view", "use", "change", "manage"]


def collapse_to_levels(apps, schema_editor):
    Root = apps.get_model("tracking", "Experiment")
    UserGrant = apps.get_model("tracking", "ExperimentUserObjectPermission")
    GroupGrant = apps.get_model("tracking", "ExperimentGroupObjectPermission")
    Permission = apps.get_model("auth", "Permission")
    for table, who in ((UserGrant, "user_id"), (GroupGrant, "group_id")):
        best = {}
        for row in table.objects.select_related("permission").order_by("pk"):
            prefix = row.permission.codename.partition("_")[0]
            if prefix not in _ORDER:
                continue  # approve and deny rows stay as they are
            key = (getattr(row, who), row.content_object_id)
            kept = best.get(key)
            if kept is None:
                best[key] = row
                continue
            kept_rank = _ORDER.index(kept.permission.codename.partition("_")[0])
            if _ORDER.index(prefix) > kept_rank:
                kept.delete()
                best[key] = row
            else:
                row.delete()
    manage = Permission.objects.filter(codename="manage_experiment", content_type__app_label="tracking").first()
    if manage is None:
        return  # a fresh database: nothing to migrate
    for root in Root.objects.exclude(owner=None):
        if not UserGrant.objects.filter(user_id=root.owner_id, content_object_id=root.pk).exists():
            UserGrant.objects.create(user_id=root.owner_id, content_object_id=root.pk, permission=manage)


class Migration(migrations.Migration):

    dependencies = [
        ('tracking', '0002_default_experiment'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='experiment',
            options={'permissions': [('use_experiment', "Can use experiment (MLflow's USE: reads here)"), ('manage_experiment', 'Can manage experiment (delete, grant access)'), ('deny_experiment', 'Is denied the experiment, whatever else is granted')]},
        ),
        migrations.AddField(
            model_name='experiment',
            name='private',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(collapse_to_levels, migrations.RunPython.noop),
    ]
