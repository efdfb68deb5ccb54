"""The anomaly rules' windowed counters: exact sliding-window counts kept in one row per key,
whose cost is bounded by the window, not by the number of events counted (issue 16)."""

from __future__ import annotations

import threading

from sessionward.store import Store
from sessionward.store.anomaly_counters import AnomalyCounters, count_recent


def test_a_count_covers_the_events_at_or_after_the_window_start(store: Store) -> None:
    counters = AnomalyCounters(store.db)
    assert [counters.hit("deny:s1", at=1_000 + i, window_s=60) for i in range(3)] == [1, 2, 3]
    assert counters.hit("deny:s1", at=1_062, window_s=60) == 2  # 1002 and 1062: 1000, 1001 left
    assert counters.hit("deny:s1", at=1_062, window_s=60) == 3
    assert counters.hit("deny:s2", at=1_062, window_s=60) == 1  # keys are counted apart


def test_events_reported_out_of_order_are_counted_in_their_own_second(store: Store) -> None:
    counters = AnomalyCounters(store.db)
    counters.hit("k", at=2_000, window_s=10)
    counters.hit("k", at=1_995, window_s=10)  # another node's clock, a little behind
    assert counters.hit("k", at=2_006, window_s=10) == 2  # 1995 is out of the window now


def test_a_row_holds_one_pair_per_second_of_the_window_however_many_events() -> None:
    recent, count = "", 0
    for i in range(10_000):
        recent, count = count_recent(recent, at=5_000 + i // 1_000, window_s=60)
    assert count == 10_000
    assert recent == ",".join(f"{5_009 - s}:1000" for s in range(10))
    recent, count = count_recent(recent, at=5_066, window_s=60)
    assert (recent, count) == ("5066:1,5009:1000,5008:1000,5007:1000,5006:1000", 4_001)


def test_concurrent_hits_of_one_key_are_all_counted(store: Store) -> None:
    counters = AnomalyCounters(store.db)
    errors: list[BaseException] = []

    def hit_many() -> None:
        try:
            for _ in range(25):
                counters.hit("post_revocation:c1", at=7_000, window_s=600)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hit_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counters.hit("post_revocation:c1", at=7_000, window_s=600) == 101
