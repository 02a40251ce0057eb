"""Registry searches pinned against a reference computed in Python (issue 9).

The searches choose their SQL for speed (where the permission test goes, subqueries on
the models, indexes on the last update); whatever plan the database picks, a page must
hold exactly the rows the rules say, in exactly MLflow's order, and paging must visit
every row once. The catalog has ties on every ordered column, so the tie-breakers decide.

Models and grants go through the real services; the versions, their tags and times are
written as rows (the search only reads them), so that there are enough of them.
"""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import permissions
from portal import services as portal_services
from registry import selectors, services
from registry.models import ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel
from tests.conftest import make_user

MODELS = 24
BASE = 1_700_000_000_000
DENIED = 4  # bob is denied this model, although his team reads it
STAGES = ("None", "Staging", "Production", "Archived")


def model_name(k: int) -> str:
    return f"m-{k:02d}"


def versions_of(k: int) -> int:
    return 12 if k == 0 else k % 4 + 1


def private(k: int) -> bool:
    return k % 6 == 5


def team_reads(k: int) -> bool:
    return k % 2 == 0


@pytest.fixture
def catalog(alice, root):
    """24 models m-00..m-23 (alice's), their versions with ties on every ordered column,
    tags, aliases; bob reads the even ones through his team and is denied m-04."""
    bob = make_user("bob")
    team = portal_services.team_create(actor=root, name="readers")
    portal_services.team_member_add(actor=root, team_id=team.pk, username="bob")
    models = []
    for k in range(MODELS):
        tags = [{"key": "team", "value": "abc"[k % 3]}]
        if k == 7:
            tags.append({"key": "mlflow.prompt.is_prompt", "value": "true"})
        model = services.registered_model_create(actor=alice, name=model_name(k), tags=tags)
        if private(k):
            model = services.registered_model_set_private(actor=alice, name=model.name, private=True)
        if team_reads(k):
            permissions.grant_create(actor=alice, root=model, level="READ", team=team)
        if k == DENIED:
            permissions.grant_create(actor=alice, root=model, level="DENY", user=bob)
        models.append(model)
    # Model update times tie in threes; version times tie in sevens.
    for k, model in enumerate(models):
        RegisteredModel.objects.filter(pk=model.pk).update(last_updated_timestamp=BASE + (k % 8) * 1000)
    rows = []
    n = itertools.count()
    for k, model in enumerate(models):
        for v in range(1, versions_of(k) + 1):
            i = next(n)
            rows.append(
                ModelVersion(
                    registered_model=model,
                    version=v,
                    owner=alice,
                    source=f"models:/m-{i:032x}",
                    storage_location=f"mlflow-artifacts:/models/{i}",
                    current_stage=STAGES[(k + v) % 4],
                    creation_timestamp=BASE + i,
                    last_updated_timestamp=BASE + (i % 7) * 1000,
                )
            )
        RegisteredModel.objects.filter(pk=model.pk).update(last_version_number=versions_of(k))
    versions = ModelVersion.objects.bulk_create(rows)
    if any(v.pk is None for v in versions):
        versions = list(ModelVersion.objects.order_by("pk"))
    ModelVersionTag.objects.bulk_create(
        ModelVersionTag(model_version=v, key=key, value=value)
        for i, v in enumerate(versions)
        for key, value in (("validated", "true" if i % 3 == 0 else "false"), ("dataset", f"d{i % 4}"))
    )
    by_model = {}
    for v in versions:
        by_model.setdefault(v.registered_model_id, []).append(v)
    ModelAlias.objects.bulk_create(
        ModelAlias(registered_model_id=model_id, alias=alias, model_version=found[index])
        for model_id, found in by_model.items()
        for alias, index in (("champion", -1), ("first", 0))
        if len(found) > 1 or alias == "champion"
    )
    return {"alice": alice, "bob": bob, "root": root}


# ---------------------------------------------------------------- the reference


def readable(user, model: RegisteredModel, default: str) -> bool:
    """The access rule, written out for this catalog (portal.permissions states it in SQL)."""
    if user.is_superuser or model.owner_id == user.pk:
        return True
    k = int(model.name[2:])
    if k == DENIED:
        return False
    return team_reads(k) or (default != "NONE" and not model.private)


