"""Watch a tuning study live in optuna-dashboard: ``dbsl tune-dashboard STUDY [--port 8080]``
(:mod:`dbsl.cli.tune_dashboard`, also ``python -m dbsl.tune_dashboard``).

Serves the study's journal (``<results_dir>/tune/<study>/journal.log``, the Optuna JournalStorage that
``python -m dbsl.tune`` writes) on 127.0.0.1 and prints the URL; it shows the trials as they finish while a tune
process goes on writing the same journal. Each trial's user attributes hold its run directory (``run_dir``, the
run's record) and its key metrics (best and final test top-1, modelled and wall-clock time). ``--port 0`` takes a
free port. Ctrl-C stops it.
"""
from __future__ import annotations

from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from . import layout
from .errors import Unavailable, UserError


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request would bury the URL


def study_journal(results_dir: Path, study: str) -> Path:
    return layout.study_journal(results_dir, study)


def serve(study: str, port: int = 8080, results_dir: Path = Path("results")) -> int:
    """Serve ``study``'s journal under ``results_dir`` on 127.0.0.1:``port`` until Ctrl-C. No such study or a damaged
    journal is a :class:`~dbsl.errors.UserError`, a port taken :class:`~dbsl.errors.Unavailable`."""
    journal = study_journal(results_dir, study)
    if not journal.is_file():
        known = layout.studies(results_dir)
        raise UserError(f"no study journal {journal} (studies under {results_dir / 'tune'}: "
                        f"{', '.join(known) or 'none'}); start one with `just tune --study {study} ...`")
    import optuna
    import optuna_dashboard
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from .tune import checked_journal  # here: it imports torch, which --help and the errors above do not need

    checked_journal(journal, repair=False)  # a damaged journal: ConfigError
    storage = JournalStorage(JournalFileBackend(str(journal)))
    try:
        study_id = storage.get_study_id_from_name(study)
    except KeyError:
        raise UserError(f"{journal} holds no study named {study!r}") from None
    try:
        server = make_server("127.0.0.1", port, optuna_dashboard.wsgi(storage), handler_class=QuietHandler)
    except OSError as err:
        raise Unavailable(f"cannot listen on 127.0.0.1:{port} ({err.strerror}); choose another --port "
                          "(0: a free one)") from None
    url = f"http://127.0.0.1:{server.server_port}/dashboard/studies/{study_id}"
    print(f"optuna-dashboard (optuna {optuna.__version__}) serving study {study!r} from {journal}: {url}  "
          "(Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0



if __name__ == "__main__":  # python -m dbsl.tune_dashboard: the command is dbsl.cli.tune_dashboard
    from .cli.tune_dashboard import main

    raise SystemExit(main())
