"""The store's statements straight through libpq (``sessionward.store.pg_wire``): each answer,
error and transaction is what psycopg itself gives, on the real server.

Every test runs the same statement through the wire and through psycopg's own
``Connection.execute`` (the reference) where there is an answer to compare."""

from __future__ import annotations

import contextlib
import decimal
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import errors, pq
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from database_support import PG_URL
from sessionward.store.database import Database, driver_of
from sessionward.store.pg_wire import Wire, wire_of
from sessionward.store.sql import Sql

pytestmark = pytest.mark.postgres

_TABLE = "CREATE TEMP TABLE wired (id text PRIMARY KEY, amount numeric, raw bytea, flag bool)"


@contextlib.contextmanager
def _connected(*tables: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection as the store's engine opens them (psycopg prepares nothing), with
    ``tables`` created on it (temporary)."""
    conn = psycopg.connect(
        PG_URL.replace("postgresql+psycopg", "postgresql"), prepare_threshold=None
    )
    try:
        for table in tables:
            conn.execute(table)
        conn.commit()
        yield conn
    finally:
        conn.close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    """An engine whose connections are opened as the store's are (psycopg prepares nothing)."""
    engine = create_engine(PG_URL, connect_args={"prepare_threshold": None})
    yield engine
    engine.dispose()


@pytest.fixture
def driver() -> Iterator[psycopg.Connection[Any]]:
    with _connected(_TABLE) as conn:
        yield conn


def _reference(driver: psycopg.Connection[Any], statement: str, params: Any = None) -> list[Any]:
    return driver.execute(statement, params).fetchall()


VALUES: list[Any] = [
    0,
    -1,
    2**15,
    2**40,
    2**64,  # past bigint: numeric
    2**256 - 1,  # the largest uint256
    decimal.Decimal("12345678901234567890.5"),
    "text with 'quotes' and %",
    "",
    b"\x00\xffbytes",
    None,
    True,
    False,
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:24] for v in VALUES])
@pytest.mark.parametrize(
    "statement",
    ["SELECT %(value)s", "SELECT %(value)s, %(value)s IS NULL"],
    ids=["value", "value-and-null-test"],
)
def test_a_value_comes_back_as_psycopg_gives_it_or_fails_as_it_does(
    driver: psycopg.Connection[Any], statement: str, value: Any
) -> None:
    wired = _outcome(lambda: wire_of(driver).execute(statement, {"value": value}).fetchall())
    driver.rollback()
    reference = _outcome(lambda: _reference(driver, statement, {"value": value}))
    driver.rollback()
    assert wired == reference


def _outcome(run: Callable[[], list[Any]]) -> tuple[Any, ...]:
    """The rows with the type of each value, or the class of the error raised."""
    try:
        rows = run()
    except psycopg.Error as failed:
        return ("error", type(failed))
    return ("rows", rows, [tuple(type(v) for v in row) for row in rows])


def test_written_rows_read_back_through_both_paths_alike(driver: psycopg.Connection[Any]) -> None:
    wire = wire_of(driver)
    insert = "INSERT INTO wired VALUES (%(id)s, %(amount)s, %(raw)s, %(flag)s)"
    written = wire.execute(insert, {"id": "a", "amount": 2**200, "raw": b"\x01\x02", "flag": True})
    assert written.rowcount == 1
    select = "SELECT id, amount, raw, flag FROM wired WHERE id = %s"
    assert wire.execute(select, ("a",)).fetchall() == _reference(driver, select, ("a",))
    assert wire.execute(select, ("a",)).fetchone() == ("a", 2**200, b"\x01\x02", True)
    assert wire.execute(select, ("missing",)).fetchone() is None
    updated = wire.execute("UPDATE wired SET flag = false WHERE id IN ('a', 'b')")
    assert updated.rowcount == 1
    assert wire.execute("SAVEPOINT s").rowcount == -1  # counts no rows
    driver.rollback()


def test_a_statement_on_an_idle_connection_opens_the_transaction_psycopg_would(
    driver: psycopg.Connection[Any],
) -> None:
    assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
    wire_of(driver).execute("INSERT INTO wired (id) VALUES ('in a transaction')")
    assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS
    driver.rollback()  # psycopg ends the transaction the wire began: nothing was kept
    assert _reference(driver, "SELECT count(*) FROM wired") == [(0,)]
    driver.rollback()


