"""The public Python API: what a notebook session calls, and what the CLI commands call too.

Everything here takes and returns plain objects (numpy arrays, dataclasses, pymatgen
Structures); nothing prints, exits or switches a plotting backend. A session from a measured scan
to a ranked symmetry and a refinement::

    import xtal_cli as xtal

    scan = xtal.read_scan("Y2O3.xy", wavelength="CuKa")
    patterns = xtal.simulate(xtal.builtin_structures("mp-sample", limit=500), augment=True)
    features = xtal.featurize(patterns, source="profile", lattices=True)
    model = xtal.SymmetryModel(n_estimators=100, seed=0).fit(features)
    best = model.predict(scan, top=3)[0]
    report = xtal.refine_bbo("Y2O3.xy", "Y2O3.cif", "INST_XRY.PRM", "y2o3-bbo/", trials=20)
"""

from __future__ import annotations

import os
from pathlib import Path

from xtal_cli.errors import XtalError


def read_scan(path: str | os.PathLike, wavelength: str | float | None = None):
    """Read a measured pattern (.xy, .xrdml, .raw, .uxd, .ras, .gsa/.fxye, pdCIF, CSV).

    *wavelength* (a line name such as ``CuKa1`` or a value in Å) applies when the file gives
    none; a Kα doublet name (``CuKa``) marks Kα1 + Kα2 radiation, so Kα2 is stripped before
    peak picking. Returns a :class:`~xtal_cli.io.scans.Scan`.
    """
    from xtal_cli.symmetry.features import read_scan_with

    return read_scan_with(Path(path), None if wavelength is None else str(wavelength))


def builtin_structures(name: str = "mp-sample", *, limit: int | None = None) -> list:
    """The structures of a built-in set (``mp-sample``: 2,500 Materials Project entries) as
    :class:`~xtal_cli.io.structures.StructureItem` records, parsed lazily by :func:`simulate`."""
    from xtal_cli.io.structures import collect_items

    return collect_items([], [name], limit=limit)


def _items(structures) -> list:
    """StructureItems from pymatgen Structures, paths (CIF/CSV/JSON) or StructureItems."""
    from xtal_cli.io.structures import StructureItem, collect_items, unique_ids

    if isinstance(structures, (str, os.PathLike)) or hasattr(structures, "lattice"):
        structures = [structures]
    items = []
    for i, s in enumerate(structures):  # in the order given: ids and augmentation draws follow it
        if isinstance(s, StructureItem):
            items.append(s)
        elif isinstance(s, (str, os.PathLike)):
            items.extend(collect_items([str(s)]))
        elif hasattr(s, "as_dict") and hasattr(s, "lattice"):  # a pymatgen Structure
            items.append(StructureItem(f"structure{i}", "json", s.as_dict(), "memory"))
        else:
            raise XtalError(
                f"structures[{i}]: a {type(s).__name__}; give pymatgen Structures, paths or "
                "StructureItems"
            )
    if not items:
        raise XtalError("structures: empty; give at least one structure")
    return unique_ids(items)


def simulate(
    structures,
    *,
    wavelength: str | float = "CuKa1",
    two_theta_range: tuple[float, float] = (0.0, 90.0),
    engine: str | None = None,
    symprec: float = 0.1,
    profile=None,
    augment: bool = False,
    seed: int = 0,
    jobs: int = 1,
    output: str | os.PathLike | None = None,
    resume: bool = False,
    chunk_size: int = 64,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress=None,
    extra_attrs: dict | None = None,
    items_key: str | None = None,
):
    """Powder patterns and spglib labels of *structures*: a :class:`~xtal_cli.io.h5.PatternSet`
    in memory, or with *output* a :class:`~xtal_cli.xrd.simulate.SimulationSummary` (the
    patterns on disk, read back with :func:`~xtal_cli.io.h5.read_patterns` or ``.load()``).

    *structures*: pymatgen Structures, CIF/CSV/JSON paths, :func:`builtin_structures`, or an
    iterator of StructureItems (:func:`xtal_cli.io.structures.iter_items`; read lazily, with
    *items_key* its fingerprint for *resume*).
    *profile*: a :class:`~xtal_cli.xrd.profile.ProfileSettings` (or ``True`` for the default one
    over *two_theta_range*) to draw profiles too; its ``ka2`` puts the sticks at Kα1.
    *augment*: per-pattern random instrument and sample effects (implies a profile).
    With *output* the patterns are also written as ``patterns/1``, chunk by chunk, so an
    interrupted run continues with *resume*. Items that fail are listed in
    ``PatternSet.failures``.
    """
    from xtal_cli.parallel import worker_count
    from xtal_cli.xrd.profile import ProfileSettings
    from xtal_cli.xrd.simulate import SimulationSettings, run_simulation
    from xtal_cli.xrd.sticks import DEFAULT_ENGINE
    from xtal_cli.xrd.units import resolve_wavelength

    wl, label = resolve_wavelength(wavelength)
    lo, hi = (float(v) for v in two_theta_range)
    if profile is True or (augment and profile in (None, False)):
        step = ProfileSettings.step
        profile = ProfileSettings(two_theta_min=max(lo, step), two_theta_max=hi, step=step)
    elif profile is False:
        profile = None
    if profile is not None and profile.ka2 is not None:
        wl = profile.ka2[0]  # sticks at Kα1; the profile adds Kα2
    settings = SimulationSettings(
        wavelength=wl,
        wavelength_label=label,
        two_theta_min=lo,
        two_theta_max=hi,
        engine=engine or DEFAULT_ENGINE,
        symprec=symprec,
        seed=seed,
        profile=profile,
        augment=augment,
    )
    # duplicates: keyword pass-through to run_simulation (deliberate)
    return run_simulation(
        structures if _is_stream(structures) else _items(structures),
        settings,
        output,
        jobs=worker_count(jobs),
        resume=resume,
        chunk_size=chunk_size,
        backend=backend,
        scheduler=scheduler,
        on_progress=on_progress,
        extra_attrs=extra_attrs,
        items_key=items_key,
    )


