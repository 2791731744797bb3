"""refine-bbo end to end: study → best refinement → output folder (what the CLI calls)."""

from __future__ import annotations

import time
from pathlib import Path

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.refine import bbo, report

# Published references on the AutoFP/BBO-Rietveld data (Ozaki et al. 2020), for the plots.
REFERENCES = {"Y2O3": {"BBO GSAS-II": 6.610}, "dsmo": {"BBO GSAS-II": 9.211, "expert": 9.775}}


def run_refine_bbo(
    problem: bbo.Problem,
    outdir: str | Path,
    trials: int = 200,
    seed: int = 0,
    workers: int = 1,
    storage: str | None = None,
    study_name: str = "refine-bbo",
    resume: bool = False,
    engine: str = "native",
    space: bbo.Space | None = None,
    k_best: int = 5,
    on_trial=None,
    log=lambda msg: None,
    deterministic: bool = False,
) -> dict:
    """Run (or resume) the study and write the output folder; returns the report dict.

    With *deterministic* and several *workers*, trials are suggested in rounds by one sampler
    (:func:`~xtal_cli.refine.bbo.optimize_rounds`), so the seed fixes the study; otherwise the
    workers share the study through its storage, each with its own sampler, which is faster
    but lets the order of finishing trials steer what is suggested next."""
    space = space or bbo.Space()
    space.validate()  # fields may have been changed since construction
    if engine not in ("native", "gsas2"):
        raise ParameterError("engine", engine, "use native or gsas2")
    if engine == "gsas2":
        from xtal_cli.refine.gsas2 import available

        if not available():
            raise ParameterError(
                "engine", engine, "needs GSAS-II (import GSASII failed); use native"
            )
    if trials < 1:
        raise ParameterError("trials", trials, "must be at least 1")
    if workers < 1:
        raise ParameterError("workers", workers, "must be at least 1")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise XtalError(f"{outdir}: exists and is not a folder")
    problem.limits = space.limits if problem.limits is None else problem.limits
    scan = problem.load()[0]  # fail fast on bad inputs, before a study is created
    chosen = problem.range_report(scan)
    if chosen.get("background_steps"):
        lo, hi = chosen["limits"]
        log(
            f"no --range given: refining {lo:.2f}-{hi:.2f}° of {Path(problem.pattern).name} "
            f"({chosen['why']}); pass --range to choose another"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(outdir / 'study.db').resolve()}"
    meta = {
        "pattern": str(Path(problem.pattern).resolve()),
        "cif": str(Path(problem.cif).resolve()),
        "instrument": problem.instrument_label(),
        "seed": seed,
        "engine": engine,
        "deterministic": bool(deterministic),
        "space": space.as_dict(),
    }
    study, requeued = bbo.open_study(storage, study_name, seed, resume, meta)
    if requeued:
        log(f"re-queued {requeued} interrupted trial(s)")
    t0 = time.monotonic()
    done0 = bbo.finished(study)
    if deterministic and workers > 1:
        objective = bbo.optimize_rounds(
            study, problem, space, engine, trials, workers, on_trial=on_trial
        )
    else:
        objective = bbo.optimize(
            study, problem, space, engine, trials, workers, seed, storage, on_trial=on_trial
        )
    wall = time.monotonic() - t0
    return write_outputs(study, objective, outdir, k_best, seed, wall, bbo.finished(study) - done0)


