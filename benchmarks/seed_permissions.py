"""The permissions workload's data, written straight into the portal's database. Run as a
subprocess with the portal's environment (DATABASE_URL or PORTAL_VAR_DIR):

    seed_permissions.py --experiments 10000 --runs 100000 --models 10000 [--analyze]

Experiment k is `perm-exp-<k>`, registered model k `perm-model-<k>`; both kinds get the same
access layout (k from 0):

- every one has a MANAGE grant for its creator, the superuser `bench` (what the portal's
  own create path writes);
- team A holds READ on even k (a half), team B EDIT on k % 8 in {0, 1} (a quarter, half of
  it overlapping A's);
- eight other teams (with a few members each, none of them the measured user) hold READ
  on an eighth each, so the grant tables also hold other teams' rows;
- k % 8 == 7 is private, and granted to neither A nor B.

The measured user `perm-user`, not a superuser, is a member of teams A and B and of
nothing else: with PORTAL_DEFAULT_PERMISSION=NONE they read 5/8 of everything, with READ
7/8 (all but the private ones).

Runs (the search workload's rows, data.py: 14 tags, 20 params, 10 metrics with one point
each) are spread so that searches meet a realistic share: experiment 2 (team A) holds a
quarter of them, experiments 1 (B), 4 (A), 8 (A and B), 9 (B) and 10 (A) a twentieth each,
and the other half goes round-robin to the remaining experiments. Each registered model has
one version and one tag.

Prints one JSON line: the user's token, the ids the workload queries, the expected counts.
"""

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data  # noqa: E402
from direct import child_inserters, inserter, run_rows  # noqa: E402

USER = "perm-user"
BIG = 2  # experiment index holding a quarter of the runs
SEVERAL = (1, 4, 8, 9, 10)  # a twentieth each
HIDDEN = 3  # not granted, not private: hidden under NONE, readable under READ
PRIVATE = 7  # private, not granted: hidden under both
OTHER_TEAMS = 8
OTHER_MEMBERS = 5  # per other team
RUNS_PER_TRANSACTION = 1000


def team_a(k: int) -> bool:
    return k % 2 == 0


def team_b(k: int) -> bool:
    return k % 8 in (0, 1)


def private(k: int) -> bool:
    return k % 8 == 7


