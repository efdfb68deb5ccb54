"""Fixtures of the multi-node tests: one anvil node, one PostgreSQL schema and three
``sessionward serve`` processes per test module (see :mod:`multinode_support`).

PostgreSQL (``$SESSIONWARD_TEST_PG_URL``, default the local server with trust auth) and anvil
(npm ``@foundry-rs/anvil``) are required: if either is unavailable the tests FAIL, they are
never skipped. The schema is fresh per module and dropped afterwards; every process is stopped
by its PID.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from multinode_support import (
    CHAIN_ID,
    CLUSTER_CONFIG,
    PG_URL,
    Cluster,
    OpsKey,
    ServiceNode,
    node_environment,
)
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

import anvil_node
from sessionward.chain.demo import DemoDeployment
from sessionward.chain.rpc import RpcChain
from sessionward.store import open_store
from sessionward.store.database import normalize_url

NODES = 3


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    """A fresh anvil node (Prague, chain id 1) for the module."""
    yield from anvil_node.session_node(CHAIN_ID)


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name for the module (the nodes create it), dropped at the end.
    Fails at once when the server does not answer."""
    admin = create_engine(normalize_url(PG_URL))
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is unavailable at {PG_URL}: {exc}", pytrace=False)
    name = f"sw_multinode_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def cluster(
    anvil_url: str, pg_schema: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three nodes sharing a data directory, a schema and the chain. Node 1 starts first (it
    creates the key files, migrates the schema and deploys the demo world); then nodes 2, 3."""
    data_dir: Path = tmp_path_factory.mktemp("multinode")
    config = data_dir / "multinode.toml"
    config.write_text(CLUSTER_CONFIG, encoding="utf-8")
    ops_keys = [OpsKey(f"ops-{i + 1}", secrets.token_bytes(32)) for i in range(2)]
    env = node_environment(
        data_dir=data_dir,
        schema=pg_schema,
        rpc_url=anvil_url,
        ops_keys=",".join(k.entry for k in ops_keys),
        config=config,
    )
    nodes: list[ServiceNode] = []
    try:
        nodes.append(ServiceNode.start("node-1", env, data_dir / "node-1.log"))
        nodes[0].wait_ready()
        for i in range(2, NODES + 1):
            nodes.append(ServiceNode.start(f"node-{i}", env, data_dir / f"node-{i}.log"))
        for node in nodes[1:]:
            node.wait_ready()
    except RuntimeError as exc:
        for node in nodes:
            node.stop()
        pytest.fail(str(exc), pytrace=False)
    chain = RpcChain(anvil_url)
    store = open_store(PG_URL, schema=pg_schema)
    deployment = DemoDeployment(**_json(data_dir / "deployment.json"))
    try:
        yield Cluster(nodes, data_dir, pg_schema, chain, deployment, store, ops_keys)
    finally:
        for node in nodes:
            node.stop()
        chain.close()
        store.close()


def _json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document
