"""Search dimensions: a fixed value, a choice (a YAML list) or a numeric range.

    mixer: sepconv                          # fixed
    mixer: [identity, pooling, sepconv]     # choice
    dim: {range: [32, 128], step: 32}       # int range (inclusive), optional step
    drop_path_rate: {range: [0.0, 0.2]}     # float range
    lr: {range: [1.0e-4, 1.0e-2], log: true}
    dim: {shared: width}                    # the choice named `width` in space.shared
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import random
from typing import Any

from ..errors import ConfigError
from ..schema import describe


@dataclasses.dataclass(frozen=True)
class Fixed:
    value: Any

    def sample(self, rng: random.Random) -> Any:
        return self.value

    def grid(self) -> list[Any]:
        return [self.value]


@dataclasses.dataclass(frozen=True)
class Choice:
    options: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def grid(self) -> list[Any]:
        return list(self.options)


@dataclasses.dataclass(frozen=True)
class Range:
    low: float
    high: float
    integer: bool
    log: bool = False
    step: float | None = None

    def sample(self, rng: random.Random) -> Any:
        if self.integer:
            step = int(self.step or 1)
            return rng.randrange(int(self.low), int(self.high) + 1, step)
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def grid(self) -> list[Any]:
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise ConfigError("search.algorithm", "grid search needs choices or int ranges, not float ranges")


@dataclasses.dataclass(frozen=True)
class Shared:
    name: str


Dimension = Fixed | Choice | Range | Shared


def parse_dimension(raw: Any, path: str, allow_shared: bool = True) -> Dimension:
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(path, "empty choice list; give at least one value")
        return Choice(tuple(raw)) if len(raw) > 1 else Fixed(raw[0])
    if isinstance(raw, dict) and "shared" in raw:
        if not allow_shared:
            raise ConfigError(path, "a shared choice cannot refer to another shared choice")
        if set(raw) != {"shared"} or not isinstance(raw["shared"], str):
            raise ConfigError(path, "expected {shared: <name of a choice in space.shared>}")
        return Shared(raw["shared"])
    if isinstance(raw, dict) and "range" in raw:
        unknown = set(raw) - {"range", "log", "step"}
        if unknown:
            raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unknown field; allowed: range, log, step")
        bounds = raw["range"]
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)):
            raise ConfigError(f"{path}.range", f"expected [low, high] numbers, got {describe(bounds)}")
        low, high = bounds
        if low > high:
            raise ConfigError(f"{path}.range", f"low {low} is above high {high}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{path}.log", "expected true or false")
        if log and low <= 0:
            raise ConfigError(f"{path}.range", "a log range needs low > 0")
        integer = isinstance(low, int) and isinstance(high, int)
        step = raw.get("step")
        if step is not None and (not isinstance(step, (int, float)) or step <= 0):
            raise ConfigError(f"{path}.step", "expected a positive number")
        return Range(low, high, integer, log, step)
    return Fixed(raw)


def grid_product(dims: dict[str, Dimension]) -> list[dict[str, Any]]:
    keys = list(dims)
    return [dict(zip(keys, values)) for values in itertools.product(*(dims[k].grid() for k in keys))]
