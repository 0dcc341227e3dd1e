"""Ray Tune ``Searcher`` that runs the baselines first, then proposed candidates that pass the
constraints; candidates that fail them are never trained, only counted (with the reason)."""
from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from .. import metrics as M
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
            keys = [M.during_sweep(o.metric) for o in self.spec.objectives]
            values = [float(result[k]) if k in result else float("nan") for k in keys]
        self.proposer.tell(token, values)

    def stats(self) -> dict:
        return {"searched": self.searched, "rejected": self.rejected,
                "rejection_reasons": dict(self.rejection_reasons), "exhausted": self.exhausted}

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Tune's (public) save hook, at every experiment checkpoint and at the end: also write the
        statistics as JSON (``STATS_FILE``), which the driver reads after ``fit`` instead of
        reaching into the Tuner for the live searcher (a restored Tuner holds its own copy)."""
        super().save_to_dir(checkpoint_dir, session_str)
        (Path(checkpoint_dir) / STATS_FILE).write_text(json.dumps(self.stats(), indent=1))


STATS_FILE = "searcher_stats.json"


def read_stats(experiment_path: str | Path) -> dict:
    """What ``CandidateSearcher.save_to_dir`` last wrote (zeros when it never saved)."""
    path = Path(experiment_path) / STATS_FILE
    if path.is_file():
        return json.loads(path.read_text())
    return {"searched": 0, "rejected": 0, "rejection_reasons": {}, "exhausted": False}