def _is_stream(structures) -> bool:
    """An iterator (a generator of StructureItems): consumed lazily, never listed."""
    return not isinstance(structures, (str, os.PathLike)) and iter(structures) is structures


def find_peaks(scan, **options):
    """Background removal, Kα2 stripping (when the scan carries Kα2) and peak picking on a
    :class:`~xtal_cli.io.scans.Scan`; returns :class:`~xtal_cli.xrd.peaks.Peaks`. *options* are
    those of :func:`xtal_cli.xrd.peaks.find_peaks` (``prominence``, ``min_relative_height`` …)."""
    from xtal_cli.xrd.peaks import find_scan_peaks

    return find_scan_peaks(scan, **options)


def featurize(
    data,
    settings=None,
    *,
    source: str = "auto",
    ka2: str = "auto",
    prominence: float | None = None,
    jobs: int = 1,
    progress=None,
    **options,
):
    """Peak features of simulated patterns or measured scans (a
    :class:`~xtal_cli.symmetry.features.FeatureSet`).

    *data*: a :class:`~xtal_cli.io.h5.PatternSet` (sticks, or its profiles with
    ``source="profile"``), one :class:`~xtal_cli.io.scans.Scan` or a list of them. *settings*: a
    :class:`~xtal_cli.symmetry.features.FeatureSettings`, or its fields as keyword *options*
    (``unit``, ``n_peaks``, ``lattices`` …); for a PatternSet the 2θ window defaults to the
    simulated range. ``ka2``/``prominence`` apply to scans (see ``xtal featurize --help``).
    """
    from dataclasses import asdict, replace

    from xtal_cli.io.h5 import PatternSet
    from xtal_cli.io.scans import Scan
    from xtal_cli.parallel import worker_count
    from xtal_cli.symmetry.features import FeatureSettings, featurize_patterns, featurize_scans

    if settings is not None and options:
        settings = replace(settings, **options)
    if isinstance(data, PatternSet):
        kw = asdict(settings) if settings is not None else dict(options)
        for derived in ("wavelength", "wavelength_label"):  # the patterns' own
            kw.pop(derived, None)
        lo, hi = kw.pop("two_theta_min", None), kw.pop("two_theta_max", None)
        return featurize_patterns(
            data,
            two_theta_range=(lo, hi),
            source=source,
            progress=progress,
            n_jobs=worker_count(jobs),
            **kw,
        )
    scans = [data] if isinstance(data, Scan) else list(data)
    if not scans:
        raise XtalError("data: no scans given")
    if settings is None:
        ref = scans[0].wavelength
        if ref is None:
            raise XtalError(
                f"{scans[0].path}: the file gives no wavelength; read it with one "
                "(wavelength=, or --wavelength on the command line)"
            )
        kw = {"wavelength": ref, "wavelength_label": f"{ref:g}", **options}
        settings = FeatureSettings(**kw)
    return featurize_scans(scans, settings, ka2=ka2, prominence=prominence)


def builtin_symmetry_model():
    """The symmetry model shipped in the package: a profile CNN for measured scans of any window
    (docs/measured-data.md); ``.predict(scan)`` ranks crystal systems and space groups."""
    from xtal_cli.symmetry.profile_model import builtin_model_path, load_symmetry_model

    return load_symmetry_model(builtin_model_path())


