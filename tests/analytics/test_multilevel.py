"""Tests of analytics.multilevel beyond those of the comparison that uses it (tests/analytics/test_comparison.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import multilevel


def test_levels_that_do_not_nest_are_refused_with_a_clear_reason():
    exog = pd.DataFrame({"const": np.ones(6), "x": np.arange(6.0)})
    patient = np.array(["a", "a", "b", "b", "c", "c"])
    clinician = np.array(["ann", "bob", "bob", "bob", "ann", "ann"])  # patient a seen under two clinicians
    with pytest.raises(ValueError, match="not nested: a unit lies in two units of the level above"):
        multilevel.fit_nested(exog, np.arange(6.0), {"patient": patient, "clinician": clinician})


def test_with_every_variance_at_0_the_fit_is_ordinary_least_squares_on_n_minus_p_degrees_of_freedom():
    # Each patient's two rows err in opposite directions: no variation between patients, so the patients'
    # variance is 0, the fit is OLS, and Satterthwaite's degrees of freedom reduce to n − p.
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    exog = pd.DataFrame({"const": np.ones(60), "x": x})
    y = 1 + 2 * x + np.repeat(rng.normal(size=30), 2) * np.tile([1.0, -1.0], 30)
    fit = multilevel.fit_nested(exog, y, {"patient": np.repeat(np.arange(30), 2)})
    ols = np.linalg.lstsq(exog.to_numpy(), y, rcond=None)[0]
    assert fit.variances["patient"] == 0
    assert fit.params.to_numpy() == pytest.approx(ols, rel=1e-9)
    assert fit.df.to_numpy() == pytest.approx([58, 58], abs=0.01)
    assert fit.notes == ["patient variance estimated at 0: no variation between patients beyond chance"]
