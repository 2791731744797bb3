import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.xrd.lineshape import kalpha_pair
from xtal_cli.xrd.units import UNITS, from_two_theta, resolve_wavelength, to_two_theta


def test_wavelength_names_and_numbers():
    assert resolve_wavelength("CuKa1") == (1.54056, "CuKa1")
    assert resolve_wavelength("cuka")[0] == pytest.approx(1.54184)
    assert resolve_wavelength("0.7093")[0] == pytest.approx(0.7093)
    assert kalpha_pair("CuKa") == (1.54056, 1.54439, 0.5)
    assert kalpha_pair("1.5") is None


@pytest.mark.parametrize("bad", ["CuKz", "154.06", "-1", "0", "nan"])
def test_bad_wavelengths_are_clear(bad):
    with pytest.raises(XtalError, match="wavelength"):
        resolve_wavelength(bad)


@pytest.mark.parametrize("unit", UNITS)
def test_units_round_trip(unit):
    tt = np.array([10.0, 28.44, 47.3, 88.0])
    values = from_two_theta(tt, 1.54056, unit)
    np.testing.assert_allclose(to_two_theta(values, 1.54056, unit), tt, rtol=1e-12)


def test_q_and_d_are_wavelength_free():
    # Si (111): d = 3.1356 Å; Q = 2π/d at any wavelength
    d = 3.1356
    for wl in (1.54056, 0.7093):
        tt = to_two_theta(d, wl, "d")
        assert from_two_theta(tt, wl, "q") == pytest.approx(2 * np.pi / d)
        assert from_two_theta(tt, wl, "inv-d2") == pytest.approx(1 / d**2)
    assert np.isnan(to_two_theta(0.5, 1.54056, "d"))  # λ > 2d: unreachable
