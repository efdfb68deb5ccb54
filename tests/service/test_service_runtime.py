"""Start-up on embedded defaults: the in-process chain is new at every start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sessionward.service.config import Settings
from sessionward.service.runtime import EMBEDDED_CHAIN_ID, build_runtime


def _start_and_stop(data_dir: Path, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, "sessionward.runtime"):
        runtime = build_runtime(Settings(data_dir=data_dir, run_relayer=False))
    runtime.close()
    # The runtime's own warnings (the vault's SECURITY warning about an embedded key file is
    # another logger's, and expected on every embedded start).
    return "".join(
        f"{r.levelname} {r.getMessage()}\n"
        for r in caplog.records
        if r.name == "sessionward.runtime"
    )


def test_restarting_over_an_earlier_runs_wallets_warns_that_they_cannot_execute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert _start_and_stop(tmp_path, caplog) == ""
    runtime = build_runtime(Settings(data_dir=tmp_path, run_relayer=False))
    runtime.store.wallets.add(
        wallet_id="wal_earlier",
        chain_id=EMBEDDED_CHAIN_ID,
        account="0x" + "11" * 20,
        owner="0x" + "22" * 20,
        owner_kind="eoa",
        now=1,
    )
    runtime.close()
    warning = _start_and_stop(tmp_path, caplog)
    assert "1 wallet(s)" in warning and "SESSIONWARD_RPC_URL" in warning
