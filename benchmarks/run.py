"""`just bench`: run dbsl's speed benchmarks and write ``reports/bench/<date>/results.json`` and ``results.md``.

    .venv/bin/python benchmarks/run.py [--quick] [--only NAME ...] [--out DIR] [--threads N]

Each benchmark writes ``<DIR>/<name>.json`` as soon as it ends (atomically; a failing one records its error and
the others still run), then results.json / results.md are rebuilt from every result file in DIR, so
``--only NAME`` refreshes one benchmark and keeps the rest. ``--quick`` (seconds per benchmark, numbers only
indicative) writes to ``reports/bench/<date>-quick`` unless ``--out`` is given. Exit status 1 if any failed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import platform
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))

# in the order they run; each is the module benchmarks/<name>.py (imported when it runs)
BENCHMARKS = ("fast_path", "trainer_vs_loop", "pipeline_vs_model", "ps_overhead", "push_pull", "cpl_saving",
              "eval_cost", "thread_policy", "compile_cost")
SIZE_NAMES = ("full", "quick", "tiny")  # full: `just bench`; quick: --quick (seconds); tiny: the smoke test


def module(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def machine() -> dict:
    import torch

    from dbsl.machine import cpu_model

    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def busy_seconds() -> Optional[float]:
    """CPU seconds all processes have used since boot (Linux /proc/stat: every state but idle and iowait)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its children that have ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMonitor:
    """The machine's load while benchmarks run: the 1-minute load average sampled every ``every`` seconds, and the
    cores that *other* processes kept busy on average (all CPU time in /proc/stat minus this process's and its
    children's), so that a results file says how shared the cores were."""

    def __init__(self, every: float = 5.0):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            value = load()
            if value is not None:
                self.samples.append(value)
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> "LoadMonitor":
        self.start, self.busy, self.own = time.perf_counter(), busy_seconds(), own_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self.start
        busy = busy_seconds()
        self.others = None
        if busy is not None and self.busy is not None and self.seconds > 0:
            self.others = max(0.0, (busy - self.busy) - (own_seconds() - self.own)) / self.seconds

    def summary(self) -> dict:
        return {"mean": round(sum(self.samples) / len(self.samples), 2) if self.samples else None,
                "max": max(self.samples, default=None), "seconds": round(self.seconds, 1),
                "cores": os.cpu_count(), "others_cores": None if self.others is None else round(self.others, 2)}


def run_one(name: str, size: str, out_dir: Path) -> dict:
    """Run benchmark ``name`` at ``size`` and write ``<out_dir>/<name>.json``; a failure is recorded, not raised."""
    from dbsl.record import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    before, start = load(), time.perf_counter()
    with LoadMonitor() as monitor:
        try:
            data = dict(module(name).run(size), status="completed")
        except Exception as err:  # noqa: BLE001 - one failing benchmark must not cost the others
            data = {"name": name, "title": name, "status": "failed",
                    "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=20)}
    data.update(size=size, seconds=round(time.perf_counter() - start, 1), load_before=before, load_after=load(),
                machine_load=monitor.summary(), finished=dt.datetime.now().isoformat(timespec="seconds"),
                machine=machine())
    write_atomic(out_dir / f"{name}.json", json.dumps(data, indent=2, default=str) + "\n")
    return data


def earlier_runs(out_dir: Path, names: List[str]) -> List[dict]:
    """The runs behind the result files in ``out_dir`` that this run leaves in place (``--only``), from its
    results.json: so that a refreshed directory still says which command, and which load, made each result."""
    try:
        previous = json.loads((out_dir / "results.json").read_text())
    except (OSError, ValueError):
        return []
    runs = previous.get("runs") or [{"command": previous.get("command"), "date": previous.get("date"),
                                     "benchmarks": sorted(previous.get("benchmarks", {})),
                                     "load": previous.get("load")}]
    kept = []
    for run in runs:
        left = [n for n in run.get("benchmarks", []) if n not in names]
        if left:
            kept.append(dict(run, benchmarks=left))
    return kept


def parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds per benchmark (same as --size quick)")
    parser.add_argument("--size", choices=SIZE_NAMES, default=None, help="full (default), quick, or tiny (tests)")
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help=f"run only this benchmark (repeatable; comma lists too): {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default reports/bench/<date>)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as the CPU presets' runs; 0: one per core). With one thread "
                             "the headlines use CPU seconds, which other processes on the cores inflate far less than "
                             "wall seconds")
    args = parser.parse_args(argv)
    if args.quick and args.size not in (None, "quick"):
        parser.error(f"--quick contradicts --size {args.size}; give one of them")
    args.size = args.size or ("quick" if args.quick else "full")
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"--only {', '.join(unknown)}: no such benchmark; choose from {', '.join(BENCHMARKS)}")
    args.names = names or list(BENCHMARKS)
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: must be >= 1 (or 0 for one per core)")
    if args.out is None:
        suffix = "" if args.size == "full" else f"-{args.size}"
        args.out = ROOT / "reports" / "bench" / f"{dt.date.today().isoformat()}{suffix}"
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    import torch

    from benchmarks import report

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath.*is not available")
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    command = "benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    busy, cores = load(), os.cpu_count() or 1
    if busy is not None and busy > 0.5 * cores:
        print(f"[bench] warning: load average {busy} on {cores} cores: other processes compete, so ratios are noisy "
              "and several torch threads may run far slower than one (see thread_policy); prefer a quiet machine",
              file=sys.stderr)
    failed = []
    monitor = LoadMonitor(every=15.0).__enter__()
    for name in args.names:
        print(f"[bench] {name} ({args.size}) ...", file=sys.stderr, flush=True)
        data = run_one(name, args.size, args.out)
        if data["status"] != "completed":
            failed.append(name)
            print(f"[bench] {name} FAILED: {data['error']}", file=sys.stderr, flush=True)
        else:
            h = data["headline"]
            spread = f" [95 % interval {h['interval'][0]}-{h['interval'][1]}]" if h.get("interval") else ""
            print(f"[bench] {name}: {h.get('label')} = {h.get('value')}{spread} ({data['seconds']} s)",
                  file=sys.stderr, flush=True)
    monitor.__exit__()
    this_run = {"command": command.strip(), "date": dt.date.today().isoformat(), "benchmarks": args.names,
                "load": monitor.summary()}
    header = {"date": this_run["date"], "size": args.size, "command": this_run["command"], "machine": machine(),
              "load": this_run["load"], "runs": earlier_runs(args.out, args.names) + [this_run]}
    report.write(args.out, list(BENCHMARKS), header)
    print(f"[bench] wrote {args.out / 'results.json'} and {args.out / 'results.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
