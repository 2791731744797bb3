"""Training of the structure/XRD dual encoder (``xtal train-embed``).

Reads a ``patterns/1`` file with profiles, builds (or reuses) the graph cache, splits off a
validation set with the seed, and trains with Adam on the bidirectional triplet loss. Each epoch
writes ``checkpoint.pt`` (everything needed to resume), ``model.pt`` (weights + config, what
``embed`` loads) and one line of ``metrics.jsonl`` (loss, cross-modal retrieval top-1/top-10 on
the validation split, throughput). The learning rate warms up linearly over the first steps and
then follows a cosine decay over the run (``schedule="cosine"``); with ``time_budget`` the run
stops when the budget is spent and the decay follows elapsed time, so a run on a slower or busier
machine still ends with a fully decayed rate. Under ``torchrun`` each process trains on its
share of every batch with DistributedDataParallel; only rank 0 validates and writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xtal_cli.embed.graphs import FEATURE_VERSION, GraphStore, cached_graphs, element_features
from xtal_cli.embed.loss import NEGATIVES, bidirectional_triplet, retrieval_topk
from xtal_cli.embed.models import MODEL_FORMAT, DualEncoder, EmbedConfig
from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.h5 import atomic_path, read_patterns
from xtal_cli.schedules import SCHEDULES

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
METRICS = "metrics.jsonl"
GRAPHS = "graphs.h5"


@dataclass
class TrainSettings:
    """How :func:`train_embed` trains; checked on construction, errors name the field."""

    epochs: int = 50
    batch_size: int = 512
    lr: float = 1e-3
    margin: float = 1.0
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    workers: int = 1
    eval_batch_size: int = 1024
    negatives: str = "random"  # loss.NEGATIVES
    schedule: str = "cosine"  # SCHEDULES
    warmup_steps: int = 20
    time_budget: float | None = None  # seconds of training wall time (all resumed parts)
    eval_every: int = 1  # validation retrieval every N epochs (and always on the last one)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size", "workers", "eval_every"):
            if getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "must be at least 1")
        if not self.lr > 0:
            raise ParameterError("lr", self.lr, "must be positive")
        if self.warmup_steps < 0:
            raise ParameterError("warmup_steps", self.warmup_steps, "must be 0 or more")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ParameterError("val_fraction", self.val_fraction, "must be in [0, 1)")
        if self.negatives not in NEGATIVES:
            raise ParameterError("negatives", self.negatives, f"use one of {', '.join(NEGATIVES)}")
        if self.schedule not in SCHEDULES:
            raise ParameterError("schedule", self.schedule, f"use one of {', '.join(SCHEDULES)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ParameterError("device", self.device, "unknown device; use auto, cpu or cuda")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ParameterError("time_budget", self.time_budget, "must be positive (seconds)")


def lr_factor(settings: TrainSettings, step: int, total_steps: int, elapsed: float) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine decay to 1 %.

    Progress is the larger of the step fraction and, with a time budget, the time fraction.
    """
    warmup = min(settings.warmup_steps, max(1, total_steps // 10))  # short runs warm up less
    warm = min(1.0, (step + 1) / max(warmup, 1))
    if settings.schedule == "constant":
        return warm
    progress = step / max(total_steps, 1)
    if settings.time_budget:
        progress = max(progress, elapsed / settings.time_budget)
    progress = min(progress, 1.0)
    return warm * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass
class TrainData:
    """Training inputs aligned by row: graphs, profiles on the model grid, ids, split."""

    graphs: GraphStore
    profiles: np.ndarray  # (N, P) float32
    grid: np.ndarray
    wavelength: float
    failures: list = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", name, "no CUDA device is available; use cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ParameterError("device", name, "unknown device; use auto, cpu or cuda")
    return torch.device(name)


def load_training_data(
    patterns: str | os.PathLike, graph_cache: str | os.PathLike, workers: int = 1, report=None
) -> tuple[TrainData, bool]:
    """Profiles and cached graphs of a patterns file, keeping only items that have both."""
    ps = read_patterns(patterns, sticks=False)
    if ps.profiles is None:
        raise XtalError(
            f"{patterns}: has no profiles; write it with `xtal simulate --profile` for train-embed"
        )
    if not ps.structures or not any(ps.structures):
        raise XtalError(f"{patterns}: holds no structures; train-embed needs simulated patterns")
    if len(ps) < 4:
        raise XtalError(f"{patterns}: only {len(ps)} patterns; train-embed needs at least 4")
    total = len(ps)

    def tick(n):
        if report:
            report("graphs", advance=n, total=total)

    store, cached = cached_graphs(
        graph_cache, ps.ids, ps.structures, workers=workers, on_progress=tick
    )
    row = {i: k for k, i in enumerate(ps.ids)}
    keep = np.array([row[i] for i in store.ids], dtype=np.int64)
    profiles = np.asarray(ps.profiles, dtype=np.float32)[keep]
    wavelength = float(ps.attrs.get("wavelength", 1.54184))
    data = TrainData(store, profiles, np.asarray(ps.profile_grid), wavelength, store.failures)
    return data, cached


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split (validation at least 2 items when asked for)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError("val_fraction", val_fraction, "must be in [0, 1)")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0:
        n_val = max(n_val, 2)
    if n - n_val < 2:
        raise ParameterError(
            "val_fraction", val_fraction, f"leaves fewer than 2 of {n} items for training; lower it"
        )
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def epoch_batches(train_idx: np.ndarray, batch_size: int, seed: int, epoch: int) -> list:
    """Shuffled batches of an epoch (seed and epoch fix the order, so a resume repeats it).

    A last batch of one item is merged into the previous one: batch norm needs two.
    """
    perm = np.random.default_rng([seed, epoch]).permutation(train_idx)
    batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return batches


def to_device(graph: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in graph.items()}


@torch.no_grad()
def encode(
    model: DualEncoder,
    graphs: GraphStore,
    profiles: np.ndarray,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Structure and XRD embeddings of rows *indices* (model in eval mode), on the CPU."""
    model.eval()
    s_out, x_out = [], []
    for start in range(0, len(indices), batch_size):
        idx = indices[start : start + batch_size]
        g = to_device(graphs.batch(idx), device)
        p = torch.from_numpy(profiles[idx]).to(device)
        s, x = model(g, p)
        s_out.append(s.float().cpu())
        x_out.append(x.float().cpu())
    return torch.cat(s_out), torch.cat(x_out)


@torch.no_grad()
def recalibrate_batchnorm(
    model: DualEncoder,
    graphs: GraphStore,
    profiles: np.ndarray,
    batches: list,
    device: torch.device,
    max_items: int = 2048,
) -> None:
    """Re-estimate batch-norm running statistics as exact averages over training batches.

    The running averages gathered during training lag behind weights that are still moving
    (momentum 0.1 over few batches per epoch), so evaluation-mode embeddings would not match
    training-mode ones; one forward pass with the final weights fixes that ("precise BN").
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    seen = 0
    for batch in batches:
        if seen >= max_items:
            break
        g = to_device(graphs.batch(batch), device)
        model(g, torch.from_numpy(profiles[batch]).to(device))
        seen += len(batch)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    model.eval()


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def plain_values(obj):
    """*obj* as what ``torch.load(weights_only=True)`` accepts: tensors, dict/list/tuple, str,
    int, float, bool, None (numpy values and paths converted); anything else is an error here,
    at saving, rather than a file that only a code-running unpickle could read."""
    if isinstance(obj, (np.generic, np.ndarray)):  # before str/float: np.float64 is a float
        return obj.tolist()
    if obj is None or type(obj) in (str, bool, int, float) or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        return {plain_values(k): plain_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return (list if isinstance(obj, list) else tuple)(plain_values(v) for v in obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} cannot go into a weights-only checkpoint")


def load_payload(path: Path, what: str, fix: str):
    """``torch.load`` with ``weights_only=True``: tensors and plain values only, so a model or
    checkpoint from elsewhere cannot run code. Files that hold other Python objects (written by
    other programs, or with pickled objects inside) are refused with a message saying why."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):
            raise XtalError(
                f"{path}: holds Python objects besides tensors and plain values (a file from "
                "another program or an older xtal); unpickling them can run code, so this xtal "
                "does not open it; train the model again with xtal train-embed"
            ) from None
        raise XtalError(f"{path}: cannot be read as {what} (UnpicklingError); {fix}") from None
    except Exception as exc:  # noqa: BLE001 - zip/storage errors of all kinds
        raise XtalError(f"{path}: cannot be read as {what} ({type(exc).__name__}); {fix}") from None


def save_model(path: Path, model: DualEncoder, cfg: EmbedConfig, info: dict) -> None:
    """The file ``embed`` and ``neighbors`` load: config + weights + provenance (tensors and
    plain values only: it loads with ``weights_only=True``)."""
    payload = {
        "kind": "xtal-embed-model",
        "format": MODEL_FORMAT,
        "config": plain_values(cfg.to_dict()),
        "state": model.state_dict(),
        "info": plain_values(info),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def train_embed(
    patterns: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: TrainSettings,
    *,
    dim: int = 1024,
    resume: bool = False,
    force: bool = False,
    graph_cache: str | os.PathLike | None = None,
    report: Callable | None = None,
    stop_after_epoch: int | None = None,
) -> dict:
    """Train (or resume) and return a summary; see the module docstring for the files written.

    *report(event, **info)* receives progress events ("graphs", "epoch_start", "batch",
    "epoch_end"). *stop_after_epoch* ends the run early as an interruption would (for tests).
    """
    out = Path(out_dir)
    rank, world, local_rank = _dist_info()
    device = resolve_device(settings.device)
    if world > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    main = rank == 0
    report = report if (report and main) else None

    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not (resume or force):
        raise XtalError(
            f"{out}: already holds a training run; continue it with --resume, "
            "or start again with --force"
        )
    if resume and not ckpt_path.exists():
        raise XtalError(f"{out}: no {CHECKPOINT} to resume from; start without --resume")
    out.mkdir(parents=True, exist_ok=True)

    if world > 1 and not main:  # rank 0 builds the graph cache once; the others then read it
        torch.distributed.barrier()
    data, cached = load_training_data(
        patterns, graph_cache or out / GRAPHS, settings.workers, report
    )
    if world > 1 and main:
        torch.distributed.barrier()
    n = len(data.graphs)
    if n < 4:
        raise XtalError(
            f"{patterns}: only {n} structures could form graphs "
            f"({len(data.failures)} failed, e.g. {data.failures[0][2] if data.failures else '-'})"
        )
    cfg = EmbedConfig(
        dim=dim,
        n_element_features=element_features().shape[1],
        feature_version=FEATURE_VERSION,
        grid_min=float(data.grid[0]),
        grid_max=float(data.grid[-1]),
        grid_points=len(data.grid),
        wavelength=data.wavelength,
    )

    torch.manual_seed(settings.seed)
    model = DualEncoder(cfg).to(device)
    # fused Adam: one kernel over all parameters (measured ~10x faster step on 2 CPU cores)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, fused=True)
    use_amp = settings.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16
    if use_amp and not torch.cuda.is_bf16_supported():
        amp_dtype = torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    history: list[dict] = []
    start_epoch = 1
    elapsed_before = 0.0  # wall seconds of earlier (interrupted) parts of this run
    train_idx, val_idx = split_indices(n, settings.val_fraction, settings.seed)
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        saved = EmbedConfig.from_dict(ckpt["config"])
        diff = [k for k in EmbedConfig.ARCH_KEYS if getattr(saved, k) != getattr(cfg, k)]
        if diff:
            raise XtalError(
                f"{ckpt_path}: was trained with other settings ({', '.join(diff)} differ); "
                "resume with the same data and --dim, or train into a new folder"
            )
        if ckpt["ids"] != data.graphs.ids or ckpt["seed"] != settings.seed:
            raise XtalError(
                f"{ckpt_path}: was trained on other data or another --seed; "
                "resume with the same patterns file and --seed"
            )
        model.load_state_dict(ckpt["state"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["torch_rng"])
        history = ckpt["history"]
        start_epoch = ckpt["epoch"] + 1
        elapsed_before = float(ckpt.get("elapsed", 0.0))
        # a run that spent its time budget is complete, unless resumed with a larger budget
        # (the cosine decay then restarts from where the longer run would be: a warm restart)
        raised = settings.time_budget and settings.time_budget > elapsed_before + 1.0
        if ckpt.get("budget_spent") and not raised:
            start_epoch = settings.epochs + 1
        train_idx, val_idx = np.asarray(ckpt["train_idx"]), np.asarray(ckpt["val_idx"])

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    info = {
        "patterns": str(patterns),
        "n_items": n,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "seed": settings.seed,
        "graph_cache_hit": cached,
        "graph_failures": len(data.failures),
        "world_size": world,
        "device": str(device),
        "amp": str(amp_dtype).replace("torch.", "") if use_amp else "off",
    }
    if start_epoch > settings.epochs and report:
        report("done_already", epoch=start_epoch - 1)

    steps_per_epoch = len(epoch_batches(train_idx, settings.batch_size, settings.seed, 1))
    total_steps = steps_per_epoch * settings.epochs
    run_start = time.perf_counter()
    reserve = 0.0  # time the end-of-epoch work took last time (kept free at the budget's end)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_start

    for epoch in range(start_epoch, settings.epochs + 1):
        batches = epoch_batches(train_idx, settings.batch_size, settings.seed, epoch)
        if report:
            report("epoch_start", epoch=epoch, epochs=settings.epochs, total=len(batches))
        net.train()
        t0 = time.perf_counter()
        loss_sum, pairs = 0.0, 0
        budget_spent = False
        for i, batch in enumerate(batches):
            step = (epoch - 1) * steps_per_epoch + i
            if settings.time_budget:
                budget_spent = elapsed() + reserve >= settings.time_budget
                if world > 1:  # every process must stop at the same step
                    flag = torch.tensor([float(budget_spent)], device=device)
                    torch.distributed.all_reduce(flag)
                    budget_spent = bool(flag.item() > 0)
                if budget_spent and pairs:
                    break
                budget_spent = False
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * lr_factor(settings, step, total_steps, elapsed())
            mine = batch[rank::world] if world > 1 else batch
            g = to_device(data.graphs.batch(mine), device)
            p = torch.from_numpy(data.profiles[mine]).to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                s, x = net(g, p)
            loss = bidirectional_triplet(
                s.float(), x.float(), settings.margin, negatives=settings.negatives
            )
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_value = float(loss.detach())
            loss_sum += loss_value * len(mine)
            pairs += len(mine)
            if report:
                report("batch", loss=loss_value)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - t0
        t_end = time.perf_counter()
        recalibrate_batchnorm(model, data.graphs, data.profiles, batches, device)
        last = budget_spent or epoch == settings.epochs or epoch == stop_after_epoch
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(pairs, 1),
            "pairs_per_s": pairs * world / train_time,
            "train_seconds": round(train_time, 3),
            "lr": optimizer.param_groups[0]["lr"],
            "steps": (epoch - 1) * steps_per_epoch + (i + 1 if not budget_spent else i),
        }
        if budget_spent:
            record["budget_spent"] = True
        if main and len(val_idx) >= 2 and (last or epoch % settings.eval_every == 0):
            s_val, x_val = encode(
                model, data.graphs, data.profiles, val_idx, device, settings.eval_batch_size
            )
            record["val_loss"] = float(bidirectional_triplet(s_val, x_val, settings.margin))
            xs = retrieval_topk(x_val, s_val)
            sx = retrieval_topk(s_val, x_val)
            record.update(
                {
                    "val_xrd_to_structure_top1": xs[1],
                    "val_xrd_to_structure_top10": xs[10],
                    "val_structure_to_xrd_top1": sx[1],
                    "val_structure_to_xrd_top10": sx[10],
                }
            )
        record["elapsed_seconds"] = round(elapsed(), 3)
        history.append(record)
        if main:
            save_checkpoint(
                ckpt_path,
                model,
                optimizer,
                scaler,
                cfg,
                epoch=epoch,
                settings=settings,
                ids=data.graphs.ids,
                train_idx=train_idx,
                val_idx=val_idx,
                history=history,
                elapsed=elapsed(),
                budget_spent=budget_spent,
            )
            save_model(out / MODEL, model, cfg, {**info, "epoch": epoch, "metrics": record})
            write_metrics(out / METRICS, history)
        if report:
            report("epoch_end", **record)
        if world > 1:
            torch.distributed.barrier()
        reserve = time.perf_counter() - t_end
        if budget_spent or (stop_after_epoch is not None and epoch >= stop_after_epoch):
            break

    if main and not (out / MODEL).exists():
        save_model(out / MODEL, model, cfg, info)
    return {
        **info,
        "out": str(out),
        "rank": rank,
        "epochs_run": len(history),
        "last": history[-1] if history else {},
        "failures": data.failures,
    }


def save_checkpoint(path: Path, model, optimizer, scaler, cfg: EmbedConfig, **state) -> None:
    settings = state.pop("settings")
    payload = {
        "kind": "xtal-embed-checkpoint",
        "format": MODEL_FORMAT,
        "config": plain_values(cfg.to_dict()),
        "state": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "torch_rng": torch.get_rng_state(),
        "seed": int(settings.seed),
        "settings": plain_values(dict(settings.__dict__)),
        "epoch": int(state["epoch"]),
        "ids": [str(i) for i in state["ids"]],
        "train_idx": np.asarray(state["train_idx"]).tolist(),
        "val_idx": np.asarray(state["val_idx"]).tolist(),
        "history": plain_values(state["history"]),
        "elapsed": float(state.get("elapsed", 0.0)),
        "budget_spent": bool(state.get("budget_spent", False)),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict:
    ckpt = load_payload(path, "a checkpoint", "train again")
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "xtal-embed-checkpoint":
        raise XtalError(f"{path}: not a train-embed checkpoint; train again without --resume")
    return ckpt


def write_metrics(path: Path, history: list[dict]) -> None:
    """Rewrite the whole log each epoch, so a resumed run never duplicates lines."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
