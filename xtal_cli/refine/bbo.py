"""BBO-Rietveld: Optuna proposes the refinement settings, a Rietveld refinement scores them.

Following Ozaki et al. (npj Comput. Mater. 6, 75, 2020): the search space is the published one
(:func:`suggest`), kept apart from the objective (:class:`Objective`), which turns a
configuration into the published step order (:func:`stages`) and returns Rwp. TPE with 20
random start-up trials; the study lives in Optuna storage (SQLite file by default, any RDB URL),
so it can be resumed and shared by several worker processes or machines.

Trial outcomes: a refinement that diverges, times out or raises is marked FAIL (its reason in
the user attribute ``failure``) and the study goes on; a refinement ending with a negative Uiso
is kept but penalised (+``NEGATIVE_UISO_PENALTY`` % Rwp, ``status = negative_uiso``), as the
published study penalised it. The native engine first retries a stage that drove a Uiso negative
with that site's Uiso fixed (``fixed_uiso``), so few trials end that way.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.refine.background import TYPES
from xtal_cli.refine.instrument import sample_position_terms

# The published search space: every GSAS-II background type except the later "chebyschev-1".
BACKGROUND_TYPES = [t for t in TYPES if t != "chebyschev-1"]
FLAGS = {
    "Instrument_parameters refine": ["Zero"],
    "Sample_parameters refine": ["DisplaceX", "DisplaceY", "Scale"],
    "Peakshape_parameters refine": ["U", "V", "W", "X", "Y", "SH/L"],
}
NEGATIVE_UISO_PENALTY = 100.0
N_STARTUP = 20


@dataclass
class Space:
    """Bounds of the search space and the refinement budget (``--space space.yaml``); checked
    on construction, errors name the field."""

    limits: tuple[float, float] | None = None  # the final (full) range; None: whole pattern
    min_width: float = 20.0  # the initial range is at least this wide (published: 20°)
    background_types: list[str] = field(default_factory=lambda: list(BACKGROUND_TYPES))
    background_terms: tuple[int, int] = (1, 15)
    flags: list[str] = field(default_factory=lambda: [f for group in FLAGS.values() for f in group])
    cycles: int = 4  # least-squares cycles per step
    final_cycles: int = 12  # cycles of the last (full-range) step
    timeout: float = 60.0  # seconds per refinement before the trial is marked failed

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None) -> Space:
        if path is None:
            return cls()
        import yaml

        path = Path(path)
        if not path.is_file():
            raise XtalError(f"{path}: search-space file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise XtalError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise XtalError(f"{path}: expected a mapping of search-space settings")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise XtalError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        try:
            return cls(**data)
        except ParameterError as exc:
            raise XtalError(f"{path}: {exc}") from None

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        bad = set(self.background_types) - set(TYPES)
        if bad:
            raise ParameterError(
                "background_types", sorted(bad), f"unknown; use some of {', '.join(TYPES)}"
            )
        lo, hi = self.background_terms
        if not 1 <= lo <= hi <= 36:
            raise ParameterError(
                "background_terms", self.background_terms, "must satisfy 1 <= min <= max <= 36"
            )
        allowed = [f for group in FLAGS.values() for f in group]
        if set(self.flags) - set(allowed):
            raise ParameterError(
                "flags", sorted(set(self.flags) - set(allowed)), f"unknown; use some of {allowed}"
            )
        for name in ("cycles", "final_cycles"):
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "must be at least 1")
        if not self.timeout > 0:
            raise ParameterError("timeout", self.timeout, "must be positive (seconds)")
        if self.limits is not None and self.limits[1] - self.limits[0] < self.min_width:
            raise ParameterError(
                "limits", self.limits, f"narrower than min_width ({self.min_width:g}°)"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def suggest(trial, space: Space, limits: tuple[float, float]) -> dict:
    """The published search space (parameter names as in the BBO-Rietveld notebooks)."""
    lo, hi = limits
    cfg: dict = {}
    lb = trial.suggest_float("Limits lower bound", lo, hi - space.min_width)
    ub = trial.suggest_float("Limits upper bound", lb + space.min_width, hi)
    cfg["limits"] = (lb, ub)
    # the published space samples it, and GSAS-II ignored it there: kept, with no effect (stages)
    cfg["use_limits"] = trial.suggest_categorical("limits refine", [True, False])
    cfg["background"] = trial.suggest_categorical("Background type", space.background_types)
    cfg["n_background"] = trial.suggest_int("Number of coefficients", *space.background_terms)
    cfg["refine_background"] = trial.suggest_categorical("Background refine", [True, False])
    for prefix, names in FLAGS.items():
        for name in names:
            if name in space.flags:
                cfg[name] = trial.suggest_categorical(f"{prefix} {name}", [True, False])
            else:
                cfg[name] = False
    return cfg


def stages(cfg: dict, full: tuple[float, float], space: Space, geometry: str = "bragg-brentano"):
    """The published step order: range → background → cell+zero → sample → profile → atoms →
    full range. Parameters switched on stay on (GSAS-II's ``set``)."""
    from xtal_cli.refine.engine import Stage

    c = space.cycles
    terms = sample_position_terms(geometry)
    on = [terms[k] for k in ("DisplaceX", "DisplaceY") if cfg.get(k)]
    prof = [k for k in ("U", "V", "W", "X", "Y", "SH/L") if cfg.get(k)]
    # the first step always narrows to the sampled range: the published notebooks pass
    # "limits refine" as a top-level 'refine' key, which GSAS-II's do_refinements never reads
    start = tuple(cfg["limits"])
    return [
        Stage("range", limits=start, cycles=c),
        Stage(
            "background",
            background=(cfg["background"], int(cfg["n_background"])),
            refine=("background",) if cfg["refine_background"] else (),
            cycles=c,
        ),
        Stage("cell+zero", refine=("cell", "zero") if cfg.get("Zero") else ("cell",), cycles=c),
        # "Scale": the histogram scale; with one phase it is the scale refined from step 1 on
        Stage("sample", refine=tuple(on), cycles=c),
        Stage("profile", refine=tuple(prof), cycles=c),
        Stage("atoms", refine=("xyz", "uiso"), cycles=c),
        Stage("full range", limits=tuple(full), cycles=space.final_cycles, restarts=True),
    ]


@dataclass
class Problem:
    """What is refined: the measured pattern, the phase CIF and the instrument file (None: the
    laboratory default, :func:`~xtal_cli.refine.instrument.default_instrument`)."""

    pattern: str
    cif: str
    instrument: str | None = None
    limits: tuple[float, float] | None = None  # 2θ range refined; None: the whole pattern
    wavelength: float | None = None

    def __post_init__(self):
        if self.limits is not None:
            if len(self.limits) != 2 or not self.limits[0] < self.limits[1]:
                raise ParameterError("limits", self.limits, "give (low, high) with low < high")
        if self.wavelength is not None and not self.wavelength > 0:
            raise ParameterError("wavelength", self.wavelength, "must be positive (Å)")

    def load(self):
        """(scan, phase, instrument) read and checked; errors name the file at fault."""
        from xtal_cli.refine.phases import read_phase

        scan, inst = self._scan_and_instrument()
        check_counts(scan.counts, self.pattern)
        phase = read_phase(self.cif)
        return scan, phase, inst

    def _scan_and_instrument(self):
        from xtal_cli.io.scans import read_scan
        from xtal_cli.refine.instrument import default_instrument, read_instrument

        if self.instrument is None:  # the scan's own wavelengths, if it has them
            scan = read_scan(self.pattern)
            return scan, default_instrument(scan)
        inst = read_instrument(self.instrument)
        return read_scan(self.pattern, wavelength=inst.lam1), inst

    def instrument_parameters(self):
        """The :class:`~xtal_cli.refine.instrument.Instrument` refined from (for reports)."""
        return self._scan_and_instrument()[1]

    def instrument_label(self) -> str:
        """The instrument file's absolute path, or ``"default"`` (the study records it)."""
        return "default" if self.instrument is None else str(Path(self.instrument).resolve())

    def instrument_file(self, folder: str | os.PathLike) -> str:
        """A file an external engine (GSAS-II) can read: the given one, or the default written
        into *folder* as ``default.instprm``."""
        if self.instrument is not None:
            return self.instrument
        path = Path(folder) / "default.instprm"
        path.write_text(self.instrument_parameters().instprm())
        return str(path)

    def full_range(self, scan) -> tuple[float, float]:
        """The 2θ range of the final step: the given *limits* within the scan, or without them
        the longest stretch of the scan free of background steps (:mod:`xrd.scanrange`)."""
        tt = scan.two_theta
        if self.limits is None:
            return self.default_range(scan)[0]
        lo, hi = self.limits
        lo, hi = max(lo, float(tt[0])), min(hi, float(tt[-1]))
        if hi - lo < 5:
            raise ParameterError(
                "limits",
                self.limits,
                f"leaves no data in {self.pattern} (it covers {tt[0]:g}-{tt[-1]:g}°)",
            )
        return lo, hi

    def default_range(self, scan):
        """((low, high), steps): the range used when no limits are given, and why."""
        from xtal_cli.xrd.scanrange import usable_range

        return usable_range(scan.two_theta, scan.counts)

    def range_report(self, scan) -> dict:
        """How the refined range of *scan* (this problem's, as :meth:`load` read it) was chosen,
        for report.json and the log."""
        if self.limits is not None:
            return {"chosen": "given", "limits": list(self.limits)}
        (lo, hi), steps = self.default_range(scan)
        return {
            "chosen": "whole scan" if not steps else "longest stretch between background steps",
            "limits": [lo, hi],
            "scan": [float(scan.two_theta[0]), float(scan.two_theta[-1])],
            "background_steps": [
                {"two_theta": st.two_theta, "before": st.before, "after": st.after} for st in steps
            ],
            "why": "; ".join(st.describe() for st in steps),
        }


def check_counts(counts, path) -> None:
    y = np.asarray(counts, dtype=float)
    if not np.all(np.isfinite(y)):
        raise XtalError(f"{path}: contains NaN or infinite counts; remove or fix those points")
    if np.any(y < 0):
        raise XtalError(
            f"{path}: {int(np.sum(y < 0))} negative counts; Rietveld weights need raw counts "
            "(w = 1/counts), not background-subtracted data"
        )


class Objective:
    """Rwp of one configuration, refined with the native engine (or GSAS-II)."""

    def __init__(self, problem: Problem, space: Space, engine: str = "native"):
        self.problem, self.space, self.engine = problem, space, engine
        self._template = None

    def template(self):
        """The model every trial starts from (inputs read once; a trial refines a copy, so do
        not change it)."""
        from xtal_cli.refine.engine import RietveldModel

        if self._template is None:
            scan, phase, inst = self.problem.load()
            self.full = self.problem.full_range(scan)
            self.range = self.problem.range_report(scan)
            self._template = RietveldModel(scan.two_theta, scan.counts, phase, inst, scan.sigma)
        return self._template

    def _model(self):
        return copy.deepcopy(self.template())

    def full_range(self) -> tuple[float, float]:
        self.template()
        return self.full

    def range_report(self) -> dict:
        """How the refined range was chosen (:meth:`Problem.range_report`)."""
        self.template()
        return self.range

    def run(self, cfg: dict):
        """Refine with *cfg*; returns (model, Result). Raises RefinementFailed on failure."""
        if self.engine == "gsas2":
            from xtal_cli.refine.gsas2 import refine_gsas2

            return None, refine_gsas2(self.problem, cfg, self.full_range(), self.space)
        from threadpoolctl import threadpool_limits

        from xtal_cli.refine.engine import refine

        model = self._model()
        # small dense algebra: BLAS threads only fight the other workers for the cores
        with threadpool_limits(1):
            steps = stages(cfg, self.full, self.space, model.inst.geometry)
            result = refine(model, steps, timeout=self.space.timeout)
        return model, result

    def evaluate(self, cfg: dict) -> dict:
        """Refine *cfg*; a plain dict (picklable, so a worker process can return it): either
        ``{"failure": reason}`` or the result's figures."""
        from xtal_cli.refine.engine import RefinementFailed

        try:
            with np.errstate(all="ignore"):
                _, res = self.run(cfg)
        except (RefinementFailed, np.linalg.LinAlgError, FloatingPointError) as exc:
            return {"failure": str(exc) or type(exc).__name__}
        if not math.isfinite(res.rwp):
            return {"failure": "non-finite Rwp"}
        return {
            "rwp": res.rwp,
            "rp": res.rp,
            "gof": res.gof,
            "seconds": res.seconds,
            "cell": list(res.cell),
            "sites": [{"xyz": s["xyz"], "uiso": s["uiso"]} for s in res.sites],
            "negative_uiso": bool(res.negative_uiso),
            "fixed_uiso": list(getattr(res, "fixed_uiso", [])),
        }

    @staticmethod
    def record(trial, outcome: dict) -> float:
        """Store *outcome* on *trial*; its objective value, or :class:`TrialFailed`."""
        if "failure" in outcome:
            trial.set_user_attr("failure", outcome["failure"])
            raise TrialFailed(outcome["failure"])
        for key in ("rwp", "rp", "gof", "seconds", "cell", "sites"):
            trial.set_user_attr(key, outcome[key])
        trial.set_user_attr("fixed_uiso", outcome.get("fixed_uiso", []))
        if outcome["negative_uiso"]:
            trial.set_user_attr("status", "negative_uiso")
            return outcome["rwp"] + NEGATIVE_UISO_PENALTY
        trial.set_user_attr("status", "ok")
        return outcome["rwp"]

    def __call__(self, trial) -> float:
        cfg = suggest(trial, self.space, self.full_range())
        return self.record(trial, self.evaluate(cfg))


class TrialFailed(Exception):
    """Raised inside a trial so Optuna records it as FAIL and the study continues."""


# ---------------------------------------------------------------- the study

# A server storage (PostgreSQL, MySQL) is shared by processes on several machines: each running
# trial records a heartbeat, and one silent for GRACE_PERIOD seconds (its process was killed or
# lost its machine) is failed and its configuration re-queued by whichever process looks next.
HEARTBEAT_INTERVAL = 15
GRACE_PERIOD = 60
POLL_SECONDS = 2.0


def _server(url: str) -> bool:
    return not url.startswith("sqlite")


def _shown(url: str) -> str:
    """*url* without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show it as given
        return url


def make_storage(url: str):
    """Optuna's RDB storage for *url*; a URL it cannot open is one XtalError naming it."""
    import warnings

    import optuna

    try:
        if not _server(url):
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 120}}, heartbeat_interval=None
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            kwargs = {"heartbeat_interval": HEARTBEAT_INTERVAL, "grace_period": GRACE_PERIOD}
            try:
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_stale_trial_callback=_requeue,
                    **kwargs,
                )
            except TypeError:  # optuna < 4.9 names the callback failed_trial_callback
                return optuna.storages.RDBStorage(
                    url, engine_kwargs={"pool_pre_ping": True}, failed_trial_callback=_requeue,
                    **kwargs,
                )  # fmt: skip
    except Exception as exc:  # a bad URL, a missing driver, a server that does not answer
        reason = getattr(exc, "orig", None) or exc.__cause__ or exc  # the driver's own words
        reason = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, ImportError):
            reason += "; install the database driver (PostgreSQL: pip install 'psycopg[binary]')"
        raise XtalError(
            f"--storage {_shown(url)}: cannot open the study storage ({reason})"
        ) from None


