"""Phase identification of many scans: one worker per scan, failures recorded, resumable.

Scans are independent, so each is answered in a joblib worker (local processes, or a dask
cluster) with the candidates loaded once by the caller. A scan that cannot be answered (an
unreadable file, no wavelength, no candidate reflection in its range, a refinement that timed
out) becomes a failure record and the others go on. A scan folder holding a ``report.json`` is
finished: ``resume`` keeps it, ``overwrite`` answers it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.identify import report
from xtal_cli.parallel import parallel_backend


@dataclass
class ScanJob:
    """What every worker needs, the same for all scans of a batch."""

    candidates: list
    settings: object  # IdentifySettings
    wavelength: str | None = None  # applies to scans whose file gives none
    instrument: object | None = None  # Instrument; None: the lab default from each scan
    require: tuple = ()
    limits: tuple | None = None
    timeout: float | None = None
    run: dict = dataclasses.field(default_factory=dict)  # stored in every report.json
    token: str = ""  # names this batch's reflection cache in each worker process


_STICKS: dict = {"token": None, "cache": {}}  # per process: candidates' reflections, one batch


def _sticks_cache(token: str) -> dict:
    """The reflection cache of batch *token* in this process (a worker answers many scans)."""
    if _STICKS["token"] != token:
        _STICKS["token"], _STICKS["cache"] = token, {}
    return _STICKS["cache"]


def _read(path: Path, job: ScanJob):
    from xtal_cli.symmetry.features import read_scan_with

    scan = read_scan_with(path, job.wavelength)
    inst = job.instrument
    if scan.wavelength is None and inst is not None:  # the instrument file states it
        scan.wavelength, scan.wavelength2 = inst.lam1, inst.lam2
        scan.meta["wavelength_source"] = "instrument"
    if scan.wavelength is None:
        raise XtalError(
            f"{path}: the file gives no wavelength; pass --wavelength (Å, or a line name: "
            "CuKa for a tube's Kα1+Kα2, CuKa1 for one line)"
        )
    if job.limits is not None:
        lo, hi = job.limits
        a, b = float(scan.two_theta[0]), float(scan.two_theta[-1])
        if hi <= a or lo >= b:
            raise XtalError(
                f"{path}: the 2θ range {lo:g}-{hi:g}° lies outside the scan ({a:g}-{b:g}°)"
            )
    return scan


def answer_scan(path: Path, folder: Path, job: ScanJob) -> dict:
    """Identify the phases of one scan, write its folder and return its record; any error is
    returned as a failure record (the batch goes on)."""
    from xtal_cli.identify.search import identify

    (folder / report.REPORT).unlink(missing_ok=True)  # a failed rerun must not look finished
    try:
        scan = _read(path, job)
        ident = identify(
            scan,
            job.candidates,
            job.settings,
            instrument=job.instrument,
            require=list(job.require),
            limits=job.limits,
            timeout=job.timeout,
            sticks_cache=_sticks_cache(job.token),
        )
        doc = report.write_scan_outputs(folder, ident, job.run)
    except XtalError as exc:
        return report.failure_record(str(path), folder, str(exc))
    except Exception as exc:  # recorded per scan like simulate's items; the batch goes on
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"internal error ({type(exc).__name__}: {text[:300]}); please report it"
        return report.failure_record(str(path), folder, f"{path}: {reason}")
    return report.record_from_report(doc, folder)


def identify_batch(
    scans: list[Path],
    outdir: Path,
    job: ScanJob,
    *,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Answer every scan of *scans* into ``outdir/<scan stem>/`` and write
    ``outdir/summary.json``; returns one record per scan, in input order.

    Finished scans (a ``report.json`` in their folder) are an error unless *resume* (keep
    them) or *overwrite* (answer them again) says what to do with them.
    """
    import joblib

    if backend not in ("loky", "dask"):
        raise ParameterError("backend", backend, "use loky or dask")
    if scheduler and backend != "dask":
        raise ParameterError("scheduler", scheduler, "is for --backend dask")
    outdir = Path(outdir)
    scans = list(dict.fromkeys(Path(s) for s in scans))
    folders = [outdir / name for name in report.scan_folders(scans)]
    done = finished_scans(scans, outdir, resume=resume, overwrite=overwrite)
    records: list[dict | None] = [None] * len(scans)
    outdir.mkdir(parents=True, exist_ok=True)
    for i, doc in done.items():
        records[i] = {**report.record_from_report(doc, folders[i]), "resumed": True}
        if on_done:
            on_done(records[i])
    todo = [i for i in range(len(scans)) if i not in done]
    try:
        if todo:
            n_jobs = min(jobs, len(todo)) if backend == "loky" else jobs
            with parallel_backend(backend, scheduler, n_jobs):
                parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                tasks = (joblib.delayed(_indexed)(i, scans[i], folders[i], job) for i in todo)
                for i, rec in parallel(tasks):
                    records[i] = {**rec, "resumed": False}
                    if on_done:
                        on_done(records[i])
    finally:  # an interrupted batch still says what it answered
        stopped = "not run (the batch stopped before this scan)"
        out = [
            r if r is not None else report.failure_record(str(s), f, stopped)
            for r, s, f in zip(records, scans, folders)
        ]
        report.write_summary(outdir, out, job.run)
    return out


def finished_scans(
    scans: list[Path], outdir: Path, *, resume: bool = False, overwrite: bool = False
) -> dict[int, dict]:
    """Index -> report of the scans already answered in *outdir* that are to be kept; an error
    when there are some and neither *resume* nor *overwrite* says what to do with them (so a
    command can check before it loads the candidates)."""
    if resume and overwrite:
        raise ParameterError("overwrite", overwrite, "cannot be combined with --resume")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise XtalError(f"{outdir}: exists and is not a folder; give an output folder")
    if overwrite or not outdir.exists():
        return {}
    scans = list(dict.fromkeys(Path(s) for s in scans))
    done = {}
    for i, name in enumerate(report.scan_folders(scans)):
        doc = report.read_report(outdir / name)
        if doc is not None:
            done[i] = doc
    if done and not resume:
        raise XtalError(
            f"{outdir}: already holds the answers for {len(done)} of these scans; pass "
            "--resume to keep them and answer the rest, or --overwrite to answer all again"
        )
    return done


def _indexed(i: int, path: Path, folder: Path, job: ScanJob) -> tuple[int, dict]:
    return i, answer_scan(path, folder, job)
