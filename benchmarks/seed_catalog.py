"""The team-granted user and the catalog workload's data, written straight into the
portal's database. Run as a subprocess with the portal's environment (DATABASE_URL or
PORTAL_VAR_DIR):

    seed_catalog.py team-user [--experiment ID ...]
    seed_catalog.py catalog --experiments 10000 --models 10000 --versions 100000 [--analyze]

`team-user` makes (or finds) the user `team-user`, not a superuser, and the team
`bench-team` with that user as its only member, through the portal's own services (what
the admin pages and the grant APIs call): user_create, team_create, team_member_add,
grant_create(level READ, team=...) on each --experiment. The user holds no grant of its
own, so under PORTAL_DEFAULT_PERMISSION=NONE everything it reads comes through the team.
Every call hands out a new API token.

`catalog` seeds, with bulk_create as seed_permissions.py does (k from 0):

- experiment k `cat-exp-<project>-<k>` (project = PROJECTS[k % 5]), tags `project`,
  `owner_team` = team-<k % 7> and `purpose`;
- registered model k `cat-model-<project>-<k>`, tags `task` = TASKS[k % 3] and `owner_team`;
- the versions spread evenly over the models (version v of a model: tags `validated` =
  'true' when v % 5 == 0, else 'false', and `dataset` = ds-<v % 4>);
- last-update times shuffled (k * 7919 modulo the count), so that ordering by them is not
  the insertion order;
- every experiment and model has its creator's MANAGE grant (the superuser `bench`, as
  the portal's create path writes it); team `bench-team` holds READ on even k (half),
  independent of the project, owner team and task (k % 5, k % 7, k % 3).

CATALOG_QUERIES are the requests the workload times, each with the number of rows the
superuser and the team user must see (expected_counts); run `team-user` first.

Prints one JSON line.
"""

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data  # noqa: E402

TEAM_USER = "team-user"
TEAM = "bench-team"
PROJECTS = ("vision", "nlp", "speech", "tabular", "forecast")
TASKS = ("classification", "regression", "ranking")
OWNER_TEAMS = 7
NAME_PROJECT = 1  # "nlp": the project the name filters select (a fifth)
OWNER_TEAM = 3  # the owner_team tag the tag filter selects (a seventh)
TASK = 2  # "ranking": the task the tag filter selects (a third)
PROMPT_FILTER = "tag.`mlflow.prompt.is_prompt` != 'true'"  # what MlflowClient.search_registered_models appends
BATCH = 5000


def team_reads(k: int) -> bool:
    return k % 2 == 0


def experiment_name(k: int) -> str:
    return f"cat-exp-{PROJECTS[k % len(PROJECTS)]}-{k:05d}"


def model_name(k: int) -> str:
    return f"cat-model-{PROJECTS[k % len(PROJECTS)]}-{k:05d}"


def versions_of(k: int, models: int, versions: int) -> int:
    """How many versions model k has: `versions` spread evenly, the first ones one more."""
    return versions // models + (1 if k < versions % models else 0)


def shuffled(k: int, n: int) -> int:
    return (k * 7919) % n


def one_model(models: int) -> int:
    """A model of the `nlp` project that the team reads (k % 5 == 1, k even): its versions by name."""
    return next((k for k in range(models) if k % len(PROJECTS) == NAME_PROJECT and team_reads(k)), 0)