def ordered(rows: list, keys: list[tuple]) -> list:
    """`rows` sorted by `keys` ((key function, descending), most significant first)."""
    rows = list(rows)
    for key, descending in reversed(keys):
        rows.sort(key=key, reverse=descending)
    return rows


def version_rows(user, default: str, keep=lambda v: True) -> list[ModelVersion]:
    found = ModelVersion.objects.select_related("registered_model").prefetch_related("tags")
    return [v for v in found if readable(user, v.registered_model, default) and keep(v)]


def tag(v, key):
    return next((t.value for t in v.tags.all() if t.key == key), None)


NAME = (lambda v: v.registered_model.name, False)
VERSION_DESC = (lambda v: v.version, True)
UPDATED_DESC = (lambda v: v.last_updated_timestamp, True)

VERSION_CASES = [
    # (filter, order_by, Python filter, sort keys)
    (None, None, lambda v: True, [UPDATED_DESC, NAME, VERSION_DESC]),
    ("name = 'm-00'", ["version_number DESC"], lambda v: v.registered_model.name == "m-00", [VERSION_DESC, NAME]),
    ("name LIKE 'm-1%'", None, lambda v: v.registered_model.name.startswith("m-1"), [UPDATED_DESC, NAME, VERSION_DESC]),
    ("name LIKE 'm-1%'", ["name ASC"], lambda v: v.registered_model.name.startswith("m-1"), [NAME, VERSION_DESC]),
    ("name LIKE 'm-1%'", ["name DESC"], lambda v: v.registered_model.name.startswith("m-1"),
     [(NAME[0], True), VERSION_DESC]),
    (None, ["name ASC"], lambda v: True, [NAME, VERSION_DESC]),
    ("name != 'm-00'", ["last_updated_timestamp ASC"], lambda v: v.registered_model.name != "m-00",
     [(UPDATED_DESC[0], False), NAME, VERSION_DESC]),
    ("name IN ('m-02', 'm-03', 'm-04')", None, lambda v: v.registered_model.name in ("m-02", "m-03", "m-04"),
     [UPDATED_DESC, NAME, VERSION_DESC]),
    ("name NOT IN ('m-00', 'm-01')", ["version_number DESC"], lambda v: v.registered_model.name not in ("m-00", "m-01"),
     [VERSION_DESC, NAME]),
    ("name ILIKE 'M-2%' AND tags.validated = 'true'", ["version_number DESC"],
     lambda v: v.registered_model.name.startswith("m-2") and tag(v, "validated") == "true", [VERSION_DESC, NAME]),
    ("tags.dataset = 'd1'", ["last_updated_timestamp DESC"], lambda v: tag(v, "dataset") == "d1",
     [UPDATED_DESC, NAME, VERSION_DESC]),
    ("tags.validated != 'true' AND version_number > 1", None,
     lambda v: tag(v, "validated") != "true" and v.version > 1, [UPDATED_DESC, NAME, VERSION_DESC]),
]  # fmt: skip


def version_keys(versions) -> list[tuple[str, int]]:
    return [(v.registered_model.name, v.version) for v in versions]


def searched_versions(user, page_size: int, **kwargs) -> list[tuple[str, int]]:
    """Every page of a version search, concatenated."""
    seen, token = [], None
    while True:
        page = selectors.model_version_search_for_user(user, max_results=page_size, page_token=token, **kwargs)
        seen += [(d.version.registered_model.name, d.version.version) for d in page.versions]
        token = page.next_page_token
        if not token:
            return seen


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize("default", ["NONE", "READ"])
@pytest.mark.parametrize("who", ["root", "alice", "bob"])
@pytest.mark.parametrize("case", range(len(VERSION_CASES)))
def test_version_search_returns_the_rules_rows_in_mlflows_order(catalog, settings, default, who, case):
    settings.PORTAL_DEFAULT_PERMISSION = default
    user = catalog[who]
    filter_string, order_by, keep, keys = VERSION_CASES[case]
    expected = version_keys(ordered(version_rows(user, default, keep), keys))
    assert expected  # every case matches something for everyone

    got = searched_versions(user, 1000, filter_string=filter_string, order_by=order_by)

    assert got == expected


