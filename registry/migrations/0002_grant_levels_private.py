from django.db import migrations, models

# Before levels, a creator held three rows (view, change, manage). A grantee now holds one
# level row: keep each grantee's highest and drop the rest; an owner left without a grant
# (none should be) gets MANAGE, so existing data keeps working.
_ORDER = ["view", "use", "change", "manage"]


def collapse_to_levels(apps, schema_editor):
    Root = apps.get_model("registry", "RegisteredModel")
    UserGrant = apps.get_model("registry", "RegisteredModelUserObjectPermission")
    GroupGrant = apps.get_model("registry", "RegisteredModelGroupObjectPermission")
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
    manage = Permission.objects.filter(codename="manage_registeredmodel", content_type__app_label="registry").first()
    if manage is None:
        return  # a fresh database: nothing to migrate
    for root in Root.objects.exclude(owner=None):
        if not UserGrant.objects.filter(user_id=root.owner_id, content_object_id=root.pk).exists():
            UserGrant.objects.create(user_id=root.owner_id, content_object_id=root.pk, permission=manage)


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='registeredmodel',
            options={'permissions': [('use_registeredmodel', "Can use registered model (MLflow's USE: reads here)"), ('manage_registeredmodel', 'Can manage registered model (delete, grant access)'), ('deny_registeredmodel', 'Is denied the registered model, whatever else is granted'), ('approve_transition', 'Can approve stage and alias transition requests')]},
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='private',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(collapse_to_levels, migrations.RunPython.noop),
    ]