def catalog_queries(models: int) -> list[tuple]:
    """(key, label, method, path, params, body, page size, what the page holds, order check)."""
    project = PROJECTS[NAME_PROJECT]
    exp_by_name = {"max_results": 100, "filter": f"name LIKE 'cat-exp-{project}-%'", "order_by": ["name ASC"],
                   "view_type": "ACTIVE_ONLY"}  # fmt: skip
    exp_by_tag = {"max_results": 100, "filter": f"tags.owner_team = 'team-{OWNER_TEAM}'", "order_by": ["last_update_time DESC"],
                  "view_type": "ACTIVE_ONLY"}  # fmt: skip
    model_by_name = {"filter": f"name LIKE 'cat-model-{project}-%' AND {PROMPT_FILTER}", "order_by": ["name ASC"], "max_results": 100}
    model_by_tag = {"filter": f"tags.task = '{TASKS[TASK]}' AND {PROMPT_FILTER}", "order_by": ["last_updated_timestamp DESC"],
                    "max_results": 100}  # fmt: skip
    version_by_name = {"filter": f"name LIKE 'cat-model-{project}-%'", "order_by": ["name ASC"], "max_results": 100}
    version_by_tag = {"filter": "tags.validated = 'true'", "order_by": ["last_updated_timestamp DESC"], "max_results": 100}
    version_of_one = {"filter": f"name = '{model_name(one_model(models))}'", "max_results": 10000}
    api = "/api/2.0/mlflow"
    return [
        ("exp_name", f"experiments/search, name LIKE 'cat-exp-{project}-%', order by name, 100/page", "POST",
         f"{api}/experiments/search", None, exp_by_name, "experiments", ("name", "asc")),
        ("exp_tag", f"experiments/search, tags.owner_team = 'team-{OWNER_TEAM}', order by last_update_time DESC, 100/page",
         "POST", f"{api}/experiments/search", None, exp_by_tag, "experiments", ("last_update_time", "desc")),
        ("model_name", f"registered-models/search, name LIKE 'cat-model-{project}-%' and not a prompt, order by name, 100/page",
         "GET", f"{api}/registered-models/search", model_by_name, None, "registered_models", ("name", "asc")),
        ("model_tag", f"registered-models/search, tags.task = '{TASKS[TASK]}' and not a prompt, order by "
         "last_updated_timestamp DESC, 100/page", "GET", f"{api}/registered-models/search", model_by_tag, None,
         "registered_models", ("last_updated_timestamp", "desc")),
        ("version_name", f"model-versions/search, name LIKE 'cat-model-{project}-%', order by name, 100/page", "GET",
         f"{api}/model-versions/search", version_by_name, None, "model_versions", ("name", "asc")),
        ("version_tag", "model-versions/search, tags.validated = 'true', order by last_updated_timestamp DESC, 100/page",
         "GET", f"{api}/model-versions/search", version_by_tag, None, "model_versions", ("last_updated_timestamp", "desc")),
        ("version_one", "model-versions/search, name = '<one model>' (the client's default: 10000/page)", "GET",
         f"{api}/model-versions/search", version_of_one, None, "model_versions", None),
    ]  # fmt: skip


