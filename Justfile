# dbsl tasks. `just` comes from PyPI: python3 -m pip install rust-just
set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

py := ".venv/bin/python"

# list the recipes
default:
    @just --list

# create .venv and install dbsl with its test tools (torch from the local wheel cache where there is one)
setup:
    test -x {{py}} || python3 -m venv .venv
    {{py}} -m pip install -q --upgrade pip
    {{py}} -m pip install -q -e '.[dev]'

# Fashion-MNIST, the real data the CPU presets train on (Debian package dataset-fashion-mnist): root installs it,
# anyone else gets the same package's files in ~/.cache/dbsl/fashion-mnist (apt-get download + dpkg -x); the system's
# python3 runs it (standard library only), so it works before `just setup`
data *ARGS:
    python3 -m dbsl data "$@"

# the main job: a demo sweep of the four schemes on Fashion-MNIST, then its report
demo: setup data
    {{py}} -m dbsl sweep demo
    {{py}} -m dbsl report results/sweeps/demo --out reports/demo

# the test suite
test: setup
    {{py}} -m pytest -q

# one run: just run experiment=smoke scheme=hybrid
run *ARGS:
    {{py}} -m dbsl run "$@"

# print a plan without training: just plan experiment=paper_cifar100 scheme=hybrid dbsl.num_small=3
plan *ARGS:
    {{py}} -m dbsl plan "$@"

# a named sweep from sweeps/: just sweep table8_cpu
sweep NAME *ARGS:
    {{py}} -m dbsl sweep "$@"

# forecast a run's whole time without training: just forecast experiment=paper_cifar100 scheme=hybrid dbsl.num_small=2
# (--json; --set link_gbit=10; --report reports/forecast: the paper's time columns and the server's capacity)
forecast *ARGS:
    {{py}} -m dbsl forecast "$@"

# the forecast against distributed runs made here (~25 min on 2 cores, on a quiet machine): the forecast terms of
# the study's profile measured with --terms-only, then the study's regime run with executor=distributed (baseline,
# DBSL, hybrid, one after another); the forecast report reads them (results/forecast_check)
forecast-check *ARGS:
    {{py}} -m dbsl calibrate experiment=fmnist_study scheme=hybrid executor=distributed --terms-only results_dir=results/forecast_check "$@"
    {{py}} -m dbsl run -m experiment=fmnist_study executor=distributed scheme=baseline,dbsl,hybrid sweep_name=distributed results_dir=results/forecast_check logger.progress=false "$@"

# rebuild tables and figures from run records: just report results/sweeps/table8_cpu --out reports/table8_cpu
report *ARGS:
    {{py}} -m dbsl report "${@:-results}"

# post-hoc checks of completed runs' final models (BN recalibration, train-set gap): just posthoc results/sweeps/X
posthoc *ARGS:
    {{py}} -m dbsl posthoc "$@"

# tune the small-batch ratio with Optuna
tune *ARGS:
    {{py}} -m dbsl tune "$@"

# watch a tuning study live: optuna-dashboard on results/tune/STUDY/journal.log at 127.0.0.1 (--port 0: a free one)
tune-dashboard STUDY *ARGS:
    {{py}} -m dbsl tune-dashboard "$@"

# measure this machine's time model: just calibrate model=resnet18_narrow dataset=fashion_mnist --quick
calibrate *ARGS:
    {{py}} -m dbsl calibrate "$@"

# check the CUDA paths on this machine, minutes; results/gpu_check/ (no CUDA: "skipped: no CUDA", exit 0)
gpu-check *ARGS:
    {{py}} -m dbsl gpu-check "$@"

# speed benchmarks; results under reports/bench/<date>/ (just bench --quick; just bench --only ps_overhead)
bench *ARGS:
    {{py}} benchmarks/run.py "$@"

# upload offline W&B runs found under the run records (just sync --dry-run lists them)
sync *ARGS:
    {{py}} -m dbsl sync "$@"

# the W&B workspace of a sweep group: writes its spec offline; --save creates it (just dashboard smoke --save)
dashboard GROUP *ARGS:
    {{py}} -m dbsl dashboard "$@"
