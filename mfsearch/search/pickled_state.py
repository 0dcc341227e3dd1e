"""How our Tune searchers and schedulers checkpoint: their whole state, which is plain Python.

Tune calls ``save`` with every experiment checkpoint and ``restore`` on ``Tuner.restore``; the file
lives in the sweep's own storage folder, written by the sweep (the Optuna study inside a proposer
is plain Python too, so one pickle holds it all).
"""
from __future__ import annotations

import pickle


class PickledState:
    """Mixin (put it first among the bases): ``save``/``restore`` of the object's ``__dict__``."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
