"""Plain SQL on the driver (store/sql.py): placeholders per dialect, uint256 conversion both
ways, and errors of the same types as through SQLAlchemy."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from store_support import Seeder

from sessionward.store import Store
from sessionward.store.schema import UINT256_MAX, usage
from sessionward.store.sql import Columns, Sql, _pyformat, insert_of


def test_named_parameters_become_pyformat_and_casts_and_percents_survive() -> None:
    assert _pyformat("SELECT :a, :b_2 WHERE x = :a") == "SELECT %(a)s, %(b_2)s WHERE x = %(a)s"
    assert _pyformat("SELECT :n::numeric, '10%'") == "SELECT %(n)s::numeric, '10%%'"
    assert _pyformat("SELECT 'a:b'") == "SELECT 'a:b'"


def _usage_rows(store: Store) -> int:
    with store.db.reading() as conn:
        return int(Sql("SELECT count(*) FROM usage").run(conn, {}).fetchone()[0])


@pytest.mark.parametrize("amount", [0, 1, 2**64, UINT256_MAX])
def test_uint256_values_go_in_and_come_back_exactly(
    store: Store, seed: Seeder, amount: int
) -> None:
    session_id = seed.session().session_id
    columns = Columns(usage)
    with store.db.writing() as conn:
        insert_of(usage).run(
            conn, {"session_id": session_id, "bucket": "usd", "window": 3, "amount": amount}
        )
        row = (
            Sql(f"SELECT {columns.sql} FROM usage WHERE session_id = :s")
            .run(conn, {"s": session_id})
            .fetchone()
        )
    assert columns.mapping(row) == {
        "session_id": session_id,
        "bucket": "usd",
        "window": 3,
        "amount": amount,
    }


@pytest.mark.parametrize("amount", [-1, UINT256_MAX + 1, True, "5"])
def test_a_value_outside_uint256_is_refused_before_the_database(
    store: Store, seed: Seeder, amount: object
) -> None:
    session_id = seed.session().session_id
    with pytest.raises(ValueError), store.db.writing() as conn:
        insert_of(usage).run(
            conn, {"session_id": session_id, "bucket": "usd", "window": 0, "amount": amount}
        )
    assert _usage_rows(store) == 0


def test_a_constraint_violation_is_sqlalchemys_integrity_error(store: Store, seed: Seeder) -> None:
    session_id = seed.session().session_id
    row = {"session_id": session_id, "bucket": "usd", "window": 0, "amount": 1}
    with store.db.writing() as conn:
        insert_of(usage).run(conn, row)
    with pytest.raises(IntegrityError), store.db.writing() as conn:
        insert_of(usage).run(conn, row)
    assert _usage_rows(store) == 1
