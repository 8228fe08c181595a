"""The W&B sink with the real wandb library and no network: offline runs (read back from the .wandb file), disabled
runs, the mode rules, an unreachable server (a closed port on 127.0.0.1) falling back to offline, and `just sync`."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from dbsl.record import find_runs, read_metric_rows, read_summary
from dbsl.one_run import execute
from dbsl import wandb_sync
from dbsl.cli import sync
from dbsl.sinks import wandb as sink

TINY = ["experiment=smoke", "scheme=dbsl", "schedule.epochs=2", "optim.lr_milestones=[1]", "schedule.cycle_ends=[]",
        "dataset.synthetic_train=256", "dataset.synthetic_test=64", "train.eval_every=2", "train.threads=1",
        "logger.progress=false"]


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No API key anywhere, no error reporting, W&B's own files under tmp_path."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    yield
    import wandb

    wandb.teardown()  # stop the wandb service this process started


def read_wandb_records(path: Path) -> list:
    """The protobuf records of a .wandb file (a LevelDB-style log of 32 KiB blocks after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, records, pending, pos, block = path.read_bytes(), [], b"", 7, 32768
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def key(item) -> str:
    """A history or summary item's key (W&B stores it flat or as a nested path)."""
    return item.key or "/".join(item.nested_key)


def test_offline_run_writes_a_wandb_run_beside_the_record(compose, tmp_path, monkeypatch, no_credentials, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "run"
    overrides = [*TINY, "logger=wandb", "logger.group=study-a", "logger.tags=[paper]"]
    summary = execute(compose([*overrides, f"output_dir={run_dir}"]), overrides)
    assert summary["status"] == "completed" and read_summary(run_dir)["status"] == "completed"
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = offline.glob("*.wandb")
    records = read_wandb_records(log_file)

    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.run_group == "study-a" and run.job_type == "dbsl"
    assert {"paper", "scheme=dbsl", "experiment=smoke"} <= set(run.tags)
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["dbsl"]["num_small"] == 2 and config["scheme"]["name"] == "dbsl"
    assert config["plan"] == json.loads((run_dir / "plan.json").read_text())
    files = offline / "files"
    for name in ("config.yaml", "plan.json", "summary.json", "metrics.csv"):  # uploaded with the run
        assert (files / f"dbsl-{name}").read_bytes() == (run_dir / name).read_bytes(), name
    assert find_runs(tmp_path) == [run_dir]  # the copies are not mistaken for another run record

    history = [{key(i): i.value_json for i in r.history.item} for r in records if r.WhichOneof("record_type")
               == "history"]
    history = [h for h in history if "_step" in h and "train_loss" in h]
    rows = read_metric_rows(run_dir / "metrics.csv")
    assert [int(h["_step"]) for h in history] == [int(r["commit"]) for r in rows]
    tested = {int(h["_step"]): float(h["test_top1"]) for h in history if "test_top1" in h}
    assert tested == {int(r["commit"]): float(r["test_top1"]) for r in rows if r["test_top1"]}

    final = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            final.update({key(i): i.value_json for i in record.summary.update})
    assert final["status"] == '"completed"'
    assert float(final["best/test_top1"]) == summary["best"]["test_top1"]

    # define_metric: the commit is every series' x axis, epoch and the two clocks are alternative x axes, the
    # best top-1 (max) and the lowest test loss (min) are the summary
    metrics = {m.name or m.glob_name: m for m in (r.metric for r in records if r.WhichOneof("record_type") ==
                                                   "metric")}
    assert {"commit", "epoch", "modelled_time", "wall_time", "test_top1", "test_loss", "worker/*"} <= set(metrics)
    for name in ("epoch", "modelled_time", "wall_time", "test_top1", "test_loss", "worker/*", "*"):
        assert metrics[name].step_metric == "commit", name
    assert metrics["test_top1"].summary.max and metrics["test_loss"].summary.min
    assert json.loads(final["test_top1"]) == {"max": max(float(r["test_top1"]) for r in rows if r["test_top1"])}
    assert json.loads(final["test_loss"]) == {"min": min(float(r["test_loss"]) for r in rows if r["test_loss"])}
    full = [h for h in history]  # every row carries its x axes
    assert all({"commit", "epoch", "modelled_time", "wall_time"} <= set(h) for h in full)
    assert [float(h["modelled_time"]) for h in full] == [float(r["modelled_time"]) for r in rows]

    # per-worker series: the pushing worker's batch size under worker/<rank>/, and its own compute seconds, which
    # add up over the workers to the run's compute time (the rows' running total)
    for h, r in zip(full, rows):
        assert h[f"worker/{r['worker']}/batch_size"] == r["batch_size"]
        assert not any(k.startswith("worker/") and not k.startswith(f"worker/{r['worker']}/") for k in h)
    last = {}
    for h, r in zip(full, rows):
        last[r["worker"]] = float(h[f"worker/{r['worker']}/compute_time"])
    assert sorted(last) == ["1", "2", "3", "4"]
    assert sum(last.values()) == pytest.approx(float(rows[-1]["compute_time"]), rel=1e-9)

    # `just sync` finds it, and without an API key stops with a message instead of prompting
    assert wandb_sync.pending_runs([tmp_path]) == [offline]
    assert sync.main([str(tmp_path)]) == 1
    assert sync.main([str(tmp_path / "reslts"), "--dry-run"]) == 2  # a mistyped folder is not "nothing to upload"
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"error: {tmp_path / 'reslts'}: no such folder")


def test_disabled_writes_no_wandb_files_and_the_record_is_complete(compose, tmp_path, monkeypatch, no_credentials):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    overrides = [*TINY, "logger=wandb"]
    summary = execute(compose([*overrides, f"output_dir={tmp_path / 'run'}"]), overrides)
    assert summary["status"] == "completed"
    assert not (tmp_path / "run" / "wandb").exists()
    assert len(read_metric_rows(tmp_path / "run" / "metrics.csv")) == 8


def test_an_unreachable_server_falls_back_to_offline(compose, tmp_path, monkeypatch, no_credentials):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a key, but the server is a closed port on this machine
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(sink, "INIT_TIMEOUT", 3.0)
    monkeypatch.setattr(sink, "_reachable", {})
    cfg = compose([*TINY, "logger=wandb", f"output_dir={tmp_path / 'run'}"])
    assert sink.resolve_mode(cfg.logger.mode) == "offline"  # the server does not answer: offline before W&B starts
    wandb_sink = sink.WandbSink(cfg, {"overrides": []})
    assert wandb_sink.mode == "offline" and wandb_sink.run is not None
    wandb_sink.log_commit({"commit": 0, "train_loss": 1.5})
    wandb_sink.finish("completed")
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/*.wandb"))


def test_mode_rules(tmp_path, monkeypatch, no_credentials):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert sink.resolve_mode("auto") == "offline"  # no key: never online, never a prompt
    assert sink.resolve_mode("online") == "offline"
    assert sink.resolve_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert sink.resolve_mode("auto") == "disabled"
    assert sink.resolve_mode("offline") == "offline"  # an explicit logger.mode wins over the environment
    monkeypatch.delenv("WANDB_MODE")
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # a W&B server that answers: a listening local port
        host = f"127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("WANDB_BASE_URL", f"http://{host}")
        monkeypatch.setattr(sink, "_reachable", {})
        (tmp_path / "no-netrc").write_text(f"machine {host} login user password " + "k" * 40 + "\n")
        (tmp_path / "no-netrc").chmod(0o600)
        assert sink.has_api_key() and sink.resolve_mode("auto") == "online"


def test_tags_leave_out_where_and_how_a_run_goes():
    tags = sink.run_tags(["scheme=dbsl", "results_dir=/x", "train.threads=1", "hydra/launcher=joblib",
                          "dataset.name=" + "x" * 80], ["paper"])
    assert tags == ["scheme=dbsl", ("dataset.name=" + "x" * 80)[:64], "paper"]


def test_an_api_key_but_no_server_goes_offline_at_once_and_sync_and_save_end_cleanly(tmp_path, monkeypatch, caplog,
                                                                                     capsys):
    """Issue 29: with an API key and no network, every run waited 30 s for W&B, `sync` hung and `dashboard --save`
    ended in a traceback. A server that does not accept a connection (here: a closed port on 127.0.0.1, a real
    refusal) is noticed in a few seconds, said once, and W&B goes offline."""
    import socket
    import time

    from dbsl.cli import sync
    from dbsl.sinks import wandb as sink

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on it now
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(sink, "_reachable", {})
    start = time.perf_counter()
    with caplog.at_level("WARNING", logger="dbsl"):
        assert sink.resolve_mode("auto") == "offline" and sink.resolve_mode("online") == "offline"
    assert time.perf_counter() - start < sink.REACH_TIMEOUT + 1
    assert caplog.text.count("does not answer") == 1  # said once
    run = tmp_path / "results" / "r" / "wandb" / "offline-run-1"
    run.mkdir(parents=True)
    capsys.readouterr()  # what the warning above wrote (through whatever handlers earlier tests left on the root logger)
    assert sync.main([str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "Traceback" not in err
    from dbsl.cli import dashboard

    assert dashboard.main(["smoke", "--save", "--records", str(tmp_path / "results"), "--out",
                           str(tmp_path / "spec.json")]) == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "Traceback" not in err
