"""The scale-out schema is generated as text; its local half is also executed on chDB."""

from __future__ import annotations

import re

from otelspend.clickhouse.cluster import render_cluster, table_names
from otelspend.clickhouse.migrate import load_migrations

MIGRATIONS = load_migrations()
DDL = render_cluster(MIGRATIONS, "spend", "prod")


def test_every_ddl_statement_runs_on_the_cluster():
    for statement in DDL:
        if statement.startswith("INSERT"):
            # Data rebuilds act on the local shard (documented): feeds re-fed from stored rows,
            # daily rollups backfilled from the hourly ones, every table the shard's own.
            target = re.match(r"INSERT INTO spend\.(\w+_(?:feed|daily)_local)\s+SELECT\b", statement)
            assert target, statement[:120]
            assert all(name.endswith("_local") for name in re.findall(r"spend\.(\w+)", statement)), statement
            continue
        assert " ON CLUSTER 'prod'" in statement, statement[:120]


def test_every_stored_table_is_replicated_with_its_own_path_and_a_distributed_twin():
    merge_trees = [s for s in DDL if "MergeTree" in s]
    paths = set()
    for statement in merge_trees:
        name = re.search(r"spend\.(\w+)_local ON CLUSTER", statement).group(1)
        engine = re.search(r"ENGINE = (Replicated\w*MergeTree)\('([^']+)', '\{replica\}'", statement)
        assert engine, statement[:200]
        assert engine.group(2) == f"/clickhouse/tables/{{shard}}/spend/{name}_local"
        paths.add(engine.group(2))
        twin = next(s for s in DDL if s.startswith(f"CREATE TABLE IF NOT EXISTS spend.{name} ON CLUSTER"))
        assert f"AS spend.{name}_local ENGINE = Distributed('prod', 'spend', '{name}_local'" in twin
    assert len(paths) == len(merge_trees)


def test_a_run_and_its_spans_share_a_shard():
    sharding = {}
    for statement in DDL:
        match = re.match(r"CREATE TABLE IF NOT EXISTS spend\.(\w+) ON CLUSTER 'prod' AS .*, (\S+)\)$", statement)
        if match and "Distributed" in statement:
            sharding[match.group(1)] = match.group(2)
    assert sharding["spans"] == "cityHash64(trace_id)"
    assert sharding["runs"] == sharding["run_calls"] == sharding["outcomes"] == "cityHash64(run_id)"


def test_views_feeds_and_rebuilds_stay_on_local_tables():
    local = {f"{name}_local" for name in table_names(MIGRATIONS)}
    for statement in DDL:
        if "MATERIALIZED VIEW" in statement or "ENGINE = Null" in statement or statement.startswith("INSERT"):
            own = re.search(r"spend\.(\w+) ON CLUSTER", statement)
            referenced = set(re.findall(r"spend\.(\w+)", statement)) - ({own.group(1)} if own else set())
            assert referenced <= local, (referenced - local, statement[:160])


def test_local_half_is_valid_clickhouse(store):
    """Strip the cluster parts and run the shard-local statements on chDB."""
    db = store.database
    for statement in render_cluster(MIGRATIONS, db, "prod"):
        if "ENGINE = Distributed" in statement or statement.startswith("CREATE DATABASE"):
            continue
        local = statement.replace(" ON CLUSTER 'prod'", "")
        local = re.sub(r"ENGINE = Replicated(\w*MergeTree)\('[^']+', '\{replica\}'(?:, )?", r"ENGINE = \1(", local)
        store.command(local)
    tables = {row[0] for row in store.rows(f"SHOW TABLES FROM {db}")}
    assert {"spans_local", "runs_local", "rollup_calls_hourly_local", "mv_rollup_runs"} <= tables
