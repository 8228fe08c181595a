"""`just tune-dashboard STUDY` (python -m dbsl.tune_dashboard): optuna-dashboard on a real study's journal, on a free
127.0.0.1 port, read through its HTTP API; the trials lead to their run records."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dbsl.record import read_summary
from dbsl.cli.tune import main as tune
from dbsl.cli.tune_dashboard import main as dashboard
from test_tune import TINY

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0  # seconds for the server to print its URL


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_dashboard_serves_the_study_and_its_trials_lead_to_their_records(tmp_path):
    assert tune(["--study", "s", "--trials", "2", "--pruner", "none", *TINY, f"results_dir={tmp_path}"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "dbsl.tune_dashboard", "s", "--port", "0", "--results-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline, line = time.monotonic() + START_TIMEOUT, ""
        while time.monotonic() < deadline and "http://" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/dashboard/studies/(\d+)", line)
        assert match, line
        base, study_id = f"http://127.0.0.1:{match.group(1)}", int(match.group(2))
        with urllib.request.urlopen(match.group(0), timeout=10) as page:  # the page the URL names
            assert page.status == 200 and b"<html" in page.read().lower()
        studies = get(f"{base}/api/studies")["study_summaries"]
        assert [(s["study_id"], s["study_name"]) for s in studies] == [(study_id, "s")]
        trials = get(f"{base}/api/studies/{study_id}")["trials"]
        assert len(trials) == 2
        for trial in trials:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            summary = read_summary(attrs["run_dir"])  # the trial's record
            assert summary["run_dir"] == attrs["run_dir"]
            if trial["state"] == "Complete":
                assert float(attrs["best_test_top1"]) == summary["best"]["test_top1"] == trial["values"][0]
                assert float(attrs["final_test_top1"]) == summary["final"]["test_top1"]
                assert float(attrs["modelled_time"]) == summary["modelled_time"]
                assert float(attrs["wall_time"]) == summary["wall_time"]
        assert any(t["state"] == "Complete" for t in trials)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode is not None


def test_unknown_study_names_the_journal_and_the_known_studies(tmp_path, capsys):
    (tmp_path / "tune" / "other").mkdir(parents=True)
    (tmp_path / "tune" / "other" / "journal.log").write_text("")
    assert dashboard(["s", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no study journal {tmp_path / 'tune' / 's' / 'journal.log'}" in err and "other" in err


def test_a_busy_port_and_a_missing_study_are_one_line_each(tmp_path, capsys):
    import socket

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (tmp_path / "tune" / "s").mkdir(parents=True)
    journal = tmp_path / "tune" / "s" / "journal.log"
    optuna.create_study(study_name="other", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert dashboard(["s", "--results-dir", str(tmp_path)]) == 2
    assert f"{journal} holds no study named 's'" in capsys.readouterr().err
    optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(journal))))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert dashboard(["s", "--results-dir", str(tmp_path), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err and "\n" not in err.strip()


def test_a_torn_or_garbage_journal_is_one_line_and_the_dashboard_leaves_it_alone(tmp_path, capsys):
    """Issue 29: a torn or garbage journal.log ended in a raw JSONDecodeError. The dashboard only reads: it says what
    is wrong in one line and changes nothing (a tune process may be appending to the file)."""
    folder = tmp_path / "tune" / "s"
    folder.mkdir(parents=True)
    journal = folder / "journal.log"
    for text, said in (('{"op_code": 0}\n{"op_co', "ends in an incomplete line"),
                       ('{"op_code": 0}\ngarbage\n', "line 2 is not a journal entry")):
        journal.write_text(text)
        assert dashboard(["s", "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert journal.read_text() == text and sorted(p.name for p in folder.iterdir()) == ["journal.log"]
