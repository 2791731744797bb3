"""train-embed on a small real set: learning, metrics, checkpoints and resume."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from xtal_cli.embed.infer import load_model
from xtal_cli.embed.train import TrainSettings, encode, load_training_data, train_embed
from xtal_cli.errors import XtalError


def test_training_writes_model_metrics_and_learns(trained, patterns_h5):
    out, summary = trained
    assert (out / "model.pt").exists() and (out / "checkpoint.pt").exists()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for key in ("train_loss", "val_loss", "val_xrd_to_structure_top10", "pairs_per_s"):
        assert key in lines[-1]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    # the trained model pairs training structures with their own patterns far above chance
    emb = load_model(out)
    data, hit = load_training_data(patterns_h5, out / "graphs.h5")
    assert hit  # graphs come from the cache built by training
    idx = np.arange(len(data.graphs))
    s, x = encode(emb.model, data.graphs, data.profiles, idx, torch.device("cpu"))
    from xtal_cli.embed.loss import retrieval_topk

    top10 = retrieval_topk(x, s)[10]
    assert top10 > 3 * 10 / len(idx), top10


def test_interrupted_training_resumes_to_the_same_weights(patterns_h5, tmp_path):
    settings = TrainSettings(epochs=2, batch_size=32, val_fraction=0.2, seed=1, device="cpu")
    straight = tmp_path / "straight"
    train_embed(patterns_h5, straight, settings, dim=16)
    interrupted = tmp_path / "interrupted"
    train_embed(patterns_h5, interrupted, settings, dim=16, stop_after_epoch=1)
    with pytest.raises(XtalError, match="--resume"):
        train_embed(patterns_h5, interrupted, settings, dim=16)
    train_embed(patterns_h5, interrupted, settings, dim=16, resume=True)
    a = torch.load(straight / "model.pt", weights_only=True)["state"]
    b = torch.load(interrupted / "model.pt", weights_only=True)["state"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    lines = (interrupted / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    with pytest.raises(XtalError, match="other settings"):
        train_embed(patterns_h5, interrupted, settings, dim=8, resume=True)


def test_patterns_without_profiles_are_refused(tmp_path, patterns_h5):
    from xtal_cli.io.h5 import read_patterns, write_patterns

    ps = read_patterns(patterns_h5)
    ps.profiles = None
    bare = tmp_path / "bare.h5"
    write_patterns(bare, ps)
    with pytest.raises(XtalError, match="--profile"):
        train_embed(bare, tmp_path / "m", TrainSettings(epochs=1), dim=8)


@pytest.mark.gpu
def test_gpu_training_with_mixed_precision(patterns_h5, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    settings = TrainSettings(epochs=2, batch_size=64, device="cuda", amp=True)
    summary = train_embed(patterns_h5, tmp_path / "gpu", settings, dim=64)
    assert summary["device"].startswith("cuda") and summary["amp"] in ("bfloat16", "float16")
    assert np.isfinite(summary["last"]["train_loss"])


def test_learning_rate_warms_up_then_decays_by_steps_or_time():
    from xtal_cli.embed.train import lr_factor

    s = TrainSettings(warmup_steps=10, schedule="cosine")
    assert lr_factor(s, 0, 100, 0.0) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5 * 2), rel=1e-6)
    assert lr_factor(s, 9, 100, 0.0) > 0.9
    assert lr_factor(s, 100, 100, 0.0) == pytest.approx(0.01)
    timed = TrainSettings(warmup_steps=1, time_budget=60.0)
    assert lr_factor(timed, 5, 10_000, 30.0) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(TrainSettings(warmup_steps=1, schedule="constant"), 50, 100, 0.0) == 1.0


def test_time_budget_stops_training_and_resume_keeps_it(patterns_h5, tmp_path):
    settings = TrainSettings(
        epochs=50, batch_size=32, val_fraction=0.2, seed=0, device="cpu", time_budget=1e-3
    )
    out = tmp_path / "budget"
    summary = train_embed(patterns_h5, out, settings, dim=16)
    assert summary["epochs_run"] == 1 and summary["last"]["budget_spent"]
    assert summary["last"]["steps"] == 1 and "val_xrd_to_structure_top10" in summary["last"]
    again = train_embed(patterns_h5, out, settings, dim=16, resume=True)
    assert again["epochs_run"] == 1  # nothing more to do: the budget is spent
    longer = dataclasses.replace(settings, time_budget=3600.0, epochs=2)
    extended = train_embed(patterns_h5, out, longer, dim=16, resume=True)
    assert extended["epochs_run"] == 2  # a larger budget continues the spent run
    with pytest.raises(XtalError, match="^negatives='all': use one of"):
        TrainSettings(negatives="all")


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("workers", 0), ("lr", 0.0), ("val_fraction", 1.0), ("schedule", "step"),
     ("device", "tpu"), ("time_budget", -5.0), ("eval_every", 0)],
)  # fmt: skip
def test_settings_check_themselves_and_name_the_field(field, value):
    from xtal_cli.errors import ParameterError

    with pytest.raises(ParameterError) as info:
        TrainSettings(**{field: value})
    assert info.value.parameter == field and "--" not in str(info.value)
