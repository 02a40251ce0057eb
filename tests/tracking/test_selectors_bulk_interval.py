"""Sampling a metric's history for charts (metric_history_bulk_interval_for_user).

The selector takes a shortcut when a run's steps are contiguous (one aggregate instead of
reading every step); these tests pin that it samples exactly as reading every step would,
with gaps, repeated steps, windows and short histories.
"""

import pytest

from tests.factories import make_experiment, make_run
from tracking import selectors
from tracking.models import Metric

pytestmark = pytest.mark.django_db


def _log(run, steps, *, points_per_step=1):
    Metric.objects.bulk_create(
        [
            Metric(run=run, key="loss", value=float(step) + n / 10, timestamp=1000 + n, step=step)
            for step in steps
            for n in range(points_per_step)
        ]
    )


def _expected_steps(steps, max_results, start=None, end=None):
    distinct = sorted({s for s in steps if (start is None or start <= s <= end)})
    return selectors._sample_steps(distinct, max_results)


def _sampled(user, run, max_results, start=None, end=None):
    return selectors.metric_history_bulk_interval_for_user(
        user, run_ids=[run.pk], key="loss", max_results=max_results, start_step=start, end_step=end
    )


@pytest.fixture
def run(alice):
    return make_run(owner=alice, experiment=make_experiment(owner=alice, name="charts"))


@pytest.mark.parametrize(
    "steps",
    [
        list(range(1000)),  # contiguous from 0
        list(range(-50, 950)),  # contiguous, negative start
        list(range(0, 3000, 3)),  # regular gaps
        [0, 1, 2, 3, 10, 11, 12, 500, 501, 999] + list(range(2000, 2700)),  # irregular gaps
    ],
)
def test_sampling_picks_the_same_steps_as_reading_every_step(alice, run, steps):
    _log(run, steps)
    points = _sampled(alice, run, 100)
    assert [p.step for p in points] == _expected_steps(steps, 100)
    assert points[0].step == min(steps) and points[-1].step == max(steps)
    assert all(p.run_id == run.pk for p in points)


def test_every_point_of_a_sampled_step_is_returned_in_timestamp_order(alice, run):
    _log(run, range(500), points_per_step=2)
    points = _sampled(alice, run, 50)
    steps = [p.step for p in points]
    assert steps == [s for s in _expected_steps(range(500), 50) for _ in range(2)]
    assert all(a.timestamp < b.timestamp for a, b in zip(points[::2], points[1::2], strict=True))


def test_a_short_history_comes_back_whole(alice, run):
    _log(run, [0, 5, 6, 7])
    assert [p.step for p in _sampled(alice, run, 320)] == [0, 5, 6, 7]


def test_a_window_samples_only_inside_it(alice, run):
    steps = list(range(10_000))
    _log(run, steps)
    points = _sampled(alice, run, 40, start=4000, end=6000)
    assert [p.step for p in points] == _expected_steps(steps, 40, 4000, 6000)
    assert points[0].step == 4000 and points[-1].step == 6000


def test_a_run_without_the_metric_gives_nothing(alice, run):
    assert _sampled(alice, run, 10) == []
