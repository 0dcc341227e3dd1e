"""The live view of a sweep in the terminal (Ray's own table is turned off: too wide, too chatty)."""
from __future__ import annotations

import sys
import time

from ray.tune import Callback

from .. import metrics as M
from ..pareto import pareto_indices


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ConsoleProgress(Callback):
    """One status line every ``every`` seconds and on each finished trial."""

    def __init__(self, total: int, concurrency: int, full_epochs: int, every: float = 15.0, stream=None,
                 noun: str = "trials", search: bool = True):
        self.total, self.concurrency, self.full_epochs = total, max(1, concurrency), full_epochs
        self.noun, self.search = noun, search   # `confirm`: "trainings", no scheduler and no front
        self.every = every
        self.stream = stream or sys.stdout
        self.start = time.monotonic()
        self.last = 0.0
        self.durations: list[float] = []
        self.started: dict[str, float] = {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "stream"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout
        self.start = time.monotonic()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.started[trial.trial_id] = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finished(trial)
        self.print_status(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finished(trial)
        self.print_status(trials)

    def _finished(self, trial) -> None:
        began = self.started.pop(trial.trial_id, None)
        if began is not None:
            self.durations.append(time.monotonic() - began)

    def on_step_end(self, iteration, trials, **info) -> None:
        if time.monotonic() - self.last >= self.every:
            self.print_status(trials)

    def print_status(self, trials) -> None:
        self.last = time.monotonic()
        counts = {"done": 0, "running": 0, "failed": 0, "stopped": 0}
        points, best = [], None
        for t in trials:
            result = t.last_result or {}
            epochs = int(result.get(M.EPOCHS_REACHED, 0))
            if t.status == "RUNNING":
                counts["running"] += 1
            elif t.status == "ERROR":
                counts["failed"] += 1
            elif t.status == "TERMINATED":
                counts["done" if epochs >= self.full_epochs else "stopped"] += 1
                if epochs >= self.full_epochs and M.VAL_ACC1 in result:
                    points.append((result[M.VAL_ACC1], result[M.COST_MACS]))
                    if best is None or result[M.VAL_ACC1] > best[0]:
                        best = (result[M.VAL_ACC1], t.config["candidate"]["family"])
        finished = counts["done"] + counts["failed"] + counts["stopped"]
        elapsed = time.monotonic() - self.start
        remaining = self.total - finished
        eta = ""
        if self.durations and remaining > 0:
            eta = f" | ETA {_fmt_time(sum(self.durations) / len(self.durations) * remaining / self.concurrency)}"
        front = len(pareto_indices(points, [True, False])) if points else 0
        best_text = f"best val/acc1 {best[0]:.1f} ({best[1]})" if best else "best val/acc1 -"
        stopped = f", {counts['stopped']} stopped early" if self.search else ""
        tail = f"{best_text} | Pareto {front}" if self.search else best_text
        print(f"[{_fmt_time(elapsed)}] {self.noun} {finished}/{self.total}: {counts['done']} done, "
              f"{counts['running']} running, {counts['failed']} failed{stopped} | {tail}{eta}",
              file=self.stream, flush=True)
