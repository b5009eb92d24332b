"""What every recipe is run with: where to write, which data, and the knobs tests turn down."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.mnist import data
from training.paths import EXPORTED, ROOT

RUNS = ROOT / "runs" / "mnist"


@dataclass
class Context:
    out: Path = RUNS  # recipes write to out/<recipe>/
    seed: int = 0
    epochs: int | None = None  # override every recipe's epoch count (tests)
    limit: int | None = None  # use only the first N train and test images (tests)
    allow_synthetic: bool = False  # fall back to synthetic digits when ../shared is absent (tests)
    ship_dir: Path | None = EXPORTED  # shipped models go here with manifest entries; None = ship nothing
    threads: int = 1
    classes: tuple[int, ...] = tuple(range(10))  # one-class recipe: which classes (tests use fewer)
    _cache: dict[str, data.Dataset] = field(default_factory=dict, repr=False)

    def data(self, name: str = "mnist") -> data.Dataset:
        if name not in self._cache:
            ds = data.get(name, allow_synthetic=self.allow_synthetic)
            self._cache[name] = data.Dataset(ds.name, ds.train.head(self.limit), ds.test.head(self.limit), ds.synthetic)
        return self._cache[name]

    def n_epochs(self, default: int) -> int:
        return self.epochs if self.epochs is not None else default

    def folder(self, recipe: str) -> Path:
        path = self.out / recipe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def command(self, recipe: str) -> str:
        """The command that reproduces this run (what the report and the manifest cite)."""
        extra = ""
        if self.epochs is not None:
            extra += f" --epochs {self.epochs}"
        if self.limit is not None:
            extra += f" --limit {self.limit}"
        if self.seed:
            extra += f" --seed {self.seed}"
        if recipe == "oneclass" and tuple(self.classes) != tuple(range(10)):
            extra += " --classes " + " ".join(str(c) for c in self.classes)
        return f"python -m training.mnist {recipe}{extra}"

    def write_metrics(self, recipe: str, metrics: dict[str, Any]) -> Path:
        path = self.folder(recipe) / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
        return path
