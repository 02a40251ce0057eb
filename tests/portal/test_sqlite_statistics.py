"""The embedded default keeps SQLite's planner statistics (portal.sqlite_statistics)."""

import pytest
from django.db import connection

from portal import sqlite_statistics

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only: PostgreSQL has autovacuum"),
]


def analyzed(statements):
    return [sql for sql, *_ in statements if sql.strip().upper().startswith("ANALYZE")]


def run_refresh(monkeypatch, clock):
    statements = []
    monkeypatch.setattr(sqlite_statistics.time, "monotonic", lambda: clock[0])

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        sqlite_statistics.refresh_statistics(sender=None, connection=connection)
    return statements


def test_statistics_are_gathered_once_then_hourly(monkeypatch):
    monkeypatch.setattr(sqlite_statistics, "_last_refresh", 0.0)
    clock = [1000.0]
    assert analyzed(run_refresh(monkeypatch, clock)) == ["ANALYZE"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert cursor.fetchone()[0] == 1
    clock[0] += sqlite_statistics.REFRESH_SECONDS - 1
    assert analyzed(run_refresh(monkeypatch, clock)) == []
    clock[0] += 2
    assert analyzed(run_refresh(monkeypatch, clock)) == ["ANALYZE"]


def test_a_locked_database_skips_the_refresh(monkeypatch):
    monkeypatch.setattr(sqlite_statistics, "_last_refresh", 0.0)

    def locked(execute, sql, params, many, context):
        if sql.startswith("ANALYZE"):
            raise sqlite_statistics.OperationalError("database is locked")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(locked):
        sqlite_statistics.refresh_statistics(sender=None, connection=connection)  # no exception
    assert sqlite_statistics._last_refresh > 0
