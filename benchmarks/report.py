"""results.json and results.md from the per-benchmark result files of one bench directory."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from dbsl.record import write_atomic


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
        return f"{value:.3g}"
    if isinstance(value, list):
        return "-".join(cell(v) for v in value)
    return str(value)


def table(columns: List[List[str]], rows: List[dict]) -> List[str]:
    lines = ["| " + " | ".join(header for _, header in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return lines


def verdict(headline: dict) -> str:
    """met / **missed** when the headline's 95 % interval lies wholly on one side of the target (or when it has no
    interval, by its value); otherwise undecided, with the side the value alone is on."""
    met = headline.get("met")
    if met is None:
        return "-"
    point = "met" if met else "**missed**"
    if headline.get("decided") is False and "interval" in headline:
        return f"undecided (value: {point.strip('*')})"
    return point


def interval_text(headline: dict) -> str:
    """'[lo, hi], n rounds, clock' for a headline with a 95 % interval; the rounds' range when there are too few."""
    rounds, clock = headline.get("rounds"), headline.get("clock")
    how = ", ".join(x for x in (f"{rounds} rounds" if rounds else "", f"{clock} clock" if clock else "") if x)
    if headline.get("interval"):
        lo, hi = headline["interval"]
        return f"{cell(lo)}-{cell(hi)} ({how})"
    if headline.get("range"):
        return f"none; range {cell(headline['range'])} ({how})"
    return f"- ({how})" if how else "-"


def run_lines(header: dict) -> List[str]:
    """The machine's load during the run that wrote this header, and the earlier runs whose results it kept."""
    runs = header.get("runs") or []
    if len(runs) <= 1:
        return [load_line(header.get("load"))]
    return [f"Made by {len(runs)} runs:", ""] + [
        f"- `{r['command']}` ({r.get('date')}; {', '.join(r.get('benchmarks', []))}). {load_line(r.get('load'))}"
        for r in runs]


def load_line(load: dict | None) -> str:
    """What other processes did to the machine while benchmarks ran (see run.LoadMonitor)."""
    if not load:
        return "Machine load: not recorded."
    others = load.get("others_cores")
    return (f"Machine load: load average {cell(load.get('mean'))} on average (max {cell(load.get('max'))}) over "
            f"{cell(load.get('seconds'))} s; other processes used {cell(others)} of the {load.get('cores', '?')} "
            "cores on average." if others is not None else
            f"Machine load: load average {cell(load.get('mean'))} on average (max {cell(load.get('max'))}).")


def collect(out_dir: Path) -> Dict[str, dict]:
    """Every ``<name>.json`` result in ``out_dir`` (the last run of each benchmark), by name."""
    found = {}
    for path in sorted(Path(out_dir).glob("*.json")):
        if path.name == "results.json":
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "name" in data and "status" in data:
            found[data["name"]] = data
    return found


def markdown(results: Dict[str, dict], order: List[str], header: dict) -> str:
    names = [n for n in order if n in results] + sorted(set(results) - set(order))
    m = header.get("machine", {})
    lines = [f"# dbsl benchmarks, {header['date']} ({header['size']})", "",
             f"`{header['command']}` on {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} "
             f"torch threads, torch {m.get('torch', '?')}. Every ratio compares sides measured in the same run "
             "(interleaved rounds, medians). The 95 % interval is a distribution-free interval of the median "
             "per-round ratio; the clock is CPU seconds (time.process_time) for one-thread sides, wall seconds "
             "otherwise. A verdict is met or missed only when the whole interval is on one side of the target.", "",
             *run_lines(header), "",
             "| benchmark | ratio | value | 95 % interval | target | verdict | load avg before/after |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        r = results[name]
        h = r.get("headline", {})
        value = cell(h.get("value")) + (f" (vs {cell(h['compare'])})" if h.get("compare") is not None else "")
        if r["status"] != "completed":
            value, verdict_text = f"failed: {r.get('error', '?')}", "**failed**"
        else:
            verdict_text = verdict(h)
        target = r.get("target", "-")
        load = f"{cell(r.get('load_before'))} / {cell(r.get('load_after'))}"
        label = h.get("label", "-") + (f" ({h['where']})" if h.get("where") else "")
        lines.append(f"| {name} | {label} | {value} | {interval_text(h)} | {target} | {verdict_text} | {load} |")
    for name in names:
        r = results[name]
        lines += ["", f"## {r.get('title', name)}", ""]
        if r["status"] != "completed":
            lines += [f"Failed after {cell(r.get('seconds'))} s: `{r.get('error', '?')}`"]
            continue
        lines += [f"Target: {r.get('target', '-')}. {r.get('seconds', 0):.0f} s at size {r.get('size')}.", ""]
        lines += table(r["columns"], r["rows"])
        for extra in r.get("tables", []):
            lines += ["", f"**{extra['title']}**", ""] + table(extra["columns"], extra["rows"])
        if r.get("machine_load"):
            lines += ["", load_line(r["machine_load"])]
        if r.get("notes"):
            lines += [""] + [f"- {note}" for note in r["notes"]]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, order: List[str], header: dict) -> Dict[str, dict]:
    """Rebuild results.json and results.md from the result files now in ``out_dir``; returns the results."""
    results = collect(out_dir)
    write_atomic(Path(out_dir) / "results.json",
                 json.dumps({**header, "benchmarks": results}, indent=2, default=str) + "\n")
    write_atomic(Path(out_dir) / "results.md", markdown(results, order, header))
    return results
