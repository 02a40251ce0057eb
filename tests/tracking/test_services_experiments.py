"""Experiment services: what the API tests do not reach."""

import pytest

from portal.errors import AlreadyExists
from tests.factories import make_experiment
from tests.tracking.helpers import exists_check_misses
from tracking.models import Experiment

pytestmark = pytest.mark.django_db


def test_a_name_taken_after_the_exists_check_is_refused_by_the_unique_constraint(alice, bob, monkeypatch):
    make_experiment(owner=alice, name="race")
    missed = exists_check_misses(monkeypatch, Experiment)

    with pytest.raises(AlreadyExists, match=r"Experiment\(name=race\) already exists"):
        make_experiment(owner=bob, name="race")

    assert missed  # the service did check first, and the check missed
    # The failed INSERT ran in a savepoint: the surrounding transaction is still usable (PostgreSQL).
    assert list(Experiment.objects.filter(name="race").values_list("owner__username", flat=True)) == ["alice"]