@pytest.mark.parametrize("page_size", [1, 7, 25])
@pytest.mark.parametrize("order_by", [None, ["name ASC"], ["version_number DESC"]])
def test_version_paging_visits_every_row_once_in_order(catalog, settings, page_size, order_by):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    whole = searched_versions(catalog["bob"], 1000, order_by=order_by)

    paged = searched_versions(catalog["bob"], page_size, order_by=order_by)

    assert paged == whole
    assert len(set(paged)) == len(paged)


def test_a_version_page_carries_its_tags_aliases_and_owner(catalog):
    found = "name = 'm-00' AND version_number = 12"
    page = selectors.model_version_search_for_user(catalog["alice"], filter_string=found)
    [data] = page.versions

    assert [(t.key, t.value) for t in data.tags] == [("dataset", "d3"), ("validated", "false")]
    assert data.aliases == ["champion"]
    assert data.version.owner.get_username() == "alice"


# ---------------------------------------------------------------- registered models

MODEL_CASES = [
    (None, None, lambda m: True, [(lambda m: m.name, False)]),
    ("name LIKE 'm-1%' AND tag.`mlflow.prompt.is_prompt` != 'true'", ["name ASC"],
     lambda m: m.name.startswith("m-1"), [(lambda m: m.name, False)]),
    ("tags.team = 'a' AND tag.`mlflow.prompt.is_prompt` != 'true'", ["last_updated_timestamp DESC"],
     lambda m: m.name != "m-07" and int(m.name[2:]) % 3 == 0,
     [(lambda m: m.last_updated_timestamp, True), (lambda m: m.name, False)]),
    ("tag.`mlflow.prompt.is_prompt` != 'true'", ["timestamp ASC"], lambda m: m.name != "m-07",
     [(lambda m: m.last_updated_timestamp, False), (lambda m: m.name, False)]),
]  # fmt: skip


def searched_models(user, page_size: int, **kwargs) -> list:
    seen, token = [], None
    while True:
        page = selectors.registered_model_search_for_user(user, max_results=page_size, page_token=token, **kwargs)
        seen += page.models
        token = page.next_page_token
        if not token:
            return seen


@pytest.mark.parametrize("default", ["NONE", "READ"])
@pytest.mark.parametrize("who", ["root", "bob"])
@pytest.mark.parametrize("case", range(len(MODEL_CASES)))
@pytest.mark.parametrize("page_size", [5, 100])
def test_model_search_returns_the_rules_models_in_order(catalog, settings, default, who, case, page_size):
    settings.PORTAL_DEFAULT_PERMISSION = default
    user = catalog[who]
    filter_string, order_by, keep, keys = MODEL_CASES[case]
    models = [m for m in RegisteredModel.objects.all() if readable(user, m, default) and keep(m)]
    expected = [m.name for m in ordered(models, keys)]
    assert expected

    got = [d.model.name for d in searched_models(user, page_size, filter_string=filter_string, order_by=order_by)]

    assert got == expected


def test_each_model_carries_its_latest_version_per_stage_tags_and_aliases(catalog):
    found = searched_models(catalog["root"], 100)

    for data in found:
        versions = list(ModelVersion.objects.filter(registered_model=data.model))
        latest = {}
        for v in sorted(versions, key=lambda v: v.version):
            latest[v.current_stage] = v
        expected = [(s, latest[s].version) for s in STAGES if s in latest]
        assert [(d.version.current_stage, d.version.version) for d in data.latest_versions] == expected
        for d in data.latest_versions:
            assert d.version.registered_model is data.model
            assert [t.key for t in d.tags] == ["dataset", "validated"]
            expected_aliases = ModelAlias.objects.filter(model_version=d.version).order_by("alias")
            assert d.aliases == [a.alias for a in expected_aliases]
            assert d.version.owner.get_username() == "alice"
        aliases = ModelAlias.objects.filter(registered_model=data.model).select_related("model_version")
        assert [(a.alias, a.model_version.version) for a in data.aliases] == sorted(
            (a.alias, a.model_version.version) for a in aliases
        )
        assert [t.key for t in data.tags] == sorted(t.key for t in data.model.tags.all())


def test_a_page_of_models_costs_the_same_queries_for_few_or_many(catalog):
    with CaptureQueriesContext(connection) as few:
        selectors.registered_model_search_for_user(catalog["bob"], max_results=2)
    with CaptureQueriesContext(connection) as many:
        selectors.registered_model_search_for_user(catalog["bob"], max_results=100)

    assert len(many.captured_queries) == len(few.captured_queries) <= 6
