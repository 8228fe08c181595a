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
BENCHMARKS = ("trainer_vs_loop", "pipeline_vs_model", "ps_overhead", "push_pull", "cpl_saving", "eval_cost",
              "thread_policy")
SIZE_NAMES = ("full", "quick", "tiny")  # full: `just bench`; quick: --quick (seconds); tiny: the smoke test


def module(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def machine() -> dict:
    import torch

    from dbsl.record import cpu_model

    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_one(name: str, size: str, out_dir: Path) -> dict:
    """Run benchmark ``name`` at ``size`` and write ``<out_dir>/<name>.json``; a failure is recorded, not raised."""
    from dbsl.record import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    before, start = load(), time.perf_counter()
    try:
        data = dict(module(name).run(size), status="completed")
    except Exception as err:  # noqa: BLE001 - one failing benchmark must not cost the others
        data = {"name": name, "title": name, "status": "failed",
                "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=20)}
    data.update(size=size, seconds=round(time.perf_counter() - start, 1), load_before=before, load_after=load(),
                finished=dt.datetime.now().isoformat(timespec="seconds"), machine=machine())
    write_atomic(out_dir / f"{name}.json", json.dumps(data, indent=2, default=str) + "\n")
    return data


def parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds per benchmark (same as --size quick)")
    parser.add_argument("--size", choices=SIZE_NAMES, default=None, help="full (default), quick, or tiny (tests)")
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help=f"run only this benchmark (repeatable; comma lists too): {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default reports/bench/<date>)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: one per core)")
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
    for name in args.names:
        print(f"[bench] {name} ({args.size}) ...", file=sys.stderr, flush=True)
        data = run_one(name, args.size, args.out)
        if data["status"] != "completed":
            failed.append(name)
            print(f"[bench] {name} FAILED: {data['error']}", file=sys.stderr, flush=True)
        else:
            h = data["headline"]
            print(f"[bench] {name}: {h.get('label')} = {h.get('value')} ({data['seconds']} s)", file=sys.stderr,
                  flush=True)
    header = {"date": dt.date.today().isoformat(), "size": args.size, "command": command.strip(),
              "machine": machine()}
    report.write(args.out, list(BENCHMARKS), header)
    print(f"[bench] wrote {args.out / 'results.json'} and {args.out / 'results.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
