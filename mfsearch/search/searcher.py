"""Ray Tune ``Searcher`` that runs the baselines first, then proposed candidates that pass the
constraints; candidates that fail them are never trained, only counted (with the reason)."""
from __future__ import annotations

import collections
import dataclasses
from typing import Any

from ray.tune.search import Searcher

from .candidates import SEARCHED, Candidate, build_arch, check_candidate
from .pickled_state import PickledState
from .proposers import make_proposer
from .space import SearchSpec


class CandidateSearcher(PickledState, Searcher):
    def __init__(self, spec: SearchSpec, baselines: list[Candidate], num_classes: int, img_size: int):
        first = spec.objectives[0]
        super().__init__(metric=first.metric, mode=first.mode)
        self.spec = spec
        self.num_classes, self.img_size = num_classes, img_size
        self.proposer = make_proposer(spec.space, spec.search.algorithm, spec.search.seed, spec.objectives)
        self.queue = list(baselines)
        self.searched = 0
        self.rejected = 0
        self.rejection_reasons: collections.Counter = collections.Counter()
        self.exhausted = False
        self.live: dict[str, Any] = {}

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.queue:
            return {"candidate": dataclasses.asdict(self.queue.pop(0))}
        if self.searched >= self.spec.search.num_samples or self.exhausted:
            return Searcher.FINISHED
        for _ in range(self.spec.search.max_rejections):
            proposal = self.proposer.ask()
            if proposal is None:  # a grid ran out
                self.exhausted = True
                return Searcher.FINISHED
            token, params = proposal
            arch = build_arch(self.spec.space, params, self.num_classes, self.img_size)
            why = check_candidate(self.spec, arch)
            if why is not None:
                self.rejected += 1
                words = why.split()  # "MACs 123 > max 100" -> "MACs > max"
                self.rejection_reasons["invalid" if why.startswith("invalid") else " ".join(words[:1] + words[2:4])] += 1
                self.proposer.tell(token, None)
                continue
            self.searched += 1
            self.live[trial_id] = token
            return {"candidate": dataclasses.asdict(Candidate(SEARCHED, arch, params))}
        self.exhausted = True  # gave up: constraints too tight for this searcher to find more
        return Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        token = self.live.pop(trial_id, None)
        values = None
        if result and not error:
            values = [float(result[o.metric]) if o.metric in result else float("nan") for o in self.spec.objectives]
        self.proposer.tell(token, values)

    def stats(self) -> dict:
        return {"searched": self.searched, "rejected": self.rejected,
                "rejection_reasons": dict(self.rejection_reasons), "exhausted": self.exhausted}


