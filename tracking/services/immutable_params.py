"""Params are immutable wherever they are logged (runs, logged models): the same value again
is accepted, another value is INVALID_PARAMETER_VALUE."""

from django.db.models import Model

from portal.errors import InvalidParameter


def params_insert_immutable(
    *,
    model: type[Model],
    owner_field: str,
    owner_id: str,
    params: dict[str, str],
    label: str,
    copied: dict | None = None,
) -> None:
    """Insert `params` for one owner (a run or a logged model). Call inside a transaction.
    `copied` are further columns every new row gets (a run param's experiment)."""
    if not params:
        return
    owner = {f"{owner_field}_id": owner_id}

    def refuse(changed: list[dict]) -> InvalidParameter:
        return InvalidParameter(f"Changing param values is not allowed. Params were already logged='{changed}' for {label}.")

    existing = dict(model.objects.filter(**owner, key__in=list(params)).values_list("key", "value"))
    changed = [{"key": k, "old_value": existing[k], "new_value": v} for k, v in params.items() if k in existing and existing[k] != v]
    if changed:
        raise refuse(changed)
    new = {k: v for k, v in params.items() if k not in existing}
    # ignore_conflicts: a concurrent writer of the same key wins the race; the check below
    # then reports a different value instead of failing on the unique constraint.
    model.objects.bulk_create(
        [model(**owner, **(copied or {}), key=k, value=v) for k, v in new.items()], ignore_conflicts=True
    )
    if new:
        stored = dict(model.objects.filter(**owner, key__in=list(new)).values_list("key", "value"))
        lost = [{"key": k, "old_value": stored[k], "new_value": v} for k, v in new.items() if stored.get(k) != v]
        if lost:
            raise refuse(lost)