def open_study(storage: str, name: str, seed: int, resume: bool, meta: dict):
    """Create or (with *resume*) load the study; interrupted trials are re-queued, not lost.

    On a server storage another process may be running the study right now: only trials whose
    heartbeat has gone stale are taken as interrupted, never a live process's running trial."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    # failed trials are expected (diverged refinements); their reasons go to trials.csv
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    st = make_storage(storage)
    existing = (
        [s.study_name for s in optuna.get_all_study_summaries(st)] if _exists(storage) else []
    )
    if name in existing and not resume:
        study = optuna.load_study(study_name=name, storage=st)
        if study.trials:
            raise XtalError(
                f"{storage}: study {name!r} already has {len(study.trials)} trials; pass --resume "
                "to continue it, or choose another output folder or --study-name"
            )
    study = optuna.create_study(
        study_name=name, storage=st, sampler=_sampler(seed), direction="minimize",
        load_if_exists=True,
    )  # fmt: skip
    if study.trials:  # resumed: a sampler seeded as before would repeat the first suggestions
        study = optuna.load_study(
            study_name=name, storage=st, sampler=_sampler(seed + len(study.trials))
        )
    if not study.user_attrs:  # two processes starting together write the same values
        for k, v in meta.items():
            study.set_user_attr(k, v)
    changed = [k for k in ("pattern", "cif", "instrument") if study.user_attrs.get(k) != meta[k]]
    if changed:
        raise XtalError(
            f"{storage}: study {name!r} was run with another {', '.join(changed)}; "
            "use a new output folder for a new problem"
        )
    before = len(_retried(study.get_trials(deepcopy=False)))
    if _server(storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # re-queues them through _requeue
    trials = study.get_trials(deepcopy=False)
    requeue = []
    for t in trials:
        interrupted = (t.state == TrialState.RUNNING and not _server(storage)) or (
            t.state == TrialState.FAIL and "failure" not in t.user_attrs
        )
        if interrupted and not _requeued(study, t, trials):
            requeue.append(t)
    for t in requeue:
        if t.state == TrialState.RUNNING:
            study._storage.set_trial_user_attr(t._trial_id, "failure", "interrupted (re-queued)")
            study._storage.set_trial_user_attr(t._trial_id, "requeued", True)
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        _requeue(study, t)
    stale = len(_retried(study.get_trials(deepcopy=False))) - before - len(requeue)
    return study, len(requeue) + max(stale, 0)


def _sampler(seed: int):
    import optuna

    return optuna.samplers.TPESampler(n_startup_trials=N_STARTUP, seed=seed)


def _requeue(study, trial) -> None:
    """Queue an interrupted trial's configuration again; the copy's ``retry_of`` names the
    original, which from then on does not count."""
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _retried(trials) -> set[int]:
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def _requeued(study, t, trials) -> bool:
    # "requeued" and the study's "requeued_trials": how studies written before retry_of marked it
    return (
        bool(t.user_attrs.get("requeued"))
        or t.number in _retried(trials)
        or t.number in study.user_attrs.get("requeued_trials", [])
    )


def _exists(storage: str) -> bool:
    if storage.startswith("sqlite:///"):
        return Path(storage[len("sqlite:///") :]).exists()
    return True


def _tally(study):
    """(counted, holding) predicates over the study's trials as they are now."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    gone = _retried(trials) | set(study.user_attrs.get("requeued_trials", []))

    def counted(t) -> bool:
        if t.state == TrialState.COMPLETE:
            return True
        return (
            t.state == TrialState.FAIL
            and "failure" in t.user_attrs  # a failed refinement, not a killed process
            and not t.user_attrs.get("surplus")
            and not t.user_attrs.get("requeued")
            and t.number not in gone
        )

    def holding(t) -> bool:  # counts, or will count once it has run (queued ones too)
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            return not t.user_attrs.get("surplus")
        return counted(t)

    return trials, counted, holding


