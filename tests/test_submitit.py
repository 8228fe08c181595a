"""The SLURM launcher's code path without a cluster: a 2-job Hydra multirun through hydra-submitit-launcher's local
executor (hydra/launcher=submitit_local), which pickles each job, runs it in its own process under submitit's job
environment and collects its result, as it does on SLURM."""
from __future__ import annotations

from dbsl.sweep.outcomes import read_sweep_summary
from dbsl.record import find_runs, read_metric_rows, read_summary
from test_sweeps import TINY


def test_two_jobs_through_submitits_local_executor(run_cli, tmp_path):
    proc = run_cli("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "sweep_name=sub",
                   "scheme=baseline,hybrid", "dbsl.num_small=1", *TINY, multirun=True, timeout=300)
    sweep = tmp_path / "results" / "sweeps" / "sub"
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    assert "2 completed, 0 skipped, 0 failed" in proc.stdout
    runs = find_runs(sweep)
    assert sorted(read_summary(r)["scheme"] for r in runs) == ["baseline", "hybrid"]
    assert all(read_summary(r)["status"] == "completed" for r in runs)
    assert all(len(read_metric_rows(r / "metrics.csv")) == 8 for r in runs)  # 2 epochs x 4 workers
    assert sorted(r["status"] for r in read_sweep_summary(sweep)["runs"].values()) == ["completed", "completed"]
    # submitit ran each job in a process of its own (job id = its pid) and collected its result
    jobs = [d for d in (sweep / ".submitit").iterdir() if d.name.isdigit()]
    assert len(jobs) == 2
    for job in jobs:
        assert (job / f"{job.name}_0_result.pkl").stat().st_size > 0
        log = (job / f"{job.name}_0_log.out").read_text() + (job / f"{job.name}_0_log.err").read_text()
        assert "Job completed successfully" in log and "best test top-1" in log
