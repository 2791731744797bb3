"""``ProfileSymmetryModel``: crystal system and space group from the whole profile (a 1D CNN).

The trees read a list of picked peaks, which loses what overlapping, broadened lines hold and
makes the answer depend on where a scan stops (the peak count). This model reads the profile
itself on a fixed Q grid with a window mask (:mod:`~xtal_cli.symmetry.qgrid`,
:mod:`~xtal_cli.symmetry.cnn`), and is trained on augmented simulated profiles
(``xtal simulate --augment``) with a random measured window drawn per pattern and per step, from
the range real scans have: a start anywhere in Cu Kα 2θ 3–20° and an end anywhere in 50–150°
(clipped to the grid), in Q so that the same holds at any wavelength. The held-out patterns are
whole formulas (every augmented copy of a structure on one side), scored with random windows
too. Probabilities are temperature-scaled on a validation split of the training formulas, and
the expected calibration error on the held-out patterns is reported.

Model files are the same ``symmetry-model/2`` HDF5 layout as the trees' (metadata ``model``:
``cnn``; the network's weights as plain arrays, nothing unpickled), so ``predict-symmetry``
takes either; :func:`load_symmetry_model` opens both.

Lab scans with Cu Kα1+Kα2 are read as they are (the training draws included the doublet); the
Kα2 of another tube (Mo, Co, …), whose split in Q differs, is stripped first.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.symmetry.predict import Prediction
from xtal_cli.symmetry.qgrid import QGrid, resample_profiles
from xtal_cli.xrd.units import WAVELENGTHS

CU_KA1 = WAVELENGTHS["CuKa1"]
CU_SPLIT = WAVELENGTHS["CuKa2"] / WAVELENGTHS["CuKa1"]
SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal",
           "cubic")  # fmt: skip
CHECKPOINT_KIND = "xtal-symmetry-cnn-checkpoint"
BUILTIN_MODEL = "symmetry-cnn.h5"
VAL_STREAM, TEST_STREAM = 1_000_003, 2_000_003  # seed-stream offsets (never an epoch number)


def _positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(name, value, f"must be a whole number of at least {minimum}")


@dataclass
class CNNTrainSettings:
    """How :func:`train_profile_model` trains; checked on construction, errors name the field.

    Windows are Cu Kα1 2θ degrees (converted to Q, so they mean the same Q range at any
    wavelength): each training pattern, every time it is drawn, keeps only a random window
    starting in *window_start* and ending in *window_end*; *p_full* keeps the whole profile.
    """

    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    test_size: float = 0.2
    val_fraction: float = 0.05
    window_start: tuple[float, float] = (3.0, 20.0)
    window_end: tuple[float, float] = (50.0, 150.0)
    p_full: float = 0.15
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            _positive_int(name, getattr(self, name))
        if self.batch_size < 2:
            raise ParameterError("batch_size", self.batch_size, "must be at least 2 (batch norm)")
        if not self.lr > 0:
            raise ParameterError("lr", self.lr, "must be positive")
        if not self.weight_decay >= 0:
            raise ParameterError("weight_decay", self.weight_decay, "must be zero or positive")
        if self.schedule not in ("cosine", "constant"):
            raise ParameterError("schedule", self.schedule, "use cosine or constant")
        if not 0 < self.test_size < 1:
            raise ParameterError("test_size", self.test_size, "must be within (0, 1)")
        if not 0 < self.val_fraction < 0.5:
            raise ParameterError("val_fraction", self.val_fraction, "must be within (0, 0.5)")
        if not 0 <= self.p_full <= 1:
            raise ParameterError("p_full", self.p_full, "must be a probability within 0-1")
        for name in ("window_start", "window_end"):
            v = getattr(self, name)
            if not (np.shape(v) == (2,) and 0 < v[0] <= v[1] < 180):
                raise ParameterError(name, v, "give (low, high) 2θ degrees, 0 < low <= high < 180")
        if not self.window_start[1] < self.window_end[0]:
            raise ParameterError(
                "window_start", self.window_start, "must end below the start of window_end"
            )
        if self.device not in ("cpu", "cuda"):
            raise ParameterError("device", self.device, "use cpu or cuda")
        if self.threads is not None:
            _positive_int("threads", self.threads)
        _positive_int("seed", self.seed, 0)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- training data


@dataclass
class ProfileData:
    """Profiles on a Q grid with their labels, from one or more ``patterns/1`` files."""

    ids: np.ndarray
    values: np.ndarray  # (M, n) float16, 0..1 inside the covered bins
    bins: np.ndarray  # (M, 2) first, stop covered bins
    crystal_system: np.ndarray  # str
    space_group: np.ndarray  # int
    groups: np.ndarray  # formula: the held-out split keeps a formula on one side
    symbols: dict[int, str] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def load_profile_data(paths, grid: QGrid, progress=None, checksums: bool = False) -> ProfileData:
    """Every profile of the ``patterns/1`` files at *paths* (``simulate --augment``) on *grid*.

    A drawn narrower window (``extra/augment``) becomes the covered range; Kα2 stays (the model
    learns the Cu doublet as lab scans have it). *checksums*: record each file's SHA-256 in
    ``sources`` (training provenance; reading a file again to predict needs none).
    """
    from xtal_cli.io.bundles import file_sha256
    from xtal_cli.io.h5 import read_patterns
    from xtal_cli.symmetry.features import profile_peak_options

    parts, sources, symbols = [], [], {}
    for path in paths:
        ps = read_patterns(path, structures=False, sticks=False)
        if ps.profiles is None or ps.profile_grid is None or not len(ps):
            raise XtalError(
                f"{path}: holds no profiles; simulate with --augment (or --profile) to train "
                "the cnn model"
            )
        wavelength = float(ps.attrs.get("wavelength", CU_KA1))
        windows = [profile_peak_options(ps, i, wavelength, {})[1] for i in range(len(ps))]
        values, bins = resample_profiles(grid, ps.profile_grid, ps.profiles, wavelength, windows)
        sg = np.asarray(ps.labels["space_group"]).astype(np.int64)
        for num, sym in zip(sg, np.asarray(ps.labels["space_group_symbol"]).astype(str)):
            symbols.setdefault(int(num), sym)
        parts.append((np.asarray(ps.ids).astype(str), values, bins,
                      np.asarray(ps.labels["crystal_system"]).astype(str), sg,
                      np.asarray(ps.labels["formula"]).astype(str)))  # fmt: skip
        sha = file_sha256(path) if checksums else None
        sources.append({"file": Path(path).name, "sha256": sha, "n": len(ps),
                        "seed": ps.attrs.get("seed"),
                        "augment": "augment" in ps.extra})  # fmt: skip
        if progress:
            progress(1)
    cols = [np.concatenate(c) for c in zip(*parts)]
    bad = sorted(set(cols[3]) - set(SYSTEMS))
    if bad:
        raise XtalError(f"{paths[0]}: unknown crystal system label(s) {', '.join(bad[:3])}")
    return ProfileData(*cols, symbols=symbols, sources=sources)


def split_groups(data: ProfileData, test_size: float, val_fraction: float, seed: int):
    """(train, validation, test) row indices; a formula (every copy of it) lies in one only."""
    rng = np.random.default_rng(seed)
    formulas = np.unique(data.groups)
    order = rng.permutation(len(formulas))
    n_test = max(1, int(round(test_size * len(formulas))))
    n_val = max(1, int(round(val_fraction * (len(formulas) - n_test))))
    side = np.zeros(len(formulas), dtype=np.int8)  # 0 train, 1 validation, 2 test
    side[order[:n_test]] = 2
    side[order[n_test : n_test + n_val]] = 1
    where = side[np.searchsorted(formulas, data.groups)]
    return tuple(np.flatnonzero(where == k) for k in (0, 1, 2))


def draw_windows(rng, bins: np.ndarray, grid: QGrid, settings: CNNTrainSettings) -> np.ndarray:
    """Random measured windows (first, stop bins) within each row's own coverage."""
    from xtal_cli.xrd.units import from_two_theta

    n = len(bins)
    lo_tt = rng.uniform(*settings.window_start, n)
    hi_tt = np.minimum(rng.uniform(*settings.window_end, n), 179.0)
    lo = np.ceil((from_two_theta(lo_tt, CU_KA1, "q") - grid.q_min) / grid.step)
    hi = np.floor((from_two_theta(hi_tt, CU_KA1, "q") - grid.q_min) / grid.step)
    full = rng.random(n) < settings.p_full
    lo = np.where(full, 0, np.clip(lo, 0, grid.n)).astype(np.int64)
    hi = np.where(full, grid.n, np.clip(hi, 0, grid.n)).astype(np.int64)
    first = np.maximum(lo, bins[:, 0])
    stop = np.minimum(hi, bins[:, 1])
    return np.stack([first, np.maximum(stop, first)], axis=1)