def counted_trials(study) -> list:
    """The trials that count toward --trials: complete, penalised or genuinely failed (not
    interrupted and re-queued, not surplus)."""
    trials, counted, _ = _tally(study)
    return [t for t in trials if counted(t)]


def finished(study) -> int:
    """How many trials count toward --trials."""
    return len(counted_trials(study))


def _taken(study) -> int:
    """Places of the --trials taken by counted or running trials (a queued trial's place is
    free to whoever asks next: ``study.ask`` hands out queued trials first)."""
    from optuna.trial import TrialState

    trials, _, holding = _tally(study)
    return sum(1 for t in trials if holding(t) and t.state != TrialState.WAITING)


def _claim(study, trial, total: int) -> bool:
    """Whether *trial* has one of the *total* places. Optuna numbers trials under a lock on the
    study, so every lower-numbered trial is already visible: the first *total* trials that hold
    a place run, whichever process asked for them, and the rest are surplus."""
    trials, _, holding = _tally(study)
    return sum(1 for t in trials if t.number < trial.number and holding(t)) < total


def _surplus(trial, total: int) -> None:
    """Close *trial* without running it: the study already has its *total* trials."""
    trial.set_user_attr("surplus", True)
    trial.set_user_attr("failure", f"surplus: the study already had its {total} trials")


