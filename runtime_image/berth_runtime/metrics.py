"""`/metrics`: queue depth and worker load, for autoscalers, dashboards and alerts.

The queue numbers come from Postgres (the same `pending` count a KEDA postgresql trigger
would use), so any replica reports the deployment-wide queue; worker numbers are this
process's own. Every name here is used by the chart's dashboard and PrometheusRule
(charts/berth/files), and a test compares them with what a real runtime serves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Seconds: from a queue hop of a few milliseconds to a run that waited ten minutes.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
)


class Histogram:
    """A process-local Prometheus histogram: cumulative bucket counts, sum and count."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * len(self.buckets)  # per bucket, not cumulative
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            total += n
            out.append((repr(float(bound)), float(total)))
        out.append(("+Inf", float(self.count)))
        return out


@dataclass
class WorkerStats:
    """What one process's worker counted since it started."""

    reaped: int = 0
    heartbeat_failures: int = 0
    wait: Histogram = field(default_factory=Histogram)
    first_event: Histogram = field(default_factory=Histogram)


@dataclass
class Snapshot:
    pending: int = 0
    running: int = 0
    oldest_pending_seconds: float = 0.0
    postgres_up: bool = True
    worker_slots: int = 0
    worker_active: int = 0
    finished: Mapping[str, int] = field(default_factory=dict)
    stats: WorkerStats | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "queue": {
                "n_pending": self.pending,
                "n_running": self.running,
                "oldest_pending_seconds": self.oldest_pending_seconds,
            },
            "postgres_up": self.postgres_up,
            "workers": {
                "slots": self.worker_slots,
                "active": self.worker_active,
                "available": max(0, self.worker_slots - self.worker_active),
            },
            "runs_finished": dict(self.finished),
        }


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.cumulative(), sum_value=h.sum)


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        yield GaugeMetricFamily(
            "berth_postgres_up",
            "1 when this process reached Postgres for this scrape, else 0",
            value=1 if s.postgres_up else 0,
        )
        if s.postgres_up:  # the queue numbers are unknown without Postgres: no stale zeros
            yield GaugeMetricFamily(
                "berth_runs_pending", "Runs waiting in the queue", value=s.pending
            )
            yield GaugeMetricFamily("berth_runs_running", "Runs being executed", value=s.running)
            yield GaugeMetricFamily(
                "berth_runs_oldest_pending_seconds",
                "How long the oldest due pending run has waited (0: none waits)",
                value=s.oldest_pending_seconds,
            )
        yield GaugeMetricFamily(
            "berth_worker_slots", "Concurrent runs this process may execute", value=s.worker_slots
        )
        yield GaugeMetricFamily(
            "berth_worker_active_runs", "Runs this process executes now", value=s.worker_active
        )
        finished = CounterMetricFamily(
            "berth_runs_finished", "Runs this process finished, by status", labels=["status"]
        )
        for status, n in sorted(s.finished.items()):
            finished.add_metric([status], n)
        yield finished
        st = s.stats or WorkerStats()
        yield CounterMetricFamily(
            "berth_runs_reaped",
            "Runs this process took back from a worker that died or stopped heartbeating",
            value=st.reaped,
        )
        yield CounterMetricFamily(
            "berth_run_heartbeat_failures",
            "Lease heartbeats of this process's runs that could not reach Postgres",
            value=st.heartbeat_failures,
        )
        yield _histogram(
            "berth_run_queue_wait_seconds",
            "From a run being due to a worker of this process claiming it",
            st.wait,
        )
        yield _histogram(
            "berth_run_first_event_seconds",
            "From a run being due to its graph's first stream event (runs of this process)",
            st.first_event,
        )


def render_prometheus(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap))
    return generate_latest(registry)