def write_outputs(study, objective, outdir: Path, k_best: int, seed: int, wall: float, ran: int):
    from optuna.trial import TrialState

    all_trials = study.get_trials(deepcopy=False)
    ok = [
        t
        for t in all_trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get("status") == "ok"
    ]
    failed = [t for t in bbo.counted_trials(study) if t.state == TrialState.FAIL]
    surplus = sum(bool(t.user_attrs.get("surplus")) for t in all_trials)
    penalised = [t for t in all_trials if t.user_attrs.get("status") == "negative_uiso"]
    frame = study.trials_dataframe(
        attrs=("number", "value", "state", "params", "user_attrs", "duration")
    )
    frame = frame.rename(columns={"value": "objective"})
    for col in ("user_attrs_cell", "user_attrs_sites"):
        if col in frame:
            frame = frame.drop(columns=col)
    report.write_csv(outdir / "trials.csv", frame)
    if not ok:
        raise XtalError(
            f"{outdir}: none of {len(all_trials)} trials gave a sensible refinement "
            f"({len(failed)} failed, {len(penalised)} with negative Uiso); see trials.csv"
        )
    best = min(ok, key=lambda t: t.value)
    cfg = bbo.suggest(_Fixed(best.params), objective.space, objective.full_range())
    model, result = objective.run(cfg)
    phase = objective.template().phase
    summary = result.summary()
    stem = Path(objective.problem.pattern).stem
    refs = REFERENCES.get(stem, {})
    seconds = [t.user_attrs["seconds"] for t in ok if "seconds" in t.user_attrs]
    reached = {
        name: next((t.number for t in sorted(ok, key=lambda t: t.number) if t.value <= val), None)
        for name, val in refs.items()
    }
    doc = {
        "pattern": objective.problem.pattern,
        "cif": objective.problem.cif,
        "instrument": objective.problem.instrument,  # None: the default below
        "default_instrument": objective.problem.instrument is None,
        "instrument_parameters": objective.template().inst.as_dict(),
        "engine": objective.engine,
        "seed": seed,
        "study": {
            "name": study.study_name,
            "trials": len(all_trials),
            "complete": len(ok),
            "negative_uiso": len(penalised),
            "fixed_uiso": sum(1 for t in ok if t.user_attrs.get("fixed_uiso")),
            "failed": len(failed),
            "surplus": surplus,  # closed unrun: other processes had filled the study
            "ran_now": ran,
            "wall_seconds": wall,
            "seconds_per_refinement": (sum(seconds) / len(seconds)) if seconds else None,
            "best_trial": best.number,
            "first_trial_below_reference": reached,
        },
        "best": {"configuration": best.params, **summary},
        "starting_cell": list(phase.cell),
        "lattice_change_percent": [
            100 * (a - b) / b for a, b in zip(result.cell[:3], phase.cell[:3])
        ],
        "space": objective.space.as_dict(),
        "range": objective.range_report(),
        "gsas2_check": _gsas2_check(model, objective.problem),
    }
    meta = {"Rwp": f"{result.rwp:.3f} %", "GOF": f"{result.gof:.3f}", "trial": best.number}
    report.write_cif(outdir / "best.cif", phase, result.cell, result.sites, result.cell_esd, meta)
    title = f"{stem}: Rwp {result.rwp:.2f} % (trial {best.number})"
    curve = getattr(result, "curve", None)  # engines without a native model (GSAS-II)
    if model is not None:
        report.plot_rietveld(outdir / "rietveld.png", model, title)
    elif curve is not None:
        report.plot_curves(
            outdir / "rietveld.png",
            curve.x,
            curve.yobs,
            curve.ycalc,
            curve.background,
            curve.reflections,
            title,
        )
    values = [(t.number, t.value) for t in all_trials if t.state == TrialState.COMPLETE]
    report.plot_history(
        outdir / "history.png",
        [n for n, _ in values],
        [v for _, v in values],
        failed=[t.number for t in failed],
        reference=refs,
    )
    records = [
        {
            "trial": t.number,
            "rwp": t.value,
            "cell": t.user_attrs["cell"],
            "sites": t.user_attrs["sites"],
        }
        for t in sorted(ok, key=lambda t: t.value)[:60]
    ]
    chosen = report.distinct_candidates(records, phase, k_best)
    cand_dir = outdir / "candidates"
    doc["candidates"] = []
    for rank, c in enumerate(chosen, 1):
        sites = [{"xyz": s["xyz"], "uiso": s["uiso"]} for s in c["sites"]]
        name = f"candidate_{rank}_trial{c['trial']}.cif"
        report.write_cif(
            cand_dir / name, phase, c["cell"], sites, None, {"Rwp": f"{c['rwp']:.3f} %"}
        )
        dist = report.structure_distance(c, chosen[0], phase)
        doc["candidates"].append({"rank": rank, "trial": c["trial"], "rwp": c["rwp"], "file": name,
                                  "distance_to_best_A": dist})  # fmt: skip
    report.plot_mds(outdir / "candidates_mds.png", records, chosen, phase, seed)
    report.write_json(outdir / "report.json", doc)
    return doc


def _gsas2_check(model, problem) -> dict:
    """The best native model computed by GSAS-II, when it is installed (:mod:`crosscheck`)."""
    from xtal_cli.refine import gsas2

    if model is None:
        return {"skipped": "the study ran on GSAS-II itself"}
    if not gsas2.available():
        return {"skipped": "GSAS-II is not importable"}
    from xtal_cli.refine.crosscheck import evaluate_in_gsas2

    try:
        return evaluate_in_gsas2(model, problem).summary()
    except XtalError as exc:
        return {"skipped": str(exc)}


class _Fixed:
    """A stand-in trial that replays stored parameters through :func:`bbo.suggest`."""

    def __init__(self, params: dict):
        self.params = params

    def suggest_float(self, name, low, high):
        return self.params[name]

    def suggest_int(self, name, low, high):
        return self.params[name]

    def suggest_categorical(self, name, choices):
        return self.params[name]