def _batch(values: np.ndarray, windows: np.ndarray, device):
    """Network inputs (values zeroed outside the window, mask) as float32 tensors."""
    import torch

    v = torch.from_numpy(values.astype(np.float32))
    ar = torch.arange(v.shape[1])
    w = torch.from_numpy(np.asarray(windows, dtype=np.int64))
    mask = ((ar[None, :] >= w[:, :1]) & (ar[None, :] < w[:, 1:])).to(torch.float32)
    return (v * mask).to(device), mask.to(device)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-1 probability: Σ_b (n_b / N) |accuracy_b − confidence_b|, equal-width bins."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T)."""
    best_t, best = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 121)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))
        if nll < best:
            best_t, best = float(t), nll
    return best_t


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- the estimator


class ProfileSymmetryModel:
    """A fitted profile CNN for crystal system and space group, with the trees' predict API.

    Fitted attributes: ``classes_`` (target → labels, the column order of probabilities),
    ``config_`` (:class:`~xtal_cli.symmetry.cnn.CNNConfig`), ``grid_`` (:class:`QGrid`),
    ``temperature_`` (target → T), ``space_group_symbols_``, ``training_`` (seeds, settings,
    data fingerprint, source files, recipe), ``metrics_`` (held-out) and ``net_``.
    """

    model = "cnn"

    def __init__(self, config, grid: QGrid, classes: dict, symbols: dict, net=None):
        self.config_ = config
        self.grid_ = grid
        self.classes_ = classes
        self.space_group_symbols_ = dict(symbols)
        self.temperature_ = {"crystal_system": 1.0, "space_group": 1.0}
        self.temperature_outside_: dict = {}
        self.training_: dict = {}
        self.metrics_: dict = {}
        self.net_ = net

    # -- prediction -----------------------------------------------------------------------------
    def logits(self, values: np.ndarray, windows: np.ndarray, batch_size: int = 256):
        """Raw (crystal system, space group) logits for rows of grid values and windows (batches
        of 256: faster on a CPU than larger ones, whose activations leave the cache)."""
        import torch

        net = self.net_
        net.eval()
        outs_c, outs_s = [], []
        with torch.inference_mode():
            for s in range(0, len(values), batch_size):
                v, m = _batch(values[s : s + batch_size], windows[s : s + batch_size], "cpu")
                c, g = net(v, m)
                outs_c.append(c.numpy())
                outs_s.append(g.numpy())
        if not outs_c:
            return np.zeros((0, len(SYSTEMS))), np.zeros((0, len(self.classes_["space_group"])))
        return np.concatenate(outs_c), np.concatenate(outs_s)

    def predict_proba(self, values: np.ndarray, windows: np.ndarray, outside=None) -> dict:
        """Calibrated probabilities per target, columns in the order of ``classes_``.

        *outside*: per row, True where the window lies outside those the model was trained on;
        those rows get the temperatures calibrated on such windows (flatter, as they should be).
        """
        lc, ls = self.logits(values, windows)
        out = {}
        for target, z in (("crystal_system", lc), ("space_group", ls)):
            t = np.full((len(z), 1), self.temperature_[target])
            if outside is not None and self.temperature_outside_:
                t[np.asarray(outside, dtype=bool)] = self.temperature_outside_[target]
            out[target] = _softmax(z / t)
        return out

    def rank(self, values, windows, top: int = 5, outside=None) -> list[tuple[list, list]]:
        proba = self.predict_proba(values, windows, outside)
        out = []
        cs_names = np.asarray(self.classes_["crystal_system"])
        sg_nums = np.asarray(self.classes_["space_group"])
        k_cs, k_sg = min(top, len(cs_names)), min(top, len(sg_nums))
        for pc, ps in zip(proba["crystal_system"], proba["space_group"]):
            ic = np.argsort(-pc, kind="stable")[:k_cs]
            isg = np.argsort(-ps, kind="stable")[:k_sg]
            out.append((
                [(str(cs_names[i]), float(pc[i])) for i in ic],
                [(int(sg_nums[i]), self.space_group_symbols_.get(int(sg_nums[i]), ""),
                  float(ps[i])) for i in isg],
            ))  # fmt: skip
        return out

    def scan_input(self, scan, ka2: str = "auto") -> tuple[np.ndarray, tuple[int, int], list]:
        """One scan → (grid values, covered bins, warnings); raises when nothing is usable."""
        from xtal_cli.symmetry.features import scan_ka2
        from xtal_cli.xrd.units import from_two_theta, to_two_theta

        if scan.wavelength is None:
            raise XtalError(
                f"{scan.path}: the file gives no wavelength; pass --wavelength (CuKa for a lab "
                "Kα1+Kα2 tube, CuKa1 for monochromated data, or Å)"
            )
        wl = float(scan.wavelength)
        y = np.asarray(scan.counts, dtype=float)
        doublet = scan_ka2(scan, ka2)
        if doublet is not None and abs(doublet[1] / doublet[0] - CU_SPLIT) > 2e-4:
            from xtal_cli.xrd.peaks import strip_ka2

            y = strip_ka2(scan.two_theta, y, *doublet)
        q = from_two_theta(scan.two_theta, wl, "q")
        g = self.grid_
        if q[-1] <= g.q_min or q[0] >= g.q_max:
            span = to_two_theta(np.array([g.q_min, g.q_max]), wl, "q")
            raise XtalError(
                f"the data cover 2θ {scan.two_theta[0]:.4g}-{scan.two_theta[-1]:.4g}° at "
                f"{wl:.5g} Å, outside the model's Q {g.q_min:g}-{g.q_max:g} Å⁻¹ (2θ "
                f"{np.nan_to_num(span[0]):.4g}-{np.nan_to_num(span[1], nan=180):.4g}° here); "
                "check the wavelength"
            )
        values, first, stop = g.resample(q, y)
        seg = values[first:stop]
        top = float(seg.max() - seg.min()) if stop > first else 0.0
        if stop - first < 16 or top <= 0:
            raise XtalError("no signal inside the model's Q range; check the wavelength")
        values[first:stop] = (seg - seg.min()) / top
        return values, (first, stop), self._window_warnings(first, stop, wl)

    def _window_warnings(self, first: int, stop: int, wavelength: float) -> list[str]:
        """Warnings when the covered Q range is outside the windows the model was trained on."""
        from xtal_cli.xrd.units import from_two_theta, to_two_theta

        g = self.grid_
        ws = self.training_.get("settings", {})
        start = ws.get("window_start", (3.0, 20.0))
        end = ws.get("window_end", (50.0, 150.0))
        q_lo, q_hi = g.q_min + first * g.step, g.q_min + stop * g.step
        q_start = float(from_two_theta(start[1], CU_KA1, "q"))
        q_end = float(from_two_theta(end[0], CU_KA1, "q"))
        warnings = []

        def tt(q):
            return f"{float(np.nan_to_num(to_two_theta(q, wavelength, 'q'), nan=180.0)):.4g}°"

        if q_lo > q_start + 2 * g.step:
            warnings.append(
                f"data start at 2θ {tt(q_lo)}, above any window the model was trained on (Q "
                f"{q_start:.2f} Å⁻¹ = {tt(q_start)} here): low-angle lines are missing, so the "
                "ranking is less certain than its probabilities say"
            )
        if q_hi < q_end - 2 * g.step:
            warnings.append(
                f"data end at 2θ {tt(q_hi)}, below any window the model was trained on (Q "
                f"{q_end:.2f} Å⁻¹ = {tt(q_end)} here): the ranking is less certain than its "
                "probabilities say"
            )
        return warnings

    def predict(self, inputs, top: int = 5, *, ka2: str = "auto", prominence=None):
        """Ranked candidates for a :class:`~xtal_cli.io.scans.Scan` or a list of scans.

        Per-scan problems become ``Prediction.error``; a scan outside the trained windows is
        answered with a warning. *prominence* is accepted for the trees' signature and unused.
        """
        from xtal_cli.io.scans import Scan

        self._check_fitted()
        if top < 1:
            raise XtalError(f"top {top}: must be at least 1")
        scans = [inputs] if isinstance(inputs, Scan) else list(inputs)
        rows, preds = [], []
        for i, scan in enumerate(scans):
            pid = str(scan.meta.get("id") or os.path.basename(scan.path) or f"scan{i}")
            try:
                values, window, warnings = self.scan_input(scan, ka2)
            except XtalError as exc:
                msg = str(exc)
                preds.append(
                    Prediction(id=pid, error=msg if msg.startswith(pid) else f"{pid}: {msg}")
                )
                continue
            preds.append(Prediction(id=pid, warnings=warnings))
            rows.append((len(preds) - 1, values, window))
        if rows:
            values = np.stack([r[1] for r in rows])
            windows = np.array([r[2] for r in rows])
            outside = [bool(preds[k].warnings) for k, _, _ in rows]
            counts = _count_peaks(values, windows)
            ranked = self.rank(values, windows, top, outside)
            for (k, _, _), (cs, sg), n in zip(rows, ranked, counts):
                preds[k].crystal_systems, preds[k].space_groups = cs, sg
                preds[k].n_peaks = int(n)
        return preds

    def predict_file(self, path, top: int = 5) -> list[Prediction]:
        """Predictions for every profile of a ``patterns/1`` file (features files are refused)."""
        from xtal_cli.io.h5 import layout_kind

        if layout_kind(path) != "patterns":
            raise XtalError(
                f"{path}: the cnn model reads profiles, not peak features; pass the scans or "
                "the patterns file made by xtal simulate --augment"
            )
        data = load_profile_data([path], self.grid_)
        if not len(data):
            return []
        preds = []
        for pid, (cs, sg) in zip(data.ids, self.rank(data.values, data.bins, top)):
            preds.append(Prediction(id=str(pid), crystal_systems=cs, space_groups=sg))
        return preds

    # -- model files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, compress: int = 4) -> int:
        """Write a ``symmetry-model/2`` file (weights as arrays + JSON); returns its bytes."""
        from xtal_cli.io.bundles import write_model_file
        from xtal_cli.symmetry.cnn import MODEL_FORMAT

        self._check_fitted()
        arrays = {f"net/{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        metadata = {
            "model": "cnn",
            "network_format": MODEL_FORMAT,
            "config": self.config_.to_dict(),
            "grid": self.grid_.as_dict(),
            "classes": {t: np.asarray(v).tolist() for t, v in self.classes_.items()},
            "space_group_symbols": {str(k): v for k, v in self.space_group_symbols_.items()},
            "temperature": self.temperature_,
            "temperature_outside": self.temperature_outside_,
            "training": self.training_,
            "metrics": self.metrics_,
        }
        return write_model_file(path, "symmetry-model", metadata, arrays, compress=compress)

    @classmethod
    def from_file_parts(cls, path, meta: dict, arrays: dict) -> ProfileSymmetryModel:
        """Rebuild from what :func:`~xtal_cli.io.bundles.read_model_file` returned (checked)."""
        import torch

        from xtal_cli.symmetry.cnn import MODEL_FORMAT, CNNConfig, SymmetryNet

        try:
            if int(meta.get("network_format", -1)) != MODEL_FORMAT:
                raise XtalError(
                    f"network format {meta.get('network_format')} is not the {MODEL_FORMAT} this "
                    "xtal reads"
                )
            cfg = CNNConfig.from_dict(meta["config"])
            classes = {
                "crystal_system": np.asarray(meta["classes"]["crystal_system"], dtype=str),
                "space_group": np.asarray(meta["classes"]["space_group"], dtype=np.int64),
            }
            symbols = {int(k): str(v) for k, v in meta["space_group_symbols"].items()}
            net = SymmetryNet(cfg)
            state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                     if k.startswith("net/")}  # fmt: skip
            net.load_state_dict(state, strict=True)
            self = cls(cfg, QGrid(**meta["grid"]), classes, symbols, net)
            self.temperature_ = {k: float(v) for k, v in meta["temperature"].items()}
            self.temperature_outside_ = {
                k: float(v) for k, v in meta.get("temperature_outside", {}).items()
            }
            self.training_ = dict(meta["training"])
            self.metrics_ = dict(meta["metrics"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0][:200]
            raise XtalError(
                f"{path}: incomplete or inconsistent cnn symmetry model ({type(exc).__name__}: "
                f"{reason}); retrain it with xtal train-symmetry --model cnn"
            ) from None
        except XtalError as exc:
            raise XtalError(f"{path}: {exc}; retrain it with xtal train-symmetry") from None
        return self

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise XtalError("this ProfileSymmetryModel has no network; train or load one")

    @property
    def n_train(self) -> int:
        return int(self.training_.get("n_train", 0))


def _count_peaks(values: np.ndarray, windows: np.ndarray, half: int = 4, level=0.05):
    """Lines seen per row: bins that are the maximum within ±*half* bins and above *level* of
    the window's range (the table's count; the network itself reads the whole profile)."""
    v = np.asarray(values, dtype=np.float32)
    windows = np.asarray(windows)
    ar = np.arange(v.shape[1])
    inside = (ar >= windows[:, :1]) & (ar < windows[:, 1:])
    v = np.where(inside, v, -1.0)
    padded = np.pad(v, ((0, 0), (half, half)), constant_values=-1.0)
    local = padded[:, : v.shape[1]].copy()
    for k in range(1, 2 * half + 1):
        np.maximum(local, padded[:, k : k + v.shape[1]], out=local)
    top = (v >= local) & (v > level)
    first = top & ~np.pad(top, ((0, 0), (1, 0)))[:, :-1]  # a flat top counts once
    return first.sum(axis=1).astype(int)


# ----------------------------------------------------------------------------- training


def _checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint.pt")


def train_profile_model(
    patterns: list,
    output,
    settings: CNNTrainSettings | None = None,
    *,
    grid: QGrid | None = None,
    config_overrides: dict | None = None,
    recipe: str = "",
    resume: bool = False,
    report=None,
    log=None,
) -> tuple[ProfileSymmetryModel, dict]:
    """Train the profile CNN on the profiles of *patterns* (``patterns/1`` files) and write the
    model to *output*; returns (model, report dict).

    Each epoch writes ``<output>.checkpoint.pt`` (weights, optimiser, epoch, history); with
    *resume* a run continues from it and sees the same batches and windows an uninterrupted one
    would. *report* is called as ``report(stage, advance=..., total=...)`` for progress.
    """
    import torch

    from xtal_cli.checkpoints import read_checkpoint
    from xtal_cli.io.bundles import fingerprint
    from xtal_cli.io.h5 import atomic_path
    from xtal_cli.schedules import warmup_cosine
    from xtal_cli.symmetry.cnn import CNNConfig, SymmetryNet
    from xtal_cli.symmetry.metrics import classification_metrics

    settings = settings or CNNTrainSettings()
    grid = grid or QGrid()
    output = Path(output)
    log = log or (lambda msg: None)

    def tick(stage, n, total):
        if report:
            report(stage, advance=n, total=total)

    t_start, c_start = time.perf_counter(), time.process_time()
    data = load_profile_data(
        [Path(p) for p in patterns],
        grid,
        progress=lambda n: tick("read profiles", n, len(patterns)),
        checksums=True,
    )
    t_read = time.perf_counter() - t_start
    train, val, test = split_groups(data, settings.test_size, settings.val_fraction, settings.seed)
    if len(train) < settings.batch_size:
        raise XtalError(
            f"only {len(train)} training patterns; the cnn needs at least a batch "
            f"({settings.batch_size}) — simulate more structures or lower --batch-size"
        )
    sg_classes = np.unique(data.space_group[train])
    cs_classes = np.array(SYSTEMS)
    y_cs = np.array([SYSTEMS.index(c) for c in data.crystal_system], dtype=np.int64)
    sg_pos = np.searchsorted(sg_classes, data.space_group)
    sg_known = (sg_pos < len(sg_classes)) & (sg_classes[np.minimum(sg_pos, len(sg_classes) - 1)]
                                              == data.space_group)  # fmt: skip
    y_sg = np.where(sg_known, sg_pos, -1).astype(np.int64)  # -1: a group training never saw
    cfg = CNNConfig(n_points=grid.n, n_systems=len(SYSTEMS), n_space_groups=len(sg_classes),
                    **(config_overrides or {}))  # fmt: skip
    fp = fingerprint(data.ids, data.crystal_system, data.space_group, data.values[:, ::64])
    identity = {"grid": grid.as_dict(), "config": cfg.to_dict(), "fingerprint": fp,
                "settings": {k: v for k, v in settings.to_dict().items()
                             if k not in ("epochs", "device", "threads")}}  # fmt: skip

    device = torch.device(settings.device)
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "cuda", "no CUDA device is available; use cpu")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    net = SymmetryNet(cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    ckpt_path = _checkpoint_path(output)
    start_epoch, history, elapsed = 0, [], 0.0
    if resume and ckpt_path.exists():
        ckpt = read_checkpoint(
            ckpt_path, CHECKPOINT_KIND, identity, what="train-symmetry --model cnn",
            restart="delete it to start again",
            same="files and settings, or delete it to start again",
        )  # fmt: skip
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed"])
        history = json.loads(ckpt["history"])
        log(f"resuming after epoch {start_epoch} from {ckpt_path}")

    steps = len(train) // settings.batch_size
    total = steps * settings.epochs
    w_val = draw_windows(np.random.default_rng([settings.seed, VAL_STREAM]), data.bins[val],
                         grid, settings)  # fmt: skip
    ce = torch.nn.functional.cross_entropy
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([settings.seed, epoch])
        torch.manual_seed(settings.seed * 100_003 + epoch)
        perm = train[rng.permutation(len(train))]
        windows = draw_windows(rng, data.bins[perm], grid, settings)
        net.train()
        losses = []
        for b in range(steps):
            sl = slice(b * settings.batch_size, (b + 1) * settings.batch_size)
            idx = perm[sl]
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(
                    settings.lr, settings.schedule, epoch * steps + b, total
                )
            v, m = _batch(data.values[idx], windows[sl], device)
            lc, ls = net(v, m)
            tc = torch.from_numpy(y_cs[idx]).to(device)
            ts = torch.from_numpy(y_sg[idx]).to(device)
            loss = ce(lc, tc) + ce(ls, ts)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            tick(f"epoch {epoch + 1}/{settings.epochs}", 1, steps)
        elapsed += time.perf_counter() - t0
        probe = ProfileSymmetryModel(cfg, grid, {}, {}, net)
        lc_v, _ = probe.logits(data.values[val], w_val)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
               "val_crystal_system_acc": float(np.mean(lc_v.argmax(1) == y_cs[val])),
               "seconds": time.perf_counter() - t0}  # fmt: skip
        history.append(row)
        log(f"epoch {epoch + 1}: loss {row['train_loss']:.3f}, validation crystal system "
            f"{100 * row['val_crystal_system_acc']:.1f} % ({row['seconds']:.0f} s)")  # fmt: skip
        payload = {
            "kind": CHECKPOINT_KIND,
            "identity": json.dumps(identity),
            "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "optimizer": opt.state_dict(),
            "epoch": epoch + 1,
            "elapsed": elapsed,
            "history": json.dumps(history),
        }
        with atomic_path(ckpt_path) as tmp:
            torch.save(payload, tmp)

    net = net.cpu()
    classes = {"crystal_system": cs_classes, "space_group": sg_classes}
    model = ProfileSymmetryModel(cfg, grid, classes, data.symbols, net)
    # temperature scaling on the validation formulas (their own random windows)
    lc_v, ls_v = model.logits(data.values[val], w_val)
    seen_v = y_sg[val] >= 0
    model.temperature_ = {
        "crystal_system": fit_temperature(lc_v, y_cs[val]),
        "space_group": fit_temperature(ls_v[seen_v], y_sg[val][seen_v]),
    }
    # windows narrower than any trained on (start 20-35°, end 40-50° at Cu): their own
    # temperatures, so a scan outside the trained range is answered with flatter probabilities
    narrow = CNNTrainSettings(window_start=(20.0, 35.0), window_end=(40.0, 50.0), p_full=0.0)
    w_out = draw_windows(np.random.default_rng([settings.seed, VAL_STREAM + 1]), data.bins[val],
                         grid, narrow)  # fmt: skip
    lo_v, so_v = model.logits(data.values[val], w_out)
    model.temperature_outside_ = {
        "crystal_system": fit_temperature(lo_v, y_cs[val]),
        "space_group": fit_temperature(so_v[seen_v], y_sg[val][seen_v]),
    }
    # held-out formulas, random windows drawn once from their own stream
    w_test = draw_windows(np.random.default_rng([settings.seed, TEST_STREAM]), data.bins[test],
                          grid, settings)  # fmt: skip
    t_pred = time.perf_counter()
    proba = model.predict_proba(data.values[test], w_test)
    t_pred = time.perf_counter() - t_pred
    metrics = {}
    cs_m = classification_metrics(y_cs[test], proba["crystal_system"], list(SYSTEMS), ks=(1, 2, 3))
    cs_m["ece"] = expected_calibration_error(proba["crystal_system"], y_cs[test])
    metrics["crystal_system"] = cs_m
    # space groups: rows of a group training never saw count as wrong at every k
    sg_p = np.concatenate([proba["space_group"], np.zeros((len(test), 1))], axis=1)
    y_sg_t = np.where(y_sg[test] >= 0, y_sg[test], len(sg_classes))
    names = [str(int(s)) for s in sg_classes] + ["unseen"]
    sg_m = classification_metrics(y_sg_t, sg_p, names, ks=(1, 5, 10))
    sg_m["ece"] = expected_calibration_error(sg_p, y_sg_t)
    sg_m["unseen_rows"] = int((y_sg[test] < 0).sum())
    metrics["space_group"] = sg_m
    w_nt = draw_windows(np.random.default_rng([settings.seed, TEST_STREAM + 1]), data.bins[test],
                        grid, narrow)  # fmt: skip
    p_out = model.predict_proba(data.values[test], w_nt, outside=np.ones(len(test), bool))
    outside = {
        "windows_cu_two_theta": {"start": narrow.window_start, "end": narrow.window_end},
        "crystal_system_accuracy": float(np.mean(p_out["crystal_system"].argmax(1) == y_cs[test])),
        "crystal_system_ece": expected_calibration_error(p_out["crystal_system"], y_cs[test]),
        "crystal_system_mean_top_p": float(p_out["crystal_system"].max(1).mean()),
    }
    model.metrics_ = {t: {k: v for k, v in m.items() if k != "per_class"}
                      for t, m in metrics.items()}  # fmt: skip
    model.metrics_["outside_trained_windows"] = outside
    model.training_ = {
        "n_rows": int(len(data)),
        "n_train": int(len(train)),
        "n_validation": int(len(val)),
        "n_test": int(len(test)),
        "split": "group by formula",
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "fingerprint": fp,
        "test_ids_fingerprint": fingerprint(np.sort(data.ids[test])),
        "sources": data.sources,
        "recipe": recipe,
        "history": history,
        "train_seconds": elapsed,
        "read_seconds": t_read,
        "cpu_seconds": time.process_time() - c_start,
        "torch_threads": torch.get_num_threads(),
        "device": settings.device,
    }
    size = model.save(output)
    result = {
        "model": "cnn",
        "training": {k: v for k, v in model.training_.items() if k != "history"},
        "history": history,
        "temperature": model.temperature_,
        "temperature_outside": model.temperature_outside_,
        "metrics": metrics,
        "outside_trained_windows": outside,
        "timings": {
            "train_s": elapsed,
            "held_out_predict_s": t_pred,
            "held_out_patterns_per_s": len(test) / max(t_pred, 1e-9),
        },  # fmt: skip
        "bundle": {"path": str(output), "bytes": size},
    }
    return model, result


def builtin_model_path() -> Path:
    """The model shipped in the package (``make model`` rebuilds it; docs/measured-data.md)."""
    path = Path(__file__).resolve().parents[1] / "data" / "models" / BUILTIN_MODEL
    if not path.exists():
        raise XtalError(
            f"{path}: the built-in symmetry model is missing from this installation; rebuild it "
            "with `make model`, or give a model file from xtal train-symmetry"
        )
    return path


def load_symmetry_model(path):
    """The symmetry model in *path*: a :class:`~xtal_cli.symmetry.estimator.SymmetryModel`
    (trees and other scikit-learn models) or a :class:`ProfileSymmetryModel` (cnn)."""
    from xtal_cli.io.bundles import read_model_file
    from xtal_cli.symmetry.estimator import SymmetryModel

    meta, arrays = read_model_file(path, "symmetry-model")
    if meta.get("model") == "cnn":
        return ProfileSymmetryModel.from_file_parts(path, meta, arrays)
    return SymmetryModel.from_file_parts(path, meta, arrays)
