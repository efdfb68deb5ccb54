"""The suite imports test modules by their base name (pytest's default ``prepend`` import mode,
no packages under tests/): two test modules with one name in two rooms make the second fail to
collect ("import file mismatch"), so every name is unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_two_test_modules_share_a_name() -> None:
    names = Counter(
        path.name
        for path in TESTS.rglob("*.py")
        if "node_modules" not in path.parts and path.name != "conftest.py"
    )
    assert [name for name, count in names.items() if count > 1] == []
