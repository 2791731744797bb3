"""Training of a one-target phase detector (``xtal train-detector``).

Every epoch draws fresh synthetic mixtures (:mod:`xtal_cli.detect.mixtures`) from the seed and
the epoch number, so a resumed run sees exactly the patterns an uninterrupted one would, and
nothing has to be cached on disk. A held-out set is drawn once from a separate seed stream. Each
epoch writes ``checkpoint.pt`` (weights, optimizer, epoch: everything ``--resume`` needs),
``model.pt`` + ``detector.json`` (a usable detector after every epoch) and ``metrics.jsonl``.
The last epoch adds the held-out report (recall and precision at the class-C threshold p > 0.95
and at 0.5, ROC AUC, recall per target weight fraction and the detection limit: the weight
fraction below which recall falls under 0.9) in ``evaluation.json`` and a calibration curve in
``calibration.png``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xtal_cli.detect.detector import LAYOUT, META, MODEL, detector_grid, sha256
from xtal_cli.detect.mixtures import MixtureMaker, MixtureSettings, phase_lines
from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.jsonable import write_json
from xtal_cli.schedules import SCHEDULES

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"
CALIBRATION = "calibration.png"
THRESHOLD = 0.95  # class C and above count as "detected"
RECALL_LIMIT = 0.9  # the detection limit is where recall falls below this
VAL_STREAM = 1_000_003  # seed-stream offset of the held-out set (never an epoch number)


@dataclass
class DetectorTrainSettings:
    """How :func:`train_detector` trains; checked on construction, errors name the field."""

    epochs: int = 8
    samples_per_epoch: int = 4096
    batch_size: int = 64
    lr: float = 2e-3
    schedule: str = "cosine"
    val_samples: int = 2000
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads (None: torch's default)

    def __post_init__(self):
        for name in ("epochs", "samples_per_epoch", "batch_size", "val_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(name, value, "must be a whole number of at least 1")
        if self.batch_size < 2:
            raise ParameterError("batch_size", self.batch_size, "must be at least 2 (batch norm)")
        if not self.lr > 0:
            raise ParameterError("lr", self.lr, "must be positive")
        if self.schedule not in SCHEDULES:
            raise ParameterError("schedule", self.schedule, f"use one of {', '.join(SCHEDULES)}")
        if self.device not in ("cpu", "cuda"):
            raise ParameterError("device", self.device, "use cpu or cuda")
        if self.threads is not None and self.threads < 1:
            raise ParameterError("threads", self.threads, "must be at least 1")


@dataclass(frozen=True)
class DetectorWindow:
    """The radiation and the fixed 2θ grid a detector is trained for."""

    wavelength: float = 1.540598  # Å, Cu Kα1 (Kα2 is drawn by the augmentation)
    two_theta_min: float = 10.0
    two_theta_max: float = 80.0
    step: float = 0.04

    def __post_init__(self):
        if not 0.1 <= self.wavelength <= 5.0:
            raise ParameterError("wavelength", self.wavelength, "must be within 0.1-5 Å")
        if not 0 < self.two_theta_min < self.two_theta_max < 175:
            raise ParameterError(
                "two_theta_max", self.two_theta_max, "give 0 < two_theta_min < two_theta_max < 175"
            )
        n = (self.two_theta_max - self.two_theta_min) / self.step if self.step > 0 else 0
        if not (self.step > 0 and 64 <= n <= 20000):
            raise ParameterError("step", self.step, "must give 64-20000 grid points in the window")

    def grid(self) -> np.ndarray:
        return detector_grid(self.two_theta_min, self.two_theta_max, self.step)


def _device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", name, "no CUDA device is available; use cpu")
    return torch.device(name)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties counted half); None without both classes."""
    from scipy.stats import rankdata

    y = np.asarray(y) > 0.5
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def recall_precision(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Counts, recall and precision of "p > threshold" (None where undefined)."""
    y = np.asarray(y) > 0.5
    hit = np.asarray(p) > threshold
    tp, fp, fn = int((hit & y).sum()), int((hit & ~y).sum()), int((~hit & y).sum())
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": int((~hit & ~y).sum()),
        "recall": tp / (tp + fn) if tp + fn else None,
        "precision": tp / (tp + fp) if tp + fp else None,
    }


def detection_limit(w: np.ndarray, y: np.ndarray, p: np.ndarray, min_fraction: float) -> dict:
    """Recall at p > 0.95 per target weight-fraction bin (log bins from *min_fraction* to 1, pure
    target last) and the detection limit: going down from the highest fractions, the upper edge of
    the first bin whose recall is below 0.9 (``below_range`` when no bin falls below it)."""
    pos = np.asarray(y) > 0.5
    w, hit = np.asarray(w)[pos], np.asarray(p)[pos] > THRESHOLD
    edges = np.geomspace(min_fraction, 1.0, 9)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (w >= lo) & (w < hi)
        bins.append({"lo": float(lo), "hi": float(hi), "n": int(sel.sum()),
                     "recall": float(hit[sel].mean()) if sel.any() else None})  # fmt: skip
    sel = w >= 1.0
    bins.append({"lo": 1.0, "hi": 1.0, "n": int(sel.sum()),
                 "recall": float(hit[sel].mean()) if sel.any() else None})  # fmt: skip
    limit, below = None, True
    for b in reversed(bins):
        if b["recall"] is not None and b["recall"] < RECALL_LIMIT:
            limit, below = b["hi"], False
            break
    if below:
        limit = float(min_fraction)
    return {"bins": bins, "detection_limit": limit, "below_range": below}


def calibration_curve(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Observed share of positives per bin of predicted probability."""
    y, p = np.asarray(y) > 0.5, np.asarray(p)
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        sel = (p >= lo) & ((p < hi) if k < n_bins - 1 else (p <= hi))
        if sel.any():
            mean_p, observed = float(p[sel].mean()), float(y[sel].mean())
            out.append({"lo": float(lo), "hi": float(hi), "n": int(sel.sum()),
                        "mean_p": mean_p, "observed": observed})  # fmt: skip
    return out


def calibration_png(curve: list[dict], path: Path, title: str) -> None:
    """Reliability diagram: observed share of positives against the mean predicted probability."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    from xtal_cli.io.h5 import atomic_path

    fig = Figure(figsize=(4.5, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    ax.plot([c["mean_p"] for c in curve], [c["observed"] for c in curve], "o-", label="detector")
    for c in curve:
        ax.annotate(str(c["n"]), (c["mean_p"], c["observed"]), fontsize=6, xytext=(3, -8),
                    textcoords="offset points")  # fmt: skip
    ax.set(xlabel="predicted probability", ylabel="share with the target", xlim=(0, 1),
           ylim=(0, 1), title=title)  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def target_identity(cands) -> dict:
    """Name, formula, space group and source of the target: one structure, or several that all
    count as the target (``TiO2 (I4_1/amd, P4_2/mnm)`` for polymorphs of one formula)."""
    formulas = list(dict.fromkeys(c.formula for c in cands))
    groups = list(dict.fromkeys(c.space_group.split(" (")[0] for c in cands))
    if len(cands) == 1:
        name = cands[0].name
    elif len(formulas) == 1:
        name = f"{formulas[0]} ({', '.join(groups)})"
    else:
        name = " | ".join(c.name for c in cands)
    return {
        "name": name,
        "formula": " | ".join(formulas),
        "space_group": " | ".join(c.space_group for c in cands),
        "source": " | ".join(c.source for c in cands),
        "variants": [c.name for c in cands],
    }


def predict_array(net, X: np.ndarray, device, batch_size: int = 512) -> np.ndarray:
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(X), batch_size):
            x = torch.from_numpy(X[s : s + batch_size]).to(device)
            out.append(torch.sigmoid(net(x)).double().cpu().numpy())
    return np.concatenate(out)


def evaluate(net, X, y, w, device, min_fraction: float) -> dict:
    """The held-out report (see the module docstring)."""
    p = predict_array(net, X, device)
    return {
        "n": int(len(y)),
        "positives": int((y > 0.5).sum()),
        "at_0.95": recall_precision(y, p, THRESHOLD),
        "at_0.5": recall_precision(y, p, 0.5),
        "auc": roc_auc(y, p),
        **detection_limit(w, y, p, min_fraction),
        "calibration": calibration_curve(y, p),
    }


def train_detector(
    target: str | list[str],
    others: list[str],
    out_dir,
    settings: DetectorTrainSettings | None = None,
    *,
    mixtures: MixtureSettings | None = None,
    window: DetectorWindow | None = None,
    augment=None,
    resume: bool = False,
    force: bool = False,
    report=None,
) -> dict:
    """Train (or resume) a detector for the phase in *target* (a CIF; several CIFs, a folder or
    a CSV give structures that all count as the target) among the phases of *others* (CIF
    files, folders, CSV); returns the summary written to ``detector.json``.

    *report*, when given, is called as ``report(stage, advance=..., total=...)`` for progress.
    """
    import torch

    from xtal_cli import __version__
    from xtal_cli.checkpoints import read_checkpoint
    from xtal_cli.detect.model import MODEL_FORMAT, DetectorConfig, DetectorNet
    from xtal_cli.identify.candidates import load_candidates
    from xtal_cli.io.h5 import atomic_path
    from xtal_cli.schedules import warmup_cosine
    from xtal_cli.xrd.augment import AugmentSettings, settings_dict

    settings = settings or DetectorTrainSettings()
    mixtures = mixtures or MixtureSettings()
    window = window or DetectorWindow()
    augment = augment or AugmentSettings()
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not (resume or force):
        raise XtalError(
            f"{out}: already holds a detector training; continue it with --resume, "
            "or pass --force to start again"
        )
    if resume and not ckpt_path.exists():
        raise XtalError(f"{out}: no {CHECKPOINT} to resume from; start without --resume")
    device = _device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)

    targets = [target] if isinstance(target, (str, Path)) else list(target)
    tcands = load_candidates([str(t) for t in targets])
    tid = target_identity(tcands)
    ocands = load_candidates(list(others)) if others else []
    same = {(c.formula, c.space_group) for c in tcands}
    dropped = [c.name for c in ocands if (c.formula, c.space_group) in same]
    ocands = [c for c in ocands if c.name not in dropped]
    rng_range = (window.two_theta_min, window.two_theta_max)
    tlines = [phase_lines(c, window.wavelength, rng_range) for c in tcands]
    olines = [phase_lines(c, window.wavelength, rng_range) for c in ocands]
    grid = window.grid()
    maker = MixtureMaker(tlines, olines, grid, window.wavelength, mixtures, augment)
    cfg = DetectorConfig(n_points=len(grid))
    identity = {  # what a resumed run must share with the checkpoint
        "target": tid["name"],
        "others": [c.name for c in ocands],
        "window": asdict(window),
        "mixtures": mixtures.to_dict(),
        "seed": settings.seed,
        "samples_per_epoch": settings.samples_per_epoch,
        "batch_size": settings.batch_size,
        "config": cfg.to_dict(),
    }
    torch.manual_seed(settings.seed)
    net = DetectorNet(cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    start_epoch, history, elapsed, cpu = 0, [], 0.0, 0.0
    if resume:
        ckpt = read_checkpoint(
            ckpt_path, "xtal-detector-checkpoint", identity, what="train-detector",
            restart="start again with --force",
            same="target, others and settings, or train into a new folder",
        )  # fmt: skip
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed"])
        cpu = float(ckpt.get("cpu_seconds", 0.0))
        history = json.loads(ckpt["history"])
        if start_epoch >= settings.epochs:
            raise XtalError(
                f"{out}: already trained {start_epoch} epochs; pass a larger --epochs to go on"
            )
    out.mkdir(parents=True, exist_ok=True)
    target_files = []  # copies of the target CIFs, so the folder says what it detects
    for k, t in enumerate(targets):
        if Path(t).is_file() and Path(t).suffix.lower() == ".cif":
            target_files.append("target.cif" if len(targets) == 1 else f"target_{k + 1}.cif")
            shutil.copyfile(t, out / target_files[-1])

    def tick(stage, n, total):
        if report:
            report(stage, advance=n, total=total)

    Xv = np.empty((settings.val_samples, len(grid)), dtype=np.float32)
    yv = np.empty(settings.val_samples, dtype=np.float32)
    wv = np.empty(settings.val_samples, dtype=np.float32)
    vrng = np.random.default_rng([settings.seed, VAL_STREAM])
    for k in range(settings.val_samples):
        Xv[k], yv[k], wv[k], _ = maker.draw(vrng)
        tick("held-out mixtures", 1, settings.val_samples)

    steps_per_epoch = settings.samples_per_epoch // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    loss_fn = torch.nn.BCEWithLogitsLoss()
    evaluation = None
    for epoch in range(start_epoch, settings.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        erng = np.random.default_rng([settings.seed, epoch])
        X = np.empty((settings.samples_per_epoch, len(grid)), dtype=np.float32)
        y = np.empty(settings.samples_per_epoch, dtype=np.float32)
        for k in range(settings.samples_per_epoch):
            X[k], y[k], _, _ = maker.draw(erng)
            tick(f"epoch {epoch + 1} mixtures", 1, settings.samples_per_epoch)
        t_draw = time.perf_counter() - t0
        torch.manual_seed(settings.seed * 100_003 + epoch)  # dropout: a resume repeats it
        perm = erng.permutation(settings.samples_per_epoch)
        net.train()
        losses = []
        for b in range(steps_per_epoch):
            idx = perm[b * settings.batch_size : (b + 1) * settings.batch_size]
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(
                    settings.lr, settings.schedule, epoch * steps_per_epoch + b, total_steps
                )
            xb = torch.from_numpy(X[idx]).to(device)
            yb = torch.from_numpy(y[idx]).to(device)
            loss = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            tick(f"epoch {epoch + 1} training", 1, steps_per_epoch)
        pv = predict_array(net, Xv, device)
        val = recall_precision(yv, pv, THRESHOLD)
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        row = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else None,
            "val_auc": roc_auc(yv, pv),
            "val_recall": val["recall"],
            "val_precision": val["precision"],
            "seconds_drawing": t_draw,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        last = epoch + 1 == settings.epochs
        if last:
            evaluation = evaluate(net, Xv, yv, wv, device, mixtures.min_fraction)
            write_json(out / EVALUATION, evaluation)
            calibration_png(evaluation["calibration"], out / CALIBRATION,
                            f"{tid['name']}: held-out calibration")  # fmt: skip
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        with atomic_path(out / MODEL) as tmp:
            torch.save(state, tmp)
        meta = {
            "layout": LAYOUT,
            "xtal_version": __version__,
            "target": {**tid, "files": target_files},
            "others": [{"name": c.name, "source": c.source} for c in ocands],
            "others_dropped_as_target": dropped,
            "wavelength": window.wavelength,
            "two_theta_min": window.two_theta_min,
            "two_theta_max": window.two_theta_max,
            "step": window.step,
            "model": {
                "file": MODEL,
                "format": MODEL_FORMAT,
                "sha256": sha256(out / MODEL),
                "config": cfg.to_dict(),
            },
            "mixtures": mixtures.to_dict(),
            "augment": settings_dict(augment),
            "training": {
                **asdict(settings),
                "epochs_done": epoch + 1,
                "seconds": elapsed,
                "cpu_seconds": cpu,
            },  # fmt: skip
            "evaluation": _summary(evaluation) if evaluation else None,
        }
        write_json(out / META, meta)
        payload = {
            "kind": "xtal-detector-checkpoint",
            "identity": json.dumps(identity),
            "model": state,
            "optimizer": opt.state_dict(),
            "epoch": epoch + 1,
            "elapsed": elapsed,
            "cpu_seconds": cpu,
            "history": json.dumps(history),
        }
        with atomic_path(ckpt_path) as tmp:
            torch.save(payload, tmp)
        with atomic_path(out / METRICS) as tmp:  # whole log each epoch: a resume never repeats
            tmp.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
        if report:
            report("epoch", advance=1, total=settings.epochs, row=row)
    return meta


def _summary(evaluation: dict) -> dict:
    """The held-out numbers that go into detector.json (the full report is evaluation.json)."""
    return {
        "n": evaluation["n"],
        "recall": evaluation["at_0.95"]["recall"],
        "precision": evaluation["at_0.95"]["precision"],
        "auc": evaluation["auc"],
        "detection_limit": evaluation["detection_limit"],
        "detection_limit_below_range": evaluation["below_range"],
    }
