"""`/metrics`: queue depth and worker load, for autoscalers and dashboards.

The queue numbers come from Postgres (the same `pending` count a KEDA postgresql trigger
would use), so any replica reports the deployment-wide queue; worker numbers are this
process's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class Snapshot:
    pending: int = 0
    running: int = 0
    worker_slots: int = 0
    worker_active: int = 0
    finished: Mapping[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "queue": {"n_pending": self.pending, "n_running": self.running},
            "workers": {
                "slots": self.worker_slots,
                "active": self.worker_active,
                "available": max(0, self.worker_slots - self.worker_active),
            },
            "runs_finished": dict(self.finished),
        }


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        yield GaugeMetricFamily("berth_runs_pending", "Runs waiting in the queue", value=s.pending)
        yield GaugeMetricFamily("berth_runs_running", "Runs being executed", value=s.running)
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


def render_prometheus(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap))
    return generate_latest(registry)