def other_team(k: int) -> int:
    return (k // 8) % OTHER_TEAMS


def visible_count(n: int, default: str) -> int:
    """How many of perm-*-0..n-1 the user reads under this default."""
    if default == "NONE":
        return sum(1 for k in range(n) if team_a(k) or team_b(k))
    return sum(1 for k in range(n) if not private(k) or team_a(k) or team_b(k))


def experiment_of_run(i: int, runs: int, experiments: int) -> int:
    """The experiment index of run number i."""
    quarter, twentieth = runs // 4, runs // 20
    if i < quarter:
        return BIG
    if i < quarter + len(SEVERAL) * twentieth:
        return SEVERAL[(i - quarter) // twentieth]
    rest = [k for k in range(min(experiments, 32)) if k != BIG and k not in SEVERAL]
    n = i - quarter - len(SEVERAL) * twentieth
    # The remaining experiments in turn; indexes >= 32 are all "rest", so no list of 10,000 is built.
    cycle = len(rest) + max(experiments - 32, 0)
    j = n % cycle
    return rest[j] if j < len(rest) else 32 + (j - len(rest))


def seed(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db import connection, transaction

    from portal.services import api_token_create
    from registry.models import (
        ModelVersion,
        RegisteredModel,
        RegisteredModelGroupObjectPermission,
        RegisteredModelTag,
        RegisteredModelUserObjectPermission,
    )
    from tracking.models import (
        Experiment,
        ExperimentGroupObjectPermission,
        ExperimentUserObjectPermission,
        LatestMetric,
        Metric,
        Param,
        Run,
        RunTag,
    )

    started = time.perf_counter()
    user_model = get_user_model()
    owner = user_model.objects.get(username=data.USER)
    E, R, M = args.experiments, args.runs, args.models
    if E < 11 or R < 40:
        raise SystemExit("need at least 11 experiments and 40 runs")

    with transaction.atomic():
        user = user_model.objects.create_user(USER, f"{USER}@example.com", secrets.token_urlsafe(16))
        token = api_token_create(user=user, name="benchmark").raw
        team_a_group = Group.objects.create(name="perm-team-a")
        team_b_group = Group.objects.create(name="perm-team-b")
        user.groups.add(team_a_group, team_b_group)
        others = [Group.objects.create(name=f"perm-team-other-{t}") for t in range(OTHER_TEAMS)]
        members = user_model.objects.bulk_create(
            [
                user_model(username=f"perm-other-{t}-{m}", password="!")
                for t in range(OTHER_TEAMS)
                for m in range(OTHER_MEMBERS)
            ]
        )
        through = user_model.groups.through
        through.objects.bulk_create(
            [through(user_id=u.pk, group_id=others[n // OTHER_MEMBERS].pk) for n, u in enumerate(members)]
        )

        def perm(app: str, codename: str) -> Permission:
            return Permission.objects.get(content_type__app_label=app, codename=codename)

        now = data.BASE_TIME_MS
        experiments = Experiment.objects.bulk_create(
            [
                Experiment(
                    name=f"perm-exp-{k:05d}",
                    artifact_location="",
                    owner=owner,
                    creation_time=now + k,
                    last_update_time=now + k,
                    private=private(k),
                )  # fmt: skip
                for k in range(E)
            ],
            batch_size=2000,
        )
        exp_ids = [e.pk for e in experiments]
        if any(pk is None for pk in exp_ids):  # a backend that does not return ids from bulk inserts
            by_name = dict(Experiment.objects.filter(name__startswith="perm-exp-").values_list("name", "pk"))
            exp_ids = [by_name[f"perm-exp-{k:05d}"] for k in range(E)]
        for k, pk in enumerate(exp_ids):
            experiments[k].pk = pk
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tracking_experiment SET artifact_location = %s || CAST(id AS TEXT) WHERE name LIKE %s",
                ["mlflow-artifacts:/", "perm-exp-%"],
            )

        models = RegisteredModel.objects.bulk_create(
            [
                RegisteredModel(
                    name=f"perm-model-{k:05d}",
                    owner=owner,
                    creation_timestamp=now + k,
                    last_updated_timestamp=now + k,
                    last_version_number=1,
                    private=private(k),
                )  # fmt: skip
                for k in range(M)
            ],
            batch_size=2000,
        )
        model_ids = [m.pk for m in models]
        if any(pk is None for pk in model_ids):
            by_name = dict(RegisteredModel.objects.filter(name__startswith="perm-model-").values_list("name", "pk"))
            model_ids = [by_name[f"perm-model-{k:05d}"] for k in range(M)]

        grants = 0
        for ids, app, model_name, user_table, group_table in (
            (exp_ids, "tracking", "experiment", ExperimentUserObjectPermission, ExperimentGroupObjectPermission),
            (
                model_ids,
                "registry",
                "registeredmodel",
                RegisteredModelUserObjectPermission,
                RegisteredModelGroupObjectPermission,
            ),
        ):
            view, change, manage = (perm(app, f"{p}_{model_name}") for p in ("view", "change", "manage"))
            rows = [user_table(user=owner, permission=manage, content_object_id=pk) for pk in ids]
            grants += len(user_table.objects.bulk_create(rows, batch_size=5000))
            rows = []
            for k, pk in enumerate(ids):
                if team_a(k):
                    rows.append(group_table(group=team_a_group, permission=view, content_object_id=pk))
                if team_b(k):
                    rows.append(group_table(group=team_b_group, permission=change, content_object_id=pk))
                if not private(k):
                    rows.append(group_table(group=others[other_team(k)], permission=view, content_object_id=pk))
            grants += len(group_table.objects.bulk_create(rows, batch_size=5000))

        versions = ModelVersion.objects.bulk_create(
            [
                ModelVersion(
                    registered_model_id=pk,
                    version=1,
                    owner=owner,
                    source=f"models:/m-{k:032x}",
                    storage_location=f"mlflow-artifacts:/models/{k}",
                    creation_timestamp=now + k,
                    last_updated_timestamp=now + k,
                )  # fmt: skip
                for k, pk in enumerate(model_ids)
            ],
            batch_size=5000,
        )
        RegisteredModelTag.objects.bulk_create(
            [
                RegisteredModelTag(registered_model_id=pk, key="team", value="a" if team_a(k) else "other")
                for k, pk in enumerate(model_ids)
            ],  # fmt: skip
            batch_size=5000,
        )
    setup_seconds = time.perf_counter() - started

    # Runs, RUNS_PER_TRANSACTION per transaction, as direct.py's search seeding does.
    insert_run = inserter(
        Run,
        [
            "id",
            "experiment_id",
            "name",
            "owner_id",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
            "artifact_uri",
        ],
    )
    insert_tag, insert_param, insert_metric, insert_latest = child_inserters(RunTag, Param, Metric, LatestMetric)
    sample_runs: dict[int, str] = {}  # experiment index -> one run id there
    rows = 0
    runs_started = time.perf_counter()
    for first in range(0, R, RUNS_PER_TRANSACTION):
        group = []
        for i in range(first, min(first + RUNS_PER_TRANSACTION, R)):
            k = experiment_of_run(i, R, E)
            run_id = uuid.uuid4().hex
            sample_runs.setdefault(k, run_id)
            tags, params, history, latest = run_rows(i, 1)
            run = (run_id, exp_ids[k], data.run_name(i), owner.pk, data.USER, data.run_status(i), data.BASE_TIME_MS + i * 1000,
                   data.BASE_TIME_MS + i * 1000 + 999, "active", f"mlflow-artifacts:/{exp_ids[k]}/{run_id}/artifacts")  # fmt: skip
            group.append((run, [(run_id, exp_ids[k], *t) for t in tags], [(run_id, exp_ids[k], *p) for p in params],
                          [(run_id, exp_ids[k], key, value, False, ts, step) for key, value, ts, step in history],
                          [(run_id, exp_ids[k], key, value, False, ts, step) for key, value, ts, step in latest]))  # fmt: skip
        with transaction.atomic(), connection.cursor() as cursor:
            rows += insert_run(cursor, [g[0] for g in group])
            rows += insert_tag(cursor, [r for g in group for r in g[1]])
            rows += insert_param(cursor, [r for g in group for r in g[2]])
            rows += insert_metric(cursor, [r for g in group for r in g[3]])
            rows += insert_latest(cursor, [r for g in group for r in g[4]])
    runs_seconds = time.perf_counter() - runs_started
    if args.analyze and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    quarter, twentieth = R // 4, R // 20
    return {
        "user": USER,
        "token": token,
        "big": str(exp_ids[BIG]),
        "big_runs": quarter,
        "several": [str(exp_ids[k]) for k in SEVERAL],
        "several_runs": len(SEVERAL) * twentieth,
        "run": sample_runs[BIG],
        "hidden_run": sample_runs.get(HIDDEN),
        "private_run": sample_runs.get(PRIVATE),
        "visible_experiments": {d: visible_count(E, d) for d in ("NONE", "READ")},
        "visible_models": {d: visible_count(M, d) for d in ("NONE", "READ")},
        "grants": grants,
        "versions": len(versions),
        "rows": rows,
        "setup_seconds": setup_seconds,
        "runs_seconds": runs_seconds,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE afterwards (PostgreSQL)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    print(json.dumps(seed(args)))


if __name__ == "__main__":
    main()