def _stop_at(total: int):
    def callback(study, trial):
        if _taken(study) >= total:
            study.stop()

    return callback


def _bounded(objective, total: int):
    def run(trial):
        if not _claim(trial.study, trial, total):
            _surplus(trial, total)
            raise TrialFailed("surplus")
        return objective(trial)

    return run


def _run(study, objective, total: int, server: bool, callbacks=()) -> None:
    """Run trials while places are free. On a server storage then wait for the trials other
    processes are running: a dead process's trial goes stale, is re-queued and run here."""
    import time
    import warnings

    import optuna

    run = _bounded(objective, total)
    patience = GRACE_PERIOD + 2 * HEARTBEAT_INTERVAL + objective.space.timeout
    since, seen = time.monotonic(), -1
    while (done := finished(study)) < total:
        free = total - _taken(study)
        if free > 0:
            study.optimize(
                run, n_trials=free, catch=(TrialFailed,), callbacks=[_stop_at(total), *callbacks]
            )
            continue
        if not server:
            return  # the other processes are this run's own workers, joined by the caller
        if done != seen:
            since, seen = time.monotonic(), done
        elif time.monotonic() - since > patience:
            return  # trials left running without a heartbeat: --resume re-queues them
        time.sleep(POLL_SECONDS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def _worker(storage: str, name: str, seed: int, total: int, problem, space, engine) -> None:
    """Body of one extra worker process: same study, its own sampler seed."""
    import optuna

    # failed trials are expected (diverged refinements); their reasons go to trials.csv
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=name, storage=make_storage(storage), sampler=_sampler(seed)
    )
    _run(study, Objective(problem, space, engine), total, _server(storage))


