"""The report context: what every section of a report is made from. The collected runs and their groups (runs that
differ only by seed), the endpoint the claims are judged on, the study's pre-registration and the author's notes,
whether to draw figures and where the files go, and the problems found on the way. A section is a function of this
one object that returns its :class:`.render.Section` or None (the list of them: :data:`.build.SECTIONS`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, TypeVar

import pandas as pd

from .collect import RunSet
from .endpoint import Endpoint, balance_warnings
from .prereg import PreRegistration

T = TypeVar("T")


@dataclass
class ReportContext:
    runset: RunSet
    groups: pd.DataFrame  # one row per group of runs that differ only by seed (:func:`.collect.group_runs`)
    point: Endpoint  # the pre-registration's endpoint, else best top-1
    roots: Sequence[Path | str]  # the folders searched for run records, as given
    out: Path  # the report folder, as given
    work: Path  # the staging folder the files are written into; it becomes ``out`` once the report is complete
    figures: bool = True
    notes: Path | str | None = None  # the author's reading of the results (a Markdown file) ...
    notes_text: List[str] = field(default_factory=list)  # ... as the report's paragraphs
    prereg: PreRegistration | None = None
    problems: List[str] = field(default_factory=list)  # records and files left out of the numbers, with the reason
    _made: Dict[Callable, Any] = field(default_factory=dict, repr=False)

    @property
    def runs(self) -> pd.DataFrame:
        """Every record found, one row each (status, whether it is in the numbers, its summary's figures)."""
        return self.runset.runs

    @cached_property
    def balance(self) -> List[str]:
        """The warnings of the endpoint's balance (:func:`.endpoint.balance_warnings`), one paragraph each."""
        return [f"**Warning, balance of the endpoint.** {w}" for w in balance_warnings(self.groups, self.point)]

    def once(self, make: Callable[[ReportContext], T]) -> T:
        """``make(self)``, worked out for the first section that asks and shared with the later ones."""
        if make not in self._made:
            self._made[make] = make(self)
        return self._made[make]
