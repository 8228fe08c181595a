"""A study's pre-registration: a Markdown file whose YAML front matter fixes, before the main runs, what will be
tested and how; the body (hypotheses, power analysis, budget, stopping rule) is shown in the report as written.

    ---
    endpoint: final_top1        # or last_mean:4 = mean test top-1 of the last 4 evaluations, or final_window:4 =
                                # the mean over every commit of the last 4 epochs (neutral: every worker's merges)
    alpha: 0.05
    correction: holm            # or bonferroni (or none), over the primary contrasts
    seeds: 10
    experiment: cpu_fashion_mnist   # optional: the preset (run name) the contrasts refer to
    effect_pp: 2.0              # optional: the effect the power analysis was made for
    primary:
      - {scheme: dbsl, num_small: 2, test: superiority}
      - {scheme: cpl, num_small: 0, test: noninferiority, margin_pp: 1.0}
    secondary: [{scheme: dbsl, num_small: 1}]    # optional, not corrected, reported as exploratory
    deviations:                  # optional: deviations from the paper's protocol, decided in advance
      - {aspect: epochs, paper: 140, here: 30, why: the CPU budget}
    ---

A study of several arms, each against its own baseline, lists them instead of one set of contrasts; the endpoint,
alpha and correction are shared, the correction applies within each arm (each arm asks its own question)::

    arms:
      - {name: A, experiment: robust_a, seeds: 3, primary: [...], secondary: [...]}
      - {name: B, experiment: robust_b, seeds: 5, primary: [...]}
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import yaml

from .collect import ReportError

ENDPOINTS = ("final_top1", "last_mean:<m>", "final_window:<E>")
ENDPOINT_PATTERN = r"final_top1|last_mean:[1-9]\d*|final_window:[1-9]\d*"
TESTS = ("superiority", "noninferiority")
CORRECTIONS = ("holm", "bonferroni", "none")
SCHEMES = ("dbsl", "cpl", "hybrid")
KEYS = {"endpoint", "alpha", "correction", "seeds", "primary", "secondary", "deviations", "experiment", "effect_pp",
        "arms"}
ARM_KEYS = {"name", "experiment", "seeds", "primary", "secondary", "effect_pp"}
CONTRAST_KEYS = {"scheme", "num_small", "test", "margin_pp"}
DEVIATION_KEYS = {"aspect", "paper", "here", "why"}


@dataclass(frozen=True)
class Contrast:
    """One pre-registered comparison against the baseline of the same settings."""

    scheme: str
    num_small: int
    test: str = "superiority"
    margin_pp: float | None = None  # non-inferiority margin (percentage points)
    primary: bool = True

    @property
    def label(self) -> str:
        return f"{self.scheme} n_S={self.num_small}"


@dataclass
class PreRegistration:
    path: Path
    endpoint: str
    alpha: float
    correction: str
    seeds: int
    primary: List[Contrast]
    secondary: List[Contrast] = field(default_factory=list)
    deviations: List[dict] = field(default_factory=list)
    experiment: str | None = None
    effect_pp: float | None = None
    body: str = ""
    arm: str | None = None  # the arm's name, in a study of several arms
    arms: List["PreRegistration"] = field(default_factory=list)  # a study of several arms: one plan each

    @property
    def endpoint_text(self) -> str:
        if self.endpoint == "final_top1":
            return "final test top-1 (the last commit's evaluation)"
        kind, m = self.endpoint.split(":")
        return (f"mean test top-1 of the last {m} evaluations" if kind == "last_mean" else
                f"mean test top-1 over every commit of the last {m} epochs")

    @property
    def contrasts(self) -> List[Contrast]:
        return self.primary + self.secondary


def _fail(path, field_name: str, problem: str, fix: str) -> ReportError:
    return ReportError(f"--prereg {path}: {field_name} {problem}; {fix}")


def split_front_matter(text: str) -> tuple[str, str] | None:
    """(YAML front matter, body) of a Markdown file that starts with a ``---`` line; None without one."""
    found = re.match(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?(.*)\Z", text, re.S | re.M)
    return (found.group(1), found.group(2)) if found else None


def _contrast(path, where: str, item, primary: bool) -> Contrast:
    if not isinstance(item, dict):
        raise _fail(path, where, "is not a mapping", "write it as {scheme: dbsl, num_small: 2, test: superiority}")
    unknown = sorted(set(item) - CONTRAST_KEYS)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", "is not a contrast key",
                    f"use only {', '.join(sorted(CONTRAST_KEYS))}")
    scheme = item.get("scheme")
    if scheme not in SCHEMES:
        raise _fail(path, f"{where}.scheme", f"is {scheme!r}", f"use one of {', '.join(SCHEMES)} (each is compared "
                    "with the baseline of the same settings)")
    n_small = item.get("num_small")
    if isinstance(n_small, bool) or not isinstance(n_small, int) or n_small < 0:
        raise _fail(path, f"{where}.num_small", f"is {n_small!r}", "give the number of small-batch workers (0 for "
                    "cpl)")
    test = item.get("test", "superiority")
    if test not in TESTS:
        raise _fail(path, f"{where}.test", f"is {test!r}", f"use {' or '.join(TESTS)}")
    margin = item.get("margin_pp")
    if test == "noninferiority":
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
            raise _fail(path, f"{where}.margin_pp", f"is {margin!r}", "a non-inferiority test needs a margin in "
                        "percentage points > 0, e.g. margin_pp: 1.0")
        margin = float(margin)
    elif margin is not None:
        raise _fail(path, f"{where}.margin_pp", "is set for a superiority test", "drop it or set test: "
                    "noninferiority")
    return Contrast(scheme, n_small, test, margin, primary)


def _front_matter(path: Path | str) -> tuple[dict, str]:
    """(the front matter's fields, the body) of a pre-registration file; ReportError when it has none to read."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"--prereg {path}: cannot read it ({type(err).__name__}); pass the study's "
                          "pre-registration (sweeps/<study>.md) or leave --prereg out") from err
    parts = split_front_matter(text)
    if parts is None:
        raise ReportError(f"--prereg {path}: no YAML front matter; start the file with a line '---', the "
                          "pre-registered fields (endpoint, alpha, correction, seeds, primary), and another '---'")
    try:
        meta = yaml.safe_load(parts[0]) or {}
    except yaml.YAMLError as err:
        raise ReportError(f"--prereg {path}: the front matter is not valid YAML ({str(err).splitlines()[0]})") \
            from err
    if not isinstance(meta, dict):
        raise ReportError(f"--prereg {path}: the front matter is not a mapping of fields")
    return meta, parts[1]