_WORKER_OBJECTIVE: Objective | None = None


def _init_batch_worker(problem, space, engine) -> None:
    global _WORKER_OBJECTIVE
    _WORKER_OBJECTIVE = Objective(problem, space, engine)


def _evaluate_in_worker(cfg: dict) -> dict:
    return _WORKER_OBJECTIVE.evaluate(cfg)


class _Heartbeats:
    """Heartbeats for trials refined outside ``study.optimize`` (the deterministic rounds), as
    ``study.optimize`` records them, so a killed round is re-queued like any other trial."""

    def __init__(self, study, trials):
        self.storage, self.ids = study._storage, [t._trial_id for t in trials]
        self.interval = getattr(self.storage, "get_heartbeat_interval", lambda: None)()

    def _beat(self):
        while True:
            for i in self.ids:
                self.storage.record_heartbeat(i)
            if self.stop.wait(self.interval):
                return

    def __enter__(self):
        import threading

        self.stop = threading.Event()
        if self.interval:
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.interval:
            self.thread.join()


def optimize_rounds(study, problem, space, engine, total, workers=2, on_trial=None):
    """Deterministic parallel study: each round asks *workers* suggestions of the one seeded
    sampler, refines them in parallel processes and tells the results in trial order, so the
    seed and the worker count fix every trial (the processes share the work, not the sampler).
    Costs some speed against :func:`optimize`: a round waits for its slowest refinement."""
    import multiprocessing as mp
    import warnings
    from concurrent.futures import ProcessPoolExecutor

    from optuna.trial import TrialState

    objective = Objective(problem, space, engine)
    full = objective.full_range()  # load and check the inputs before anything starts
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_batch_worker, initargs=(problem, space, engine)
    ) as pool:
        while (remaining := total - _taken(study)) > 0:
            trials = []
            with warnings.catch_warnings():  # heartbeats: recorded by _Heartbeats below
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                asked = [study.ask() for _ in range(min(workers, remaining))]
            for trial in asked:
                if _claim(study, trial, total):
                    trials.append(trial)
                else:  # another process on the same storage filled the study meanwhile
                    _surplus(trial, total)
                    study.tell(trial, state=TrialState.FAIL)
            configs = [suggest(t, space, full) for t in trials]
            with _Heartbeats(study, trials):
                outcomes = list(pool.map(_evaluate_in_worker, configs))
            for trial, outcome in zip(trials, outcomes):
                try:
                    study.tell(trial, Objective.record(trial, outcome))
                except TrialFailed:
                    study.tell(trial, state=TrialState.FAIL)
            if on_trial is not None:
                on_trial(finished(study))
    return objective


def optimize(study, problem, space, engine, total, workers=1, seed=0, storage="", on_trial=None):
    """Run trials until exactly *total* count; *workers* processes, and any other process on
    the same storage, share the study (:func:`_claim` keeps them from overshooting)."""
    import multiprocessing as mp

    objective = Objective(problem, space, engine)
    objective.full_range()  # load and check the inputs before anything starts
    procs = []
    seed += len(study.trials)  # as open_study seeds a resumed study: new suggestions, not repeats
    if workers > 1:
        ctx = mp.get_context("spawn")
        for w in range(1, workers):
            p = ctx.Process(
                target=_worker,
                args=(storage, study.study_name, seed + w, total, problem, space, engine),
                daemon=True,
            )
            p.start()
            procs.append(p)
    callbacks = [] if on_trial is None else [lambda s, t: on_trial(finished(s))]
    try:
        _run(study, objective, total, _server(storage), callbacks)
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    return objective
