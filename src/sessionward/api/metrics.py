"""Live metrics in the Prometheus text format, one registry per app (so several apps in one
process, as in tests, never share counters).

Series:

- ``sessionward_requests_total{method, status}``: every HTTP request, by API method (or the
  endpoint, ``unknown`` for anything else) and status;
- ``sessionward_decisions_total{verdict, reason}``: policy decisions answered by Prepare* and
  Execute; ``reason`` is the first reason code (``none`` for allow);
- ``sessionward_decision_reasons_total{reason}``: every reason code of every denial;
- ``sessionward_execute_latency_seconds``: Execute requests, authentication included;
- ``sessionward_revocations_total{path}`` and ``sessionward_revoked_sessions_total{path}``:
  revocation calls that succeeded and the sessions they revoked, by path (``owner``,
  ``backend``, ``ops``);
- ``sessionward_chain_disagreements_total`` and ``sessionward_chain_disagreements_open``:
  sessions the reconciler found the chain contradicting (each raised an alert) and those not
  agreeing yet; ``sessionward_reconciler_repairs_total``, ``sessionward_reconciler_checks_total``
  and ``sessionward_reconciler_chain_errors_total`` (read from the node's reconciler at scrape
  time; a node that does not relay reports zeros).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """The app's counters and histograms over its own registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "sessionward_requests",
            "HTTP requests by API method and status",
            ["method", "status"],
            registry=self.registry,
        )
        self._decisions = Counter(
            "sessionward_decisions",
            "Policy decisions by verdict and first reason code",
            ["verdict", "reason"],
            registry=self.registry,
        )
        self._reasons = Counter(
            "sessionward_decision_reasons",
            "Reason codes of denied decisions (every code of every denial)",
            ["reason"],
            registry=self.registry,
        )
        self._execute = Histogram(
            "sessionward_execute_latency_seconds",
            "Execute request latency, authentication included",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._revocations = Counter(
            "sessionward_revocations",
            "Successful revocation calls by path",
            ["path"],
            registry=self.registry,
        )
        self._revoked_sessions = Counter(
            "sessionward_revoked_sessions",
            "Sessions revoked by revocation calls, by path",
            ["path"],
            registry=self.registry,
        )

    def request(self, method: str, status: int) -> None:
        self._requests.labels(method=method, status=str(status)).inc()

    def allowed(self) -> None:
        self._decisions.labels(verdict="allow", reason="none").inc()

    def denied(self, reasons: Sequence[str]) -> None:
        self._decisions.labels(verdict="deny", reason=reasons[0] if reasons else "none").inc()
        for reason in dict.fromkeys(reasons):
            self._reasons.labels(reason=reason).inc()

    def execute_latency(self, seconds: float) -> None:
        self._execute.observe(seconds)

    def revoked(self, path: str, sessions: int) -> None:
        self._revocations.labels(path=path).inc()
        self._revoked_sessions.labels(path=path).inc(sessions)

    def watch_reconciler(self, snapshot: Callable[[], Mapping[str, float]]) -> None:
        """Expose the reconciler's counts (``snapshot()`` is read at every scrape)."""
        self.registry.register(_ReconcilerCollector(snapshot))

    def render(self) -> bytes:
        return generate_latest(self.registry)


_RECONCILER_SERIES: Final[
    tuple[tuple[str, str, str, type[CounterMetricFamily | GaugeMetricFamily]], ...]
] = (
    # (series, help, the reconciler's count it reads, kind)
    (
        "sessionward_chain_disagreements",
        "Sessions the reconciler found the chain contradicting (each raised an alert)",
        "disagreements",
        CounterMetricFamily,
    ),
    (
        "sessionward_chain_disagreements_open",
        "Disagreements between the database and the chain not resolved yet",
        "open_disagreements",
        GaugeMetricFamily,
    ),
    (
        "sessionward_reconciler_repairs",
        "Repairs the reconciler made (removal queued again, session revoked from the chain)",
        "repairs",
        CounterMetricFamily,
    ),
    (
        "sessionward_reconciler_checks",
        "Sessions compared with the chain",
        "checked",
        CounterMetricFamily,
    ),
    (
        "sessionward_reconciler_chain_errors",
        "Comparisons the chain node could not answer (left for the next round)",
        "chain_errors",
        CounterMetricFamily,
    ),
)


class _ReconcilerCollector(Collector):
    """The reconciler's counts as Prometheus series, read when scraped."""

    def __init__(self, snapshot: Callable[[], Mapping[str, float]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        counts = self._snapshot()
        for series, help_text, count, kind in _RECONCILER_SERIES:
            yield kind(series, help_text, value=counts.get(count, 0))
