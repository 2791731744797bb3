"""xtal: powder X-ray diffraction from the command line and from Python.

The ``xtal`` command (:mod:`xtal_cli.cli`) is a thin layer over this library. A notebook
session from a measured scan to a ranked symmetry and a refinement::

    import xtal_cli as xtal

    scan = xtal.read_scan("Y2O3.xy", wavelength="CuKa")           # Kα1+Kα2 lab scan
    xtal.builtin_symmetry_model().predict(scan)[0].crystal_systems  # shipped profile CNN
    patterns = xtal.simulate(xtal.builtin_structures(limit=500), augment=True)
    features = xtal.featurize(patterns, source="profile", lattices=True)
    model = xtal.SymmetryModel(n_estimators=100, seed=0).fit(features)
    model.predict(scan, top=3)[0].crystal_systems                  # [("cubic", 0.5), ...]
    model.save("symmetry.h5")                                      # arrays + JSON, no pickle
    report = xtal.refine_bbo("Y2O3.xy", "Y2O3.cif", "INST_XRY.PRM", "y2o3-bbo/", trials=50)
    mix = xtal.identify_phases(xtal.read_scan("mix.xrdml"), xtal.load_candidates(["refs/"]))
    [(p.formula, p.weight_fraction) for p in mix.best.phases]     # [("NiO", 0.60), ...]
    groups = xtal.cluster_by_property(xtal.describe_structures("mp.csv.gz"), "band_gap")

Names are imported on first use, so ``import xtal_cli`` stays fast. The physics core (pseudo-Voigt,
TCH and Caglioti widths, the Kα doublet, FCJ asymmetry) is :mod:`xtal_cli.xrd.lineshape`; see
docs/api.md for the whole API.
"""

__version__ = "0.1.0"

# public name -> "module:attribute"; resolved lazily by __getattr__
_API = {
    # reading data
    "read_scan": "xtal_cli.api:read_scan",
    "Scan": "xtal_cli.io.scans:Scan",
    "builtin_structures": "xtal_cli.api:builtin_structures",
    "read_patterns": "xtal_cli.io.h5:read_patterns",
    "write_patterns": "xtal_cli.io.h5:write_patterns",
    "PatternSet": "xtal_cli.io.h5:PatternSet",
    # simulation
    "simulate": "xtal_cli.api:simulate",
    "SimulationSettings": "xtal_cli.xrd.simulate:SimulationSettings",
    "ProfileSettings": "xtal_cli.xrd.profile:ProfileSettings",
    "AugmentSettings": "xtal_cli.xrd.augment:AugmentSettings",
    "compute_sticks": "xtal_cli.xrd.sticks:compute_sticks",
    # peaks and features
    "find_peaks": "xtal_cli.api:find_peaks",
    "featurize": "xtal_cli.api:featurize",
    "FeatureSettings": "xtal_cli.symmetry.features:FeatureSettings",
    "FeatureSet": "xtal_cli.symmetry.features:FeatureSet",
    "read_features": "xtal_cli.symmetry.features:read_features",
    "write_features": "xtal_cli.symmetry.features:write_features",
    # symmetry
    "SymmetryModel": "xtal_cli.symmetry.estimator:SymmetryModel",
    "Prediction": "xtal_cli.symmetry.predict:Prediction",
    "train_symmetry": "xtal_cli.symmetry.train:train_symmetry",
    "TrainOptions": "xtal_cli.symmetry.train:TrainOptions",
    "ProfileSymmetryModel": "xtal_cli.symmetry.profile_model:ProfileSymmetryModel",
    "load_symmetry_model": "xtal_cli.symmetry.profile_model:load_symmetry_model",
    "builtin_symmetry_model": "xtal_cli.api:builtin_symmetry_model",
    "train_profile_model": "xtal_cli.symmetry.profile_model:train_profile_model",
    "CNNTrainSettings": "xtal_cli.symmetry.profile_model:CNNTrainSettings",
    "QGrid": "xtal_cli.symmetry.qgrid:QGrid",
    # refinement
    "refine_bbo": "xtal_cli.api:refine_bbo",
    "Space": "xtal_cli.refine.bbo:Space",
    "RietveldModel": "xtal_cli.refine.engine:RietveldModel",
    "weight_fractions": "xtal_cli.refine.fractions:weight_fractions",
    # phase identification
    "load_candidates": "xtal_cli.identify.candidates:load_candidates",
    "identify_phases": "xtal_cli.identify.search:identify",
    "IdentifySettings": "xtal_cli.identify.search:IdentifySettings",
    "Identification": "xtal_cli.identify.search:Identification",
    # embeddings
    "load_embedder": "xtal_cli.api:load_embedder",
    "Embedder": "xtal_cli.embed.infer:Embedder",
    "read_embeddings": "xtal_cli.embed.store:read_embeddings",
    "EmbeddingSet": "xtal_cli.embed.store:EmbeddingSet",
    "open_index": "xtal_cli.embed.search:open_index",
    # descriptors and property-dependent clusters
    "describe_structures": "xtal_cli.api:describe_structures",
    "DescriptorSet": "xtal_cli.describe.store:DescriptorSet",
    "read_descriptors": "xtal_cli.describe.store:read_descriptors",
    "cluster_by_property": "xtal_cli.api:cluster_by_property",
    "ClusterSettings": "xtal_cli.cluster.run:ClusterSettings",
    "PropertyClusters": "xtal_cli.cluster.zspace:PropertyClusters",
    # template-based structure prediction (CSPML pair classifier + a joint embedding)
    "train_templates": "xtal_cli.api:train_templates",
    "TemplateSettings": "xtal_cli.templates.train:TemplateSettings",
    "PairSettings": "xtal_cli.templates.pairs:PairSettings",
    "EmbeddingSettings": "xtal_cli.templates.embedding:EmbeddingSettings",
    "TemplatePredictor": "xtal_cli.templates.predict:TemplatePredictor",
    "Candidate": "xtal_cli.templates.predict:Candidate",
    # one-phase detectors (synthetic mixtures, a 1D CNN)
    "train_detector": "xtal_cli.detect.train:train_detector",
    "DetectorTrainSettings": "xtal_cli.detect.train:DetectorTrainSettings",
    "MixtureSettings": "xtal_cli.detect.mixtures:MixtureSettings",
    "load_detector": "xtal_cli.detect.detector:load_detector",
    # errors
    "XtalError": "xtal_cli.errors:XtalError",
    "ParameterError": "xtal_cli.errors:ParameterError",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'xtal_cli' has no attribute {name!r}")
    import importlib

    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