def read_prereg(path: Path | str) -> PreRegistration:
    """Reads and checks a pre-registration; every problem is one ReportError line naming the field and the fix."""
    meta, body = _front_matter(path)
    unknown = sorted(set(meta) - KEYS)
    if unknown:
        raise _fail(path, unknown[0], "is not a pre-registration field", f"use only {', '.join(sorted(KEYS))}")
    endpoint = meta.get("endpoint")
    if not (isinstance(endpoint, str) and re.fullmatch(ENDPOINT_PATTERN, endpoint)):
        hint = " (best-of is not an endpoint: it selects on the test set)" if "best" in str(endpoint) else ""
        raise _fail(path, "endpoint", f"is {endpoint!r}{hint}", "use final_top1, last_mean:m (the mean test top-1 "
                    "of the last m evaluations) or final_window:E (the mean over every commit of the last E epochs)")
    alpha = meta.get("alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise _fail(path, "alpha", f"is {alpha!r}", "give the significance level, e.g. alpha: 0.05")
    correction = meta.get("correction")
    if correction not in CORRECTIONS:
        raise _fail(path, "correction", f"is {correction!r}", f"use {', '.join(CORRECTIONS)}")
    deviations = meta.get("deviations") or []
    if not isinstance(deviations, list):
        raise _fail(path, "deviations", "is not a list", "list them as {aspect: ..., paper: ..., here: ..., why: ...}")
    for i, item in enumerate(deviations):
        if not isinstance(item, dict) or "aspect" not in item or set(item) - DEVIATION_KEYS:
            raise _fail(path, f"deviations[{i}]", "is not a mapping with aspect (and paper, here, why)",
                        "write it as {aspect: epochs, paper: 140, here: 30, why: the CPU budget}")
    shared = dict(path=Path(path), endpoint=endpoint, alpha=float(alpha), correction=correction,
                  deviations=deviations, body=body.strip())
    if meta.get("arms") is None:
        return PreRegistration(**shared, **_plan(path, meta, ""))
    return _arms(path, meta, shared)


def _arms(path, meta: dict, shared: dict) -> PreRegistration:
    """A study of several arms: one plan per arm (its own experiment, seeds and contrasts), the rest shared."""
    arms = meta["arms"]
    if not isinstance(arms, list) or not arms:
        raise _fail(path, "arms", "is not a non-empty list", "list the arms as {name: A, experiment: <preset name>, "
                    "seeds: 5, primary: [...]}")
    clash = sorted((KEYS - {"endpoint", "alpha", "correction", "deviations", "arms"}) & set(meta))
    if clash:
        raise _fail(path, clash[0], "is set beside arms", "give it inside each arm")
    plans = []
    for i, arm in enumerate(arms):
        where = f"arms[{i}]"
        if not isinstance(arm, dict) or set(arm) - ARM_KEYS or not isinstance(arm.get("name"), str) \
                or not isinstance(arm.get("experiment"), str):
            raise _fail(path, where, "is not a mapping with name, experiment, seeds and primary",
                        f"use only {', '.join(sorted(ARM_KEYS))}, e.g. {{name: A, experiment: robust_a, seeds: 3, "
                        "primary: [{scheme: dbsl, num_small: 2, test: superiority}]}")
        plans.append(PreRegistration(**shared, **_plan(path, arm, where + "."), arm=arm["name"]))
    if len({p.arm for p in plans}) < len(plans) or len({p.experiment for p in plans}) < len(plans):
        raise _fail(path, "arms", "repeat a name or an experiment", "give every arm its own name and preset")
    return PreRegistration(**shared, seeds=max(p.seeds for p in plans), primary=[c for p in plans for c in p.primary],
                           arms=plans)


def _plan(path, meta: dict, where: str) -> dict:
    """The fields of one plan (a study's, or one arm's): seeds, contrasts, experiment, planned effect."""
    seeds = meta.get("seeds")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise _fail(path, f"{where}seeds", f"is {seeds!r}", "give the planned number of seeds per configuration (>= 2)")
    primary = meta.get("primary")
    if not isinstance(primary, list) or not primary:
        raise _fail(path, f"{where}primary", "is missing or empty", "list the primary contrasts, e.g. "
                    "[{scheme: dbsl, num_small: 2, test: superiority}]")
    secondary = meta.get("secondary") or []
    if not isinstance(secondary, list):
        raise _fail(path, f"{where}secondary", "is not a list", "list the secondary contrasts or leave the field out")
    contrasts = [_contrast(path, f"{where}primary[{i}]", c, True) for i, c in enumerate(primary)]
    others = [_contrast(path, f"{where}secondary[{i}]", c, False) for i, c in enumerate(secondary)]
    seen = set()
    for c in contrasts + others:
        if (c.scheme, c.num_small) in seen:
            raise _fail(path, f"{where}primary/secondary", f"name {c.label} twice", "list every contrast once")
        seen.add((c.scheme, c.num_small))
    experiment = meta.get("experiment")
    if experiment is not None and not isinstance(experiment, str):
        raise _fail(path, f"{where}experiment", f"is {experiment!r}", "give the preset's run name, e.g. "
                    "cpu_fashion_mnist")
    effect = meta.get("effect_pp")
    if effect is not None and (isinstance(effect, bool) or not isinstance(effect, (int, float)) or not effect > 0
                               or not math.isfinite(effect)):
        raise _fail(path, f"{where}effect_pp", f"is {effect!r}", "give the planned effect in percentage points, "
                    "e.g. 2.0")
    return dict(seeds=seeds, primary=contrasts, secondary=others, experiment=experiment,
                effect_pp=None if effect is None else float(effect))


def demote_headings(markdown: str, levels: int = 2) -> str:
    """The body's headings moved ``levels`` down (a '# Hypotheses' becomes '### Hypotheses' inside the report's
    section); fenced code is left as it is."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6}\s", line):
            line = "#" * min(6, levels + len(line) - len(line.lstrip("#"))) + line.lstrip("#")
        out.append(line)
    return "\n".join(out)
