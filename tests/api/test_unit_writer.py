"""The unit writer: one thread runs queued units in batches and answers each caller after its
batch's run returned (with a database, after the batch's commit)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from sessionward.api.unit_writer import UnitWriter, run_each


class Recorder:
    """A ``run_units`` that runs each unit and records the batches; ``hold`` keeps the first
    batch running until released, so that later units queue behind it."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, units: Sequence[Callable[[], str]]) -> list[str | Exception]:
        self.batches.append(len(units))
        self.started.set()
        assert self.release.wait(timeout=30)
        return run_each(units)


def _value(value: str) -> Callable[[], str]:
    return lambda: value


def _raise(message: str) -> Callable[[], str]:
    def unit() -> str:
        raise LookupError(message)

    return unit


async def _running(
    writer: UnitWriter[str], recorder: Recorder, unit: Callable[[], str]
) -> asyncio.Future[str]:
    """Hand ``unit`` to the writer and return once the writer runs it (held by ``recorder``)."""
    running = asyncio.ensure_future(writer.run(unit))
    while not recorder.started.is_set():
        await asyncio.sleep(0.001)
    return running


async def _first_then_queued(
    writer: UnitWriter[str], recorder: Recorder, later: Sequence[Callable[[], str]]
) -> list[str]:
    """Run one unit, queue ``later`` while it runs, then let everything finish."""
    first = await _running(writer, recorder, _value("first"))
    rest = [asyncio.ensure_future(writer.run(unit)) for unit in later]
    await asyncio.sleep(0.01)  # every later unit is queued behind the running batch
    recorder.release.set()
    return list(await asyncio.gather(first, *rest))


def test_each_caller_gets_its_own_outcome() -> None:
    writer: UnitWriter[str] = UnitWriter(Recorder())

    async def scenario() -> None:
        assert await writer.run(_value("a")) == "a"
        with pytest.raises(LookupError, match="refused"):
            await writer.run(_raise("refused"))
        assert await writer.run(_value("b")) == "b"

    asyncio.run(scenario())
    writer.close()


def test_units_queued_while_a_batch_runs_form_the_next_batch() -> None:
    recorder = Recorder(hold=True)
    writer: UnitWriter[str] = UnitWriter(recorder)
    later = [_value(str(i)) for i in range(5)]
    answers = asyncio.run(_first_then_queued(writer, recorder, later))
    writer.close()
    assert answers == ["first", "0", "1", "2", "3", "4"]
    assert recorder.batches == [1, 5]


def test_a_batch_holds_at_most_max_batch_units() -> None:
    recorder = Recorder(hold=True)
    writer: UnitWriter[str] = UnitWriter(recorder, max_batch=2)
    later = [_value(str(i)) for i in range(5)]
    answers = asyncio.run(_first_then_queued(writer, recorder, later))
    writer.close()
    assert answers == ["first", "0", "1", "2", "3", "4"]
    assert recorder.batches == [1, 2, 2, 1]


def test_a_failing_unit_fails_only_its_caller() -> None:
    recorder = Recorder(hold=True)
    writer: UnitWriter[str] = UnitWriter(recorder)

    async def scenario() -> list[object]:
        first = await _running(writer, recorder, _value("first"))
        rest = [
            asyncio.ensure_future(writer.run(unit))
            for unit in (_value("a"), _raise("b"), _value("c"))
        ]
        await asyncio.sleep(0.01)
        recorder.release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    answers = asyncio.run(scenario())
    writer.close()
    assert answers[:2] == ["first", "a"] and answers[3] == "c"
    assert isinstance(answers[2], LookupError)
    assert recorder.batches == [1, 3]


def test_an_interrupted_batch_answers_every_caller_and_the_writer_goes_on() -> None:
    calls: list[int] = []

    def run_units(units: Sequence[Callable[[], str]]) -> list[str | Exception]:
        calls.append(len(units))
        if len(calls) == 1:
            raise KeyboardInterrupt
        return [unit() for unit in units]

    writer: UnitWriter[str] = UnitWriter(run_units)

    async def scenario() -> str:
        with pytest.raises(RuntimeError, match="interrupted"):
            await writer.run(_value("lost"))
        return await writer.run(_value("next"))

    assert asyncio.run(scenario()) == "next"
    writer.close()


def test_callers_on_different_event_loops_share_one_writer() -> None:
    writer: UnitWriter[str] = UnitWriter(Recorder())
    answers: dict[str, str] = {}

    def caller(name: str) -> None:
        answers[name] = asyncio.run(writer.run(_value(name)))

    threads = [threading.Thread(target=caller, args=(f"loop-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    writer.close()
    assert answers == {f"loop-{i}": f"loop-{i}" for i in range(4)}


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    recorder = Recorder(hold=True)
    writer: UnitWriter[str] = UnitWriter(recorder)
    ran: list[str] = []

    def remembered(value: str) -> Callable[[], str]:
        def unit() -> str:
            ran.append(value)
            return value

        return unit

    async def scenario() -> str:
        first = await _running(writer, recorder, remembered("first"))
        first.cancel()
        second = asyncio.ensure_future(writer.run(remembered("second")))
        await asyncio.sleep(0.01)
        recorder.release.set()
        return await second

    assert asyncio.run(scenario()) == "second"
    writer.close()
    assert ran == ["first", "second"]  # the cancelled unit still ran: only its answer is dropped


def test_close_runs_what_is_queued_then_refuses_new_units() -> None:
    recorder = Recorder(hold=True)
    writer: UnitWriter[str] = UnitWriter(recorder)

    async def scenario() -> list[str]:
        first = await _running(writer, recorder, _value("first"))
        queued = asyncio.ensure_future(writer.run(_value("queued")))
        await asyncio.sleep(0.01)
        closing = threading.Thread(target=writer.close)
        closing.start()
        recorder.release.set()
        answers = list(await asyncio.gather(first, queued))
        closing.join(timeout=30)
        with pytest.raises(RuntimeError, match="closed"):
            await writer.run(_value("late"))
        return answers

    assert asyncio.run(scenario()) == ["first", "queued"]


def test_run_each_collects_what_every_unit_returned_or_raised() -> None:
    outcomes = run_each([_value("a"), _raise("b"), _value("c")])
    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], LookupError)


def test_a_batch_needs_room_for_one_unit() -> None:
    with pytest.raises(ValueError, match="at least one"):
        UnitWriter(Recorder(), max_batch=0)
