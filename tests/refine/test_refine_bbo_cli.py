"""``xtal refine-bbo`` end to end on a small synthetic pattern: outputs, bad inputs, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.refine.engine import RietveldModel
from xtal_cli.refine.instrument import read_instrument
from xtal_cli.refine.phases import read_phase


@pytest.fixture()
def problem(tmp_path, cifs, prm):
    """A NaCl pattern drawn by the engine (Poisson noise), with its CIF and instrument file."""
    phase, inst = read_phase(cifs["NaCl"]), read_instrument(prm)
    tt = np.arange(20.0, 90.0, 0.03)
    model = RietveldModel(tt, np.ones_like(tt), phase, inst)
    model.set("bg0", 150.0)
    _, ypk = model.calc()
    model.set("scale", 3000.0 / ypk.max())
    ybg, ypk = model.calc()
    counts = np.random.default_rng(1).poisson(ybg + ypk)
    pattern = tmp_path / "nacl.xy"
    pattern.write_text("".join(f"{a:.3f} {b}\n" for a, b in zip(tt, counts)))
    return pattern, cifs["NaCl"], prm


def test_refine_bbo_writes_every_output(invoke, problem, tmp_path):
    pattern, cif, prm = problem
    out = tmp_path / "out"
    r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--trials", "4",
               "--seed", "3", "-o", out, "--quiet", "--format", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["trials"] == 4 and row["rwp"] > 0
    for name in ("best.cif", "report.json", "trials.csv", "rietveld.png", "history.png",
                 "candidates_mds.png", "study.db"):  # fmt: skip
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["seed"] == 3 and report["best"]["configuration"]
    assert report["candidates"] and (out / "candidates" / report["candidates"][0]["file"]).is_file()
    # the refined CIF reads back as the same phase
    assert read_phase(out / "best.cif").sites[0].multiplicity == 4
    # a second run on the same folder without --resume is refused, not silently mixed
    r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--trials", "4",
               "-o", out, "--quiet")  # fmt: skip
    assert r.exit_code == 2 and "--resume" in r.stderr


def test_interrupted_study_resumes_without_losing_trials(invoke, problem, tmp_path):
    import optuna

    pattern, cif, prm = problem
    out = tmp_path / "out"
    args = ["refine-bbo", pattern, "--cif", cif, "--instrument", prm, "-o", out, "--quiet"]
    assert invoke(*args, "--trials", "2").exit_code == 0
    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    study = optuna.load_study(study_name="refine-bbo", storage=storage)
    killed = study.ask()  # a trial left RUNNING, as by a killed process
    r = invoke(*args, "--trials", "4", "--resume")
    assert r.exit_code == 0, r.output
    assert "re-queued 1" in r.stderr
    trials = optuna.load_study(study_name="refine-bbo", storage=storage).trials
    requeued = [t for t in trials if t.user_attrs.get("requeued")]
    assert [t.number for t in requeued] == [killed.number]
    counted = [t for t in trials if t.state.name in ("COMPLETE", "FAIL") and t not in requeued]
    assert len(counted) == 4  # the interrupted one was re-run, none lost, none double-counted
    assert any(t.user_attrs.get("retry_of") == killed.number for t in counted)


@pytest.mark.parametrize(
    "breakage, message",
    [("nan", "NaN"), ("negative", "negative counts"), ("cif", "CIF"), ("instrument", "not found")],
)
def test_bad_inputs_give_one_line_errors(invoke, problem, tmp_path, breakage, message):
    pattern, cif, prm = problem
    if breakage in ("nan", "negative"):
        lines = pattern.read_text().splitlines()
        lines[10] = lines[10].split()[0] + (" nan" if breakage == "nan" else " -5")
        pattern.write_text("\n".join(lines) + "\n")
    if breakage == "cif":
        cif = tmp_path / "broken.cif"
        cif.write_text("data_broken\n_cell_length_a 5.6\nloop_\n_atom_site_label\nNa1\n")
    if breakage == "instrument":
        prm = tmp_path / "nowhere.prm"
    r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--trials", "2",
               "-o", tmp_path / "o", "--quiet")  # fmt: skip
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o" / "study.db").exists()  # nothing started on bad input


def test_help_shows_an_example(invoke):
    r = invoke("refine-bbo", "--help")
    assert r.exit_code == 0 and "Example:" in r.stdout


def test_jobs_is_the_option_and_workers_its_hidden_alias(invoke, problem, tmp_path):
    pattern, cif, prm = problem
    args = ["refine-bbo", pattern, "--cif", cif, "--instrument", prm, "-o", tmp_path / "o"]
    help_text = invoke("refine-bbo", "--help").stdout
    assert "--jobs" in help_text and "--workers" not in help_text
    for flag in ("-j", "--jobs", "--workers"):  # the old name reaches the same check
        r = invoke(*args, flag, "0")
        assert r.exit_code == 2 and "--jobs 0" in r.stderr, (flag, r.output)
    assert not (tmp_path / "o").exists()


def test_space_and_problem_check_themselves_and_name_the_field(invoke, problem, tmp_path):
    from xtal_cli.errors import ParameterError
    from xtal_cli.refine.bbo import Problem, Space

    for kwargs, field in [
        ({"background_types": ["nope"]}, "background_types"),
        ({"background_terms": (5, 2)}, "background_terms"),
        ({"flags": ["Zero", "Nope"]}, "flags"),
        ({"cycles": 0}, "cycles"),
        ({"limits": (20.0, 30.0)}, "limits"),  # narrower than min_width
    ]:
        with pytest.raises(ParameterError) as info:
            Space(**kwargs)
        assert info.value.parameter == field and str(info.value).startswith(f"{field}=")
    with pytest.raises(ParameterError, match=r"^limits=\(90.0, 20.0\)"):
        Problem("a.xy", "a.cif", "a.prm", (90.0, 20.0))
    yaml_file = tmp_path / "space.yaml"
    yaml_file.write_text("cycles: 0\n")
    with pytest.raises(XtalError, match=r"space.yaml: cycles=0: must be at least 1"):
        Space.from_yaml(yaml_file)
    # the command line shows the flag, not the parameter
    pattern, cif, prm = problem
    r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--range", "90", "20",
               "-o", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 2 and "--range 90 20: give (low, high)" in r.stderr
    r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--range", "95", "99",
               "-o", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 2 and "--range 95 99: leaves no data in" in r.stderr


def _trial_table(folder):
    import csv

    with open(folder / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [k for k in rows[0] if k not in ("seconds", "datetime_start", "datetime_complete",
                                            "duration")]  # fmt: skip
    return [{k: row[k] for k in keep if "time" not in k and "second" not in k} for row in rows]


def test_deterministic_parallel_study_is_reproduced_trial_for_trial(invoke, problem, tmp_path):
    """Two workers, rounds of suggestions from one seeded sampler: the same seed gives the same
    configurations and the same Rwp in every trial, run after run."""
    pattern, cif, prm = problem
    tables = []
    for run in ("a", "b"):
        out = tmp_path / run
        r = invoke("refine-bbo", pattern, "--cif", cif, "--instrument", prm, "--trials", "6",
                   "--seed", "5", "-j", "2", "--deterministic", "-o", out, "--quiet",
                   "--format", "json")  # fmt: skip
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)[0]["trials"] == 6
        tables.append(_trial_table(out))
    assert len(tables[0]) == 6 and tables[0] == tables[1]
