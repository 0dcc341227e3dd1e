"""A Ray Tune ``Searcher`` that hands out a fixed list of trial configs in order (`confirm`).

Why not ``tune.grid_search``: the configs are whole architectures (nested dicts) that Tune's variant
generator would walk and try to resolve; a queue hands them over as they are, and its state (the
position) pickles with the experiment, so ``Tuner.restore`` continues where it stopped.
"""
from __future__ import annotations


from ray.tune.search import Searcher

from .pickled_state import PickledState


class QueueSearcher(PickledState, Searcher):
    def __init__(self, configs: list[dict]):
        super().__init__(metric="val/acc1", mode="max")
        self.configs = list(configs)
        self.next = 0

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return self.configs[self.next - 1]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