def refine_bbo(
    pattern: str | os.PathLike,
    cif: str | os.PathLike,
    instrument: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    trials: int = 200,
    seed: int = 0,
    jobs: int = 1,
    two_theta_range: tuple[float, float] | None = None,
    engine: str = "native",
    space=None,
    storage: str | None = None,
    study_name: str = "refine-bbo",
    resume: bool = False,
    k_best: int = 5,
    on_trial=None,
    log=None,
    deterministic: bool = False,
) -> dict:
    """Automatic Rietveld refinement (refine-bbo): an Optuna TPE study over refinement
    configurations of one phase, then the best refinement written to *output* (refined CIF,
    report.json, plots, trials.csv, the study). *jobs* processes share the study (an Optuna
    storage; give *storage* to spread one study over machines); with *deterministic* they refine
    rounds of suggestions from one sampler instead, so the seed fixes the study. Returns the
    report.json content:
    ``report["best"]`` holds ``rwp``, ``rp``, ``gof``, ``cell`` and the chosen configuration.

    *instrument* None: a laboratory Bragg-Brentano Cu Kα1/Kα2 default
    (:func:`~xtal_cli.refine.instrument.default_instrument`, the scan header's wavelengths
    when it has them); *log* is told its values, and report.json records them."""
    from xtal_cli.parallel import worker_count
    from xtal_cli.refine.bbo import Problem, Space
    from xtal_cli.refine.run import run_refine_bbo

    limits = None if two_theta_range is None else tuple(float(v) for v in two_theta_range)
    inst = None if instrument is None else str(instrument)
    problem = Problem(str(pattern), str(cif), inst, limits)
    log = log or (lambda message: None)
    if instrument is None:
        log(f"refine-bbo: no instrument file; {problem.instrument_parameters().describe()} (the "
            "laboratory default, see report.json)")  # fmt: skip
    # duplicates: keyword pass-through to run_refine_bbo (deliberate)
    return run_refine_bbo(
        problem,
        output,
        trials=trials,
        seed=seed,
        workers=worker_count(jobs),
        storage=storage,
        study_name=study_name,
        resume=resume,
        engine=engine,
        space=space or Space(),
        k_best=k_best,
        on_trial=on_trial,
        log=log,
        deterministic=deterministic,
    )


def load_embedder(path: str | os.PathLike, device: str = "cpu"):
    """A trained structure/XRD embedding model (the ``model.pt`` of ``xtal train-embed``) as an
    :class:`~xtal_cli.embed.infer.Embedder`: ``embed_graphs`` / ``embed_profiles``."""
    from xtal_cli.embed.infer import load_model

    return load_model(path, device=device)


def describe_structures(
    structures,
    *,
    preset: str = "full",
    symprec: float = 0.01,
    jobs: int = 1,
    output: str | os.PathLike | None = None,
    resume: bool = False,
    chunk_size: int = 64,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress=None,
):
    """Composition and structure descriptors (matminer) of *structures* (pymatgen Structures,
    CIF/CSV/JSON paths or :func:`builtin_structures`), as a
    :class:`~xtal_cli.describe.store.DescriptorSet`; CSV columns such as ``band_gap`` are carried
    in ``meta``. *preset* ``full`` includes CrystalNN local environments; ``fast`` leaves them out.
    With *output* the set is also written (descriptors/1), resumable chunk by chunk."""
    from xtal_cli.describe.descriptors import DescriptorSettings
    from xtal_cli.describe.run import run_description
    from xtal_cli.parallel import worker_count

    return run_description(
        _items(structures),
        DescriptorSettings(preset=preset, symprec=symprec),
        output,
        jobs=worker_count(jobs),
        resume=resume,
        chunk_size=chunk_size,
        backend=backend,
        scheduler=scheduler,
        on_progress=on_progress,
    )


def train_templates(
    structures,
    output: str | os.PathLike,
    settings=None,
    *,
    jobs: int = 1,
    resume: bool = False,
    on_progress=None,
) -> dict:
    """A template folder for structure prediction (what ``xtal train-templates`` runs) from
    *structures* (pymatgen Structures, CIF/CSV/JSON paths or :func:`builtin_structures`);
    *settings* a :class:`~xtal_cli.templates.train.TemplateSettings`. Returns the manifest
    (counts, held-out pair accuracy). Load the folder with
    :class:`~xtal_cli.templates.predict.TemplatePredictor`."""
    from xtal_cli.parallel import worker_count
    from xtal_cli.templates.train import train_templates as run

    return run(_items(structures), output, settings, jobs=worker_count(jobs), resume=resume,
               progress=on_progress)  # fmt: skip


def cluster_by_property(
    descriptors, properties, *, n_clusters: int = 20, select=(), seed: int = 0, **options
):
    """Property-dependent clusters (random-forest leaf encoding) of a
    :class:`~xtal_cli.describe.store.DescriptorSet` or descriptors/1 file: a
    :class:`~xtal_cli.cluster.run.ClusterResult` with labels, held-out R^2 (against k-means on
    the descriptors) and, per cluster, the property's distribution, the distinguishing
    descriptors and typical materials. *options* go to
    :class:`~xtal_cli.cluster.run.ClusterSettings` (``n_estimators``, ``min_samples_leaf``,
    ``test_fraction``, ``top``, ``alpha``)."""
    from xtal_cli.cluster.run import ClusterSettings, cluster_materials
    from xtal_cli.describe.store import read_descriptors

    source = "descriptors"
    if isinstance(descriptors, (str, os.PathLike)):
        source = str(descriptors)
        descriptors = read_descriptors(descriptors)
    if isinstance(properties, str):
        properties = (properties,)
    if isinstance(select, str):
        select = (select,)
    settings = ClusterSettings(
        tuple(properties), n_clusters=n_clusters, select=tuple(select), seed=seed, **options
    )
    return cluster_materials(descriptors, settings, source=source)
