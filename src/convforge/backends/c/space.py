"""Config spaces: named knobs with finite choices, a validity rule, and a default.

Deliberately backend-neutral (AutoTVM's `ConfigSpace` in miniature) so the tuner can search any
generated stage: enumerate or sample valid points, and read a point back as a plain dict.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Knob:
    name: str
    choices: tuple[Any, ...]
    doc: str = ""

    def __post_init__(self):
        if not self.choices:
            raise ValueError(f"knob {self.name!r} has no choices")


@dataclass(frozen=True)
class Space:
    """The product of its knobs, filtered by `valid`."""

    name: str
    knobs: tuple[Knob, ...]
    valid: Callable[[dict], bool] = field(default=lambda config: True, compare=False)

    def __iter__(self) -> Iterator[dict]:
        names = [k.name for k in self.knobs]
        for values in itertools.product(*(k.choices for k in self.knobs)):
            config = dict(zip(names, values))
            if self.valid(config):
                yield config

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, config: dict) -> bool:
        knobs = {k.name: k for k in self.knobs}
        return (set(config) == set(knobs) and all(config[n] in knobs[n].choices for n in config)
                and self.valid(config))

    def check(self, config: dict) -> dict:
        if config not in self:
            raise ValueError(f"config {config} is not in space {self.name!r} "
                             f"({', '.join(f'{k.name} in {list(k.choices)}' for k in self.knobs)})")
        return dict(config)

    def sample(self, count: int, seed: int = 0) -> list[dict]:
        points = list(self)
        random.Random(seed).shuffle(points)
        return points[:count]

    def describe(self) -> str:
        return f"{self.name}: " + ", ".join(f"{k.name} in {list(k.choices)}" for k in self.knobs)