def test_the_isolation_level_asked_through_sqlalchemy_holds(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            shown = driver_of(conn).execute("SHOW transaction_isolation").fetchone()
    assert shown == ("repeatable read",)


def test_a_pipeline_sends_its_statements_in_one_round_trip_and_answers_after_it(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    wire.execute("SELECT 1").fetchall()  # the BEGIN: a transaction is open
    with wire.pipeline():
        first = wire.execute("SELECT %s::int", (1,))
        second = wire.execute("SELECT %s::int", (2,))
        assert wire.in_pipeline
    assert not wire.in_pipeline
    assert driver.pgconn.pipeline_status == pq.PipelineStatus.OFF
    assert (first.fetchall(), second.fetchall()) == ([(1,)], [(2,)])
    driver.rollback()


def test_an_answer_read_inside_its_pipeline_is_waited_for_there(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    with wire.pipeline():
        inside = wire.execute("SELECT %s::text", ("now",))
        assert inside.fetchone() == ("now",)  # synced: a round trip of its own
        after = wire.execute("SELECT 2")
    assert after.fetchone() == (2,)
    driver.rollback()


def test_the_first_error_of_a_pipeline_raises_at_its_end_and_stops_the_rest(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    wire.execute("INSERT INTO wired (id) VALUES ('taken')")
    with pytest.raises(errors.UniqueViolation), wire.pipeline():
        before = wire.execute("INSERT INTO wired (id) VALUES ('fresh')")
        wire.execute("INSERT INTO wired (id) VALUES ('taken')")
        behind = wire.execute("INSERT INTO wired (id) VALUES ('never')")
    assert before.rowcount == 1
    with pytest.raises(psycopg.OperationalError, match="earlier statement"):
        behind.fetchall()
    assert driver.pgconn.transaction_status == pq.TransactionStatus.INERROR
    driver.rollback()
    assert _reference(driver, "SELECT count(*) FROM wired") == [(0,)]  # nothing kept
    driver.rollback()


def test_an_error_is_the_one_sqlalchemy_maps_for_psycopg(engine: Engine) -> None:
    with engine.connect() as conn, conn.begin():
        conn.execute(text(_TABLE))
        conn.execute(text("INSERT INTO wired (id) VALUES ('x')"))
        with pytest.raises(IntegrityError):
            Sql("INSERT INTO wired (id) VALUES (:id)").run(conn, {"id": "x"})


def test_a_block_that_raises_leaves_the_connection_usable_and_its_own_error_wins(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)

    class Stop(Exception):
        pass

    with pytest.raises(Stop), wire.pipeline():
        wire.execute("SELECT 1/0")  # fails too: the block's own exception is reported
        raise Stop
    assert driver.pgconn.pipeline_status == pq.PipelineStatus.OFF
    driver.rollback()
    assert wire.execute("SELECT 3").fetchone() == (3,)
    driver.rollback()


def test_a_prepared_statement_outlives_a_rollback_and_a_savepoint_rollback(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    select = "SELECT count(*) FROM wired WHERE id = %(id)s"
    assert wire.execute(select, {"id": "a"}).fetchone() == (0,)
    prepared = _prepared_names(driver)
    assert prepared  # prepared at its first run
    driver.rollback()
    wire.execute("SAVEPOINT s")
    wire.execute(select, {"id": "a"}).fetchall()
    wire.execute("ROLLBACK TO SAVEPOINT s")
    driver.rollback()
    assert wire.execute(select, {"id": "a"}).fetchone() == (0,)
    assert _prepared_names(driver) == prepared  # the same statement, prepared once
    driver.rollback()


def test_a_statement_that_fails_to_prepare_is_not_taken_for_prepared(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    for _ in range(2):  # the same error both times, never "prepared statement does not exist"
        with pytest.raises(errors.UndefinedTable):
            wire.execute("SELECT * FROM no_such_table WHERE id = %s", ("a",))
        driver.rollback()


def test_a_statement_behind_an_error_is_prepared_again_next_time(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    with pytest.raises(errors.DivisionByZero), wire.pipeline():
        wire.execute("SELECT 1/0")
        wire.execute("SELECT %s::int + 1", (1,))  # its PREPARE is aborted with it
    driver.rollback()
    assert wire.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
    driver.rollback()


def test_named_and_positional_parameters_do_not_mix(driver: psycopg.Connection[Any]) -> None:
    with pytest.raises(ValueError, match="all named or all positional"):
        wire_of(driver).execute("SELECT %(a)s, %s", {"a": 1})


def test_a_connection_has_one_wire_and_a_new_connection_a_new_one(
    driver: psycopg.Connection[Any],
) -> None:
    wire = wire_of(driver)
    assert wire_of(driver) is wire
    assert isinstance(wire, Wire)
    other = psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"))
    try:
        assert wire_of(other) is not wire
    finally:
        other.close()


def test_the_store_engine_leaves_preparing_to_the_wire() -> None:
    """psycopg, were it to prepare statements itself, would answer a ROLLBACK with DEALLOCATE
    ALL, dropping the wire's prepared statements with its own."""
    db = Database(PG_URL)
    try:
        with db.engine.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        db.dispose()


def _prepared_names(driver: psycopg.Connection[Any]) -> list[str]:
    rows = _reference(driver, "SELECT name FROM pg_prepared_statements ORDER BY name")
    return [row[0] for row in rows if row[0].startswith("sessionward_")]


def test_a_bad_statement_is_a_programming_error_as_sqlalchemy_names_it(engine: Engine) -> None:
    with engine.connect() as conn, conn.begin(), pytest.raises(ProgrammingError):
        Sql("SELECT * FROM no_such_table WHERE id = :id").run(conn, {"id": "a"})


# --- properties: the wire and psycopg agree on any values and any pipeline of writes ------

_VALUE = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**256 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=6),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    st.binary(max_size=64),
    st.booleans(),
    st.none(),
)


@given(values=st.lists(_VALUE, min_size=1, max_size=6))
@settings(max_examples=150)
def test_any_values_come_back_from_the_wire_as_from_psycopg(
    pg_driver: psycopg.Connection[Any], values: list[Any]
) -> None:
    statement = "SELECT " + ", ".join(f"%(v{i})s::{_cast(v)}" for i, v in enumerate(values))
    params = {f"v{i}": v for i, v in enumerate(values)}
    wired = _outcome(lambda: wire_of(pg_driver).execute(statement, params).fetchall())
    pg_driver.rollback()
    reference = _outcome(lambda: _reference(pg_driver, statement, params))
    pg_driver.rollback()
    assert wired == reference


def _cast(value: Any) -> str:
    """A type for the placeholder, so that PostgreSQL need not guess one (as the store's
    statements give every parameter a column or a cast)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | decimal.Decimal):
        return "numeric"
    if isinstance(value, bytes):
        return "bytea"
    return "text"


_WRITE = st.tuples(st.sampled_from(["insert", "update", "delete"]), st.integers(0, 5))


@given(writes=st.lists(_WRITE, min_size=1, max_size=8), pipelined=st.booleans())
@settings(max_examples=150)
def test_any_writes_leave_the_same_rows_and_raise_the_same_error_as_psycopg(
    pg_driver: psycopg.Connection[Any], writes: list[tuple[str, int]], pipelined: bool
) -> None:
    """The same writes, in a pipeline or one by one, through the wire on one table and through
    psycopg's own pipeline on another: the same first error (or none), and the same rows once
    committed (none of them after an error: the transaction is rolled back)."""
    outcomes = []
    for table, through_wire in (("wired_a", True), ("wired_b", False)):
        pg_driver.execute(f"TRUNCATE {table}")
        pg_driver.commit()
        run = wire_of(pg_driver) if through_wire else pg_driver
        error: type[BaseException] | None = None
        try:
            with run.pipeline() if pipelined else contextlib.nullcontext():
                for kind, key in writes:
                    run.execute(_WRITES[kind].format(table=table), {"id": str(key)})
            pg_driver.commit()
        except psycopg.Error as failed:
            error = type(failed)
            pg_driver.rollback()
        rows = _reference(pg_driver, f"SELECT id, amount FROM {table} ORDER BY id")
        pg_driver.rollback()
        outcomes.append((error, rows))
    assert outcomes[0] == outcomes[1]


_WRITES = {
    "insert": "INSERT INTO {table} (id, amount) VALUES (%(id)s, 1)",
    "update": "UPDATE {table} SET amount = amount + 1 WHERE id = %(id)s",
    "delete": "DELETE FROM {table} WHERE id = %(id)s",
}


@pytest.fixture(scope="module")
def pg_driver() -> Iterator[psycopg.Connection[Any]]:
    """One connection for a property's examples, with the two tables it writes."""
    tables = [
        f"CREATE TEMP TABLE {table} (id text PRIMARY KEY, amount numeric)"
        for table in ("wired_a", "wired_b")
    ]
    with _connected(*tables) as conn:
        yield conn