def expected_counts(experiments: int, models: int, versions: int) -> dict:
    """key -> {"superuser": rows matching, "team": rows the team user reads} (PORTAL_DEFAULT_PERMISSION=NONE)."""

    def both(pairs) -> dict:
        pairs = list(pairs)
        return {"superuser": sum(n for _, n in pairs), "team": sum(n for k, n in pairs if team_reads(k))}

    n = len(PROJECTS)
    per_model = [(k, versions_of(k, models, versions)) for k in range(models)]
    return {
        "exp_name": both((k, 1) for k in range(experiments) if k % n == NAME_PROJECT),
        "exp_tag": both((k, 1) for k in range(experiments) if k % OWNER_TEAMS == OWNER_TEAM),
        "model_name": both((k, 1) for k in range(models) if k % n == NAME_PROJECT),
        "model_tag": both((k, 1) for k in range(models) if k % len(TASKS) == TASK),
        "version_name": both((k, c) for k, c in per_model if k % n == NAME_PROJECT),
        "version_tag": both((k, c // 5) for k, c in per_model),
        "version_one": both((k, c) for k, c in per_model if k == one_model(models)),
    }


# ---------------------------------------------------------------- the team-granted user


def team_user(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from portal import permissions, services
    from portal.errors import AlreadyExists
    from tracking.models import Experiment

    user_model = get_user_model()
    superuser = user_model.objects.get(username=data.USER)
    with transaction.atomic():
        user = user_model.objects.filter(username=TEAM_USER).first()
        if user is None:
            user = services.user_create(actor=superuser, username=TEAM_USER, password="Tu-" + secrets.token_urlsafe(24))
        team = Group.objects.filter(name=TEAM).first() or services.team_create(actor=superuser, name=TEAM)
        services.team_member_add(actor=superuser, team_id=team.pk, username=TEAM_USER)
        granted = []
        for experiment_id in args.experiment or []:
            experiment = Experiment.objects.get(pk=experiment_id)
            try:
                permissions.grant_create(actor=superuser, root=experiment, level="READ", team=team)
            except AlreadyExists:  # granted by an earlier call
                pass
            granted.append(str(experiment.pk))
        token = services.api_token_create(user=user, name="benchmark").raw
    return {"user": TEAM_USER, "team": TEAM, "token": token, "granted": granted, "superuser": user.is_superuser}


# ---------------------------------------------------------------- the catalog


def catalog(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db import connection, transaction

    from registry.models import (
        ModelVersion,
        ModelVersionTag,
        RegisteredModel,
        RegisteredModelGroupObjectPermission,
        RegisteredModelTag,
        RegisteredModelUserObjectPermission,
    )
    from tracking.models import (
        Experiment,
        ExperimentGroupObjectPermission,
        ExperimentTag,
        ExperimentUserObjectPermission,
    )

    E, M, V = args.experiments, args.models, args.versions
    if E < 10 or M < 10 or V < M:
        raise SystemExit("need at least 10 experiments, 10 models and one version per model")
    owner = get_user_model().objects.get(username=data.USER)
    team = Group.objects.get(name=TEAM)
    now = data.BASE_TIME_MS
    steps = {}

    def perm(app: str, codename: str) -> Permission:
        return Permission.objects.get(content_type__app_label=app, codename=codename)

    def ids_of(objects, model, prefix: str, names: list[str]) -> list[int]:
        ids = [o.pk for o in objects]
        if any(pk is None for pk in ids):  # a backend that does not return ids from bulk inserts
            by_name = dict(model.objects.filter(name__startswith=prefix).values_list("name", "pk"))
            ids = [by_name[name] for name in names]
        return ids

    started = time.perf_counter()
    with transaction.atomic():
        names = [experiment_name(k) for k in range(E)]
        experiments = Experiment.objects.bulk_create(
            [Experiment(name=names[k], artifact_location="", owner=owner, creation_time=now + k * 1000,
                        last_update_time=now + shuffled(k, E) * 1000) for k in range(E)],
            batch_size=BATCH,
        )  # fmt: skip
        exp_ids = ids_of(experiments, Experiment, "cat-exp-", names)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tracking_experiment SET artifact_location = %s || CAST(id AS TEXT) WHERE name LIKE %s",
                ["mlflow-artifacts:/", "cat-exp-%"],
            )
        ExperimentTag.objects.bulk_create(
            [ExperimentTag(experiment_id=pk, key=key, value=value)
             for k, pk in enumerate(exp_ids)
             for key, value in (("project", PROJECTS[k % len(PROJECTS)]), ("owner_team", f"team-{k % OWNER_TEAMS}"),
                                ("purpose", "benchmark"))],
            batch_size=BATCH,
        )  # fmt: skip
    steps["experiments"] = time.perf_counter() - started

    began = time.perf_counter()
    with transaction.atomic():
        names = [model_name(k) for k in range(M)]
        models = RegisteredModel.objects.bulk_create(
            [RegisteredModel(name=names[k], owner=owner, creation_timestamp=now + k * 1000,
                             last_updated_timestamp=now + shuffled(k, M) * 1000,
                             last_version_number=versions_of(k, M, V)) for k in range(M)],
            batch_size=BATCH,
        )  # fmt: skip
        model_ids = ids_of(models, RegisteredModel, "cat-model-", names)
        RegisteredModelTag.objects.bulk_create(
            [RegisteredModelTag(registered_model_id=pk, key=key, value=value)
             for k, pk in enumerate(model_ids)
             for key, value in (("task", TASKS[k % len(TASKS)]), ("owner_team", f"team-{k % OWNER_TEAMS}"))],
            batch_size=BATCH,
        )  # fmt: skip
    steps["models"] = time.perf_counter() - began

    began = time.perf_counter()
    tags = 0
    with transaction.atomic():
        n = 0
        pending = []
        for k, pk in enumerate(model_ids):
            for v in range(1, versions_of(k, M, V) + 1):
                pending.append(ModelVersion(
                    registered_model_id=pk, version=v, owner=owner, source=f"models:/m-{n:032x}",
                    storage_location=f"mlflow-artifacts:/cat-models/{k}/{v}", creation_timestamp=now + n,
                    last_updated_timestamp=now + shuffled(n, V)))  # fmt: skip
                n += 1
            if len(pending) >= BATCH * 4 or k == len(model_ids) - 1:
                created = ModelVersion.objects.bulk_create(pending, batch_size=BATCH)
                if any(mv.pk is None for mv in created):
                    lookup = {(r, v): i for i, r, v in ModelVersion.objects.filter(
                        registered_model_id__in={mv.registered_model_id for mv in created}).values_list("pk", "registered_model_id", "version")}  # fmt: skip
                    for mv in created:
                        mv.pk = lookup[(mv.registered_model_id, mv.version)]
                rows = [ModelVersionTag(model_version_id=mv.pk, key=key, value=value)
                        for mv in created
                        for key, value in (("validated", "true" if mv.version % 5 == 0 else "false"), ("dataset", f"ds-{mv.version % 4}"))]  # fmt: skip
                tags += len(ModelVersionTag.objects.bulk_create(rows, batch_size=BATCH))
                pending = []
    steps["versions"] = time.perf_counter() - began

    began = time.perf_counter()
    grants = 0
    with transaction.atomic():
        for ids, app, kind, user_table, group_table in (
            (exp_ids, "tracking", "experiment", ExperimentUserObjectPermission, ExperimentGroupObjectPermission),
            (model_ids, "registry", "registeredmodel", RegisteredModelUserObjectPermission, RegisteredModelGroupObjectPermission),
        ):
            view, manage = perm(app, f"view_{kind}"), perm(app, f"manage_{kind}")
            grants += len(user_table.objects.bulk_create(
                [user_table(user=owner, permission=manage, content_object_id=pk) for pk in ids], batch_size=BATCH))  # fmt: skip
            grants += len(group_table.objects.bulk_create(
                [group_table(group=team, permission=view, content_object_id=pk) for k, pk in enumerate(ids) if team_reads(k)],
                batch_size=BATCH))  # fmt: skip
    steps["grants"] = time.perf_counter() - began
    if args.analyze and connection.vendor == "postgresql":
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        steps["analyze"] = time.perf_counter() - began
    return {
        "experiments": E,
        "models": M,
        "versions": n,
        "version_tags": tags,
        "grants": grants,
        "steps": steps,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    user = commands.add_parser("team-user", help="the team-granted user, its team, READ on experiments, a token")
    user.add_argument("--experiment", action="append", help="an experiment id the team gets READ on (repeatable)")
    seed = commands.add_parser("catalog", help="experiments, registered models and versions with tags and grants")
    seed.add_argument("--experiments", type=int, required=True)
    seed.add_argument("--models", type=int, required=True)
    seed.add_argument("--versions", type=int, required=True)
    seed.add_argument("--analyze", action="store_true", help="ANALYZE afterwards (PostgreSQL)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    print(json.dumps(team_user(args) if args.command == "team-user" else catalog(args)))


if __name__ == "__main__":
    main()
