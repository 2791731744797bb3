"""Fixtures for the embedding tests: a small simulated pattern file and one trained model.

Built once per session from the embedded mp-sample set (real MP structures) so every test
reuses them; the training is a few epochs on ~120 pairs, seconds on a CPU.
"""

from __future__ import annotations

import pytest

N_STRUCTURES = 120
DIM = 64


@pytest.fixture(scope="session")
def patterns_h5(tmp_path_factory):
    from xtal_cli.io.structures import collect_items
    from xtal_cli.xrd.profile import ProfileSettings
    from xtal_cli.xrd.simulate import SimulationSettings, run_simulation

    items = collect_items([], builtins=["mp-sample"], limit=N_STRUCTURES)
    settings = SimulationSettings(
        wavelength=1.54184,
        wavelength_label="CuKa",
        two_theta_min=10,
        two_theta_max=110,
        profile=ProfileSettings(two_theta_min=10, two_theta_max=110, step=0.04, fwhm=0.1),
    )
    path = tmp_path_factory.mktemp("embed") / "patterns.h5"
    run_simulation(items, settings, path)
    return path


@pytest.fixture(scope="session")
def trained(patterns_h5, tmp_path_factory):
    """(model folder, summary) of a 3-epoch CPU training run."""
    from xtal_cli.embed.train import TrainSettings, train_embed

    out = tmp_path_factory.mktemp("embed") / "model"
    settings = TrainSettings(
        epochs=3, batch_size=32, val_fraction=0.2, seed=0, device="cpu", schedule="constant"
    )
    summary = train_embed(patterns_h5, out, settings, dim=DIM)
    return out, summary
