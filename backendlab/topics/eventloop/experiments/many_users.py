"""Experiments 3a and 3b side by side: the concurrency limit's refusals and the job queue's 202s,
each request a bar in its user's lane."""

from __future__ import annotations

from dataclasses import dataclass

from backendlab import plots
from backendlab.topics.eventloop.experiments.concurrency_limit import LimitResult
from backendlab.topics.eventloop.experiments.job_queue import QueueResult

OUTCOME_COLORS = {"200 OK": plots.PALETTE[1], "202 accepted": plots.PALETTE[3],
                  "queued, then parsed (client polls)": plots.PALETTE[2],
                  "503 + Retry-After": plots.PALETTE[0]}


@dataclass
class ManyUsers:
    """Both ways of serving many users at once, to be drawn as one figure."""

    limited: LimitResult
    queued: QueueResult

    def plot(self):
        """One panel per way: each user's requests over time, coloured by outcome."""
        return plots.request_timeline(
            {f"{self.limited.users} users, at most {self.limited.limit} uploads at a time":
                 self.limited.timeline(),
             f"{len(self.queued.jobs)} users, 202 + job id, then polling": self.queued.timeline()},
            colors=OUTCOME_COLORS,
            title=f"Many users at once: the limit refuses {len(self.limited.refused)} uploads with 503 + "
                  f"Retry-After,\nthe queue accepts all {len(self.queued.jobs)} with 202 within "
                  f"{max(self.queued.accept_seconds, default=0):.1f} s")
