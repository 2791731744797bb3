"""refine-bbo studies shared through Optuna's RDB storage: exactly the asked number of trials
across processes (a throwaway PostgreSQL server on localhost), and one-line storage errors."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from xtal_cli.errors import XtalError
from xtal_cli.refine import bbo

ROOT = Path(__file__).resolve().parents[2]
Y2O3 = ROOT / "xtal_cli" / "data" / "examples" / "Y2O3"


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own in a temporary folder (trust login on 127.0.0.1),
    stopped and deleted afterwards. PostgreSQL refuses to run as root, so as root the cluster
    belongs to the ``postgres`` (or ``nobody``) user."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="xtal-pg-"))
    if os.geteuid() == 0:
        import pwd

        users = [u for u in ("postgres", "nobody") if _has_user(u, pwd)]
        if not users or not shutil.which("runuser"):
            shutil.rmtree(folder)
            pytest.skip("running as root without a postgres/nobody user and runuser")
        prefix = ["runuser", "-u", users[0], "--"]
        shutil.chown(folder, users[0])
    data, log, port = folder / "data", folder / "server.log", _free_port()

    def call(*cmd):
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=60)

    r = call(initdb, "-D", str(data), "-A", "trust", "-U", "xtal", "-E", "UTF8", "--no-sync")
    if r.returncode == 0:
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        r = call(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", opts, "start")
    if r.returncode != 0:
        reason = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no message"]
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {reason[0]}")
    try:
        yield f"postgresql+psycopg://xtal@127.0.0.1:{port}/postgres"
    finally:
        call(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name, pwd) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_two_processes_share_one_postgres_study_and_finish_exactly_n(postgres_url, tmp_path):
    """Two refine-bbo processes (as on two machines) on one study: exactly N trials count, no
    configuration runs twice, both exit 0 with reports of the whole study."""
    import optuna

    n, name = 8, "shared-y2o3"
    space = tmp_path / "space.yaml"
    space.write_text("cycles: 2\nfinal_cycles: 6\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }

    def start(seed, out):
        cmd = [sys.executable, "-m", "xtal_cli", "refine-bbo", Y2O3 / "Y2O3.xy",
               "--cif", Y2O3 / "Y2O3.cif", "--instrument", Y2O3 / "INST_XRY.PRM",
               "--range", "15", "150", "--trials", str(n), "--seed", str(seed), "--space", space,
               "--storage", postgres_url, "--study-name", name, "--resume", "--quiet",
               "--format", "json", "-o", out]  # fmt: skip
        return subprocess.Popen(
            [str(c) for c in cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    first = start(1, tmp_path / "a")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:  # join a study under way
        if name in [s.study_name for s in optuna.get_all_study_summaries(postgres_url)]:
            if optuna.load_study(study_name=name, storage=postgres_url).trials:
                break
        time.sleep(0.2)
    second = start(2, tmp_path / "b")
    outs = [p.communicate(timeout=300) for p in (first, second)]
    for p, (_, err) in zip((first, second), outs):
        assert p.returncode == 0, err
        assert "Traceback" not in err

    study = optuna.load_study(study_name=name, storage=postgres_url)
    counted = bbo.counted_trials(study)
    assert len(counted) == n and bbo.finished(study) == n
    configs = [json.dumps(t.params, sort_keys=True) for t in counted]
    assert len(set(configs)) == n  # no configuration run twice
    surplus = [t for t in study.trials if t.user_attrs.get("surplus")]
    assert all(t.state.name == "FAIL" and not t.params for t in surplus)  # closed unrun
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "FAIL"}  # nothing left running
    assert len(study.trials) == n + len(surplus)
    for folder in ("a", "b"):  # each process waited for the other: both report the whole study
        doc = json.loads((tmp_path / folder / "report.json").read_text())["study"]
        assert doc["complete"] + doc["negative_uiso"] + doc["failed"] == n, doc
        assert doc["trials"] == len(study.trials) and doc["surplus"] == len(surplus)
    print(f"\n{n} asked, {len(counted)} counted, {len(surplus)} surplus, "
          f"{n - len(set(configs))} duplicate configurations")  # fmt: skip


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_stale_trial_is_requeued_and_a_live_one_left_alone(postgres_url, monkeypatch):
    """On a server storage --resume must not steal a trial another process is running: only
    one whose heartbeat stopped (a killed process) is failed and re-queued."""
    import threading

    import optuna

    monkeypatch.setattr(bbo, "HEARTBEAT_INTERVAL", 1)
    monkeypatch.setattr(bbo, "GRACE_PERIOD", 2)
    meta = {"pattern": "p", "cif": "c", "instrument": "i"}
    study, _ = bbo.open_study(postgres_url, "stale", 0, False, meta)
    storage = bbo.make_storage(postgres_url)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)
    live, stop = study.ask(), threading.Event()

    def beat():  # the live process's heartbeat, as study.optimize records it
        while True:
            storage.record_heartbeat(live._trial_id)
            if stop.wait(0.3):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    time.sleep(3.5)  # the dead trial's process "died": no heartbeat for longer than the grace
    try:
        study, requeued = bbo.open_study(postgres_url, "stale", 0, True, meta)
    finally:
        stop.set()
        thread.join()
    assert requeued == 1
    states = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert states[dead.number].state.name == "FAIL"
    assert states[live.number].state.name == "RUNNING"
    retry = [t for t in states.values() if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state.name == "WAITING"
    assert retry[0].system_attrs["fixed_params"] == dead.params
    assert bbo.finished(study) == 0  # the dead trial does not count; its copy will


def test_concurrent_asks_get_exactly_the_places_left(tmp_path):
    """The place rule on any storage: with one place left, of two trials asked at once only the
    first runs; a killed trial gives its place back; nothing counted is double-counted."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 's.db'}"
    meta = {"pattern": "p", "cif": "c", "instrument": "i"}
    study, _ = bbo.open_study(url, "places", 0, False, meta)
    for _ in range(2):
        t = study.ask()
        study.tell(t, 1.0)
    a, b = study.ask(), study.ask()  # two processes, one place left of 3
    assert bbo._claim(study, a, 3) and not bbo._claim(study, b, 3)
    bbo._surplus(b, 3)
    study.tell(b, state=TrialState.FAIL)
    study.tell(a, state=TrialState.FAIL)  # a killed process: FAIL without a failure reason
    assert bbo.finished(study) == 2 and bbo._taken(study) == 2
    c = study.ask()
    assert bbo._claim(study, c, 3)  # the killed trial's place is free again
    study.tell(c, 2.0)
    assert bbo.finished(study) == 3 and not bbo._claim(study, study.ask(), 3)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql+psycopg://xtal:secret@127.0.0.1:{port}/none", "127.0.0.1"),
        ("nosuchdb://somewhere/x", "nosuchdb"),
    ],
)
def test_a_storage_that_cannot_be_opened_is_one_line_naming_it(invoke, tmp_path, url, reason):
    url = url.format(port=_free_port())  # nothing listens there
    if url.startswith("postgresql"):
        pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    with pytest.raises(XtalError, match=r"^--storage .*: cannot open the study storage \(") as e:
        bbo.make_storage(url)
    assert reason in str(e.value) and "secret" not in str(e.value) and "\n" not in str(e.value)
    inputs = [Y2O3 / "Y2O3.xy", "--cif", Y2O3 / "Y2O3.cif", "--instrument", Y2O3 / "INST_XRY.PRM"]
    r = invoke("refine-bbo", *inputs, "--trials", "2", "--storage", url, "-o", tmp_path / "o", "-q")
    assert r.exit_code == 2 and "cannot open the study storage" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
