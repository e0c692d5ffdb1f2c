"""A linear model with nested random intercepts (sessions in episodes in patients in clinicians), fitted by REML.

The same model as statsmodels' `MixedLM` with groups = clinician and variance components for patient and episode
within clinician, but fitted in a time that grows with the number of episodes, not its cube: with intercepts only,
each level's covariance is inverted in closed form from the level below (the Woodbury identity, one level at a
time), so the likelihood needs only sums per episode, patient and clinician. statsmodels inverts a dense matrix of
every patient of a clinician at each step: 3 s for the 271 episodes of the sample data, against 0.1 s here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, sparse

# A level's variance below this share of the residual variance is reported as 0: no practical difference, and a
# variance kept just above 0 has a likelihood too flat on the log scale to differentiate for Satterthwaite.
BOUNDARY = 1e-4


@dataclass(frozen=True)
class NestedFit:
    """A REML fit: fixed effects with their covariance, each level's variance, and how the fit went."""

    params: pd.Series
    cov: pd.DataFrame
    df: pd.Series  # Satterthwaite's degrees of freedom of each fixed effect
    variances: dict[str, float]  # level name (and "residual") -> variance, points²
    llf: float  # REML log-likelihood, as statsmodels reports it
    converged: bool
    notes: list[str] = field(default_factory=list)

    @property
    def bse(self) -> pd.Series:
        """Return the standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index)


def _parents(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Return, for each unit of the lower level, the unit of the upper level it lies in; raise if not nested."""
    parents = np.full(lower.max() + 1, -1)
    parents[lower] = upper
    if not np.array_equal(parents[lower], upper):
        raise ValueError("the levels are not nested: a unit lies in two units of the level above")
    return parents


def _indicator(parents: np.ndarray) -> sparse.csr_array:
    """Return the units × parents 0/1 matrix that sums a lower level's rows into its parents."""
    rows = np.arange(parents.size)
    return sparse.csr_array((np.ones(parents.size), (rows, parents)), shape=(parents.size, parents.max() + 1))


class _Families:
    """The second level's units grouped by the sizes of their children, for Σ_u g_u s_u' s_u without a pass over units.

    A unit u (a patient) of few children (episodes) has s_u = Σ_e w(n_e) s_e and t_u = Σ_e w(n_e) n_e, w(n) =
    1 / (1 + θ₀ n), so both depend on θ only through its children's sizes: g_u s_u' s_u = g(class) Σ_(e, e') w(n_e)
    w(n_e') s_e' s_e', and the sums of s_e' s_e' are taken once per (class, n_e, n_e'). Each likelihood then costs
    a few hundred small matrices instead of a product over every patient, which multi-threaded BLAS made 40 times
    slower on a busy machine.
    """

    def __init__(self, size_of: np.ndarray, parent: np.ndarray, sums: np.ndarray, sizes: int):
        # A unit's class is how many children of each size it has; children[c, i] counts those of size sizes[i].
        per_unit = np.zeros((parent.max() + 1, sizes))
        np.add.at(per_unit, (parent, size_of), 1.0)
        self.children, class_of = np.unique(per_unit, axis=0, return_inverse=True)
        class_of = class_of.ravel()
        children = pd.DataFrame({"unit": parent, "size": size_of, "child": np.arange(parent.size)})
        pairs = children.merge(children, on="unit")
        key = pd.DataFrame({"shape": class_of[pairs["unit"]], "a": pairs["size_x"], "b": pairs["size_y"]})
        key_of, keys = pd.factorize(pd.MultiIndex.from_frame(key))
        self.shape, self.a, self.b = (np.asarray(keys.get_level_values(i)) for i in range(3))
        order = np.argsort(key_of, kind="stable")
        bounds = np.cumsum(np.bincount(key_of))[:-1]
        x, y = pairs["child_x"].to_numpy()[order], pairs["child_y"].to_numpy()[order]
        self.blocks = np.stack([sums[i].T @ sums[j] for i, j in zip(np.split(x, bounds), np.split(y, bounds),
                                                                     strict=True)])

    def reduce(self, weight: np.ndarray, sizes: np.ndarray, ratio: float) -> np.ndarray:
        """Return Σ_u θ / (1 + θ t_u) s_u' s_u, with weight[i] = 1 / (1 + θ₀ sizes[i]) the level below's shrinkage."""
        t = self.children @ (weight * sizes)
        g = ratio / (1.0 + ratio * t)
        return np.tensordot(g[self.shape] * weight[self.a] * weight[self.b], self.blocks, axes=1)


class _Levels:
    """The data reduced to what the likelihood needs: M'M and the sums of M = [X, y] per unit of each level."""

    def __init__(self, exog: np.ndarray, endog: np.ndarray, levels: list[np.ndarray]):
        m = np.column_stack([exog, endog])
        self.n, self.p = exog.shape
        self.cross = m.T @ m
        codes = [pd.factorize(level)[0] for level in levels]
        bottom = _indicator(codes[0])  # observations -> units of the lowest level
        self.sums = bottom.T @ m
        self.counts = np.asarray(bottom.sum(axis=0)).ravel()
        # At the lowest level θ / (1 + θ t_u) depends only on the unit's size, so Σ_u s_u' s_u is summed once per
        # size; the likelihood is then evaluated in the time of the levels above.
        self.sizes, size_of = np.unique(self.counts, return_inverse=True)
        self.by_size = np.stack([self.sums[size_of == i].T @ self.sums[size_of == i] for i in range(self.sizes.size)])
        parents = [_parents(low, high) for low, high in zip(codes, codes[1:], strict=False)]
        self.up = [_indicator(parent).T for parent in parents]
        self.families = None
        children = np.bincount(parents[0]) if parents else np.zeros(0, dtype=int)
        if children.size and (children**2).sum() <= 4 * children.sum():  # few each: patients, not clinicians
            families = _Families(size_of, parents[0], self.sums, self.sizes.size)
            self.families = families if len(families.blocks) * 4 <= children.size else None

    def reduce(self, ratios: np.ndarray) -> tuple[np.ndarray, float]:
        """Return (M' H⁻¹ M, log det H) for H = I + Σ ratio_j Z_j Z_j', the covariance over the residual variance.

        Going up one level with H_j = H_(j−1) + θ Z Z' (block diagonal below), for a unit u with
        s_u = 1' H_(j−1)⁻¹ M and t_u = 1' H_(j−1)⁻¹ 1: M' H_j⁻¹ M = M' H_(j−1)⁻¹ M − Σ_u θ / (1 + θ t_u) s_u' s_u,
        log det grows by Σ_u log(1 + θ t_u), and the next level's sums are Σ_(u in v) s_u / (1 + θ t_u), t likewise.
        """
        quad, logdet = self.cross.copy(), 0.0
        sums, counts = self.sums, self.counts
        for j, ratio in enumerate(ratios):
            shrink = 1.0 + ratio * counts
            if j == 0:
                quad -= np.tensordot(ratio / (1.0 + ratio * self.sizes), self.by_size, axes=1)
            elif j == 1 and self.families is not None:
                quad -= self.families.reduce(1.0 / (1.0 + ratios[0] * self.sizes), self.sizes, ratio)
            else:
                quad -= (sums * (ratio / shrink)[:, None]).T @ sums
            logdet += float(np.log(shrink).sum())
            if j < len(self.up):
                sums, counts = self.up[j] @ (sums / shrink[:, None]), self.up[j] @ (counts / shrink)
        return quad, logdet

    def generalised(self, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Return (β, (X' H⁻¹ X)⁻¹, r' H⁻¹ r, log |H| + log |X' H⁻¹ X|): generalised least squares at the ratios."""
        quad, logdet = self.reduce(ratios)
        xx, xy, yy = quad[: self.p, : self.p], quad[: self.p, self.p], quad[self.p, self.p]
        xx_inv = np.linalg.inv(xx)
        beta = xx_inv @ xy
        residual = float(yy - xy @ beta)
        if residual <= 0:
            raise ValueError("no residual variation: the model fits every pain exactly")
        return beta, xx_inv, residual, logdet + np.linalg.slogdet(xx)[1]

    def loglik(self, variances: np.ndarray) -> tuple[float, np.ndarray]:
        """Return (REML log-likelihood, covariance of β) at variances (σ², then each level's), σ² not profiled.

        log |V| = n log σ² + log |H|, log |X' V⁻¹ X| = log |X' H⁻¹ X| − p log σ², r' V⁻¹ r = r' H⁻¹ r / σ².
        """
        scale = variances[0]
        _, xx_inv, residual, logdets = self.generalised(variances[1:] / scale)
        deviance = (self.n - self.p) * np.log(2 * np.pi * scale) + logdets + residual / scale
        return -deviance / 2, scale * xx_inv

    def profile(self, ratios: np.ndarray) -> tuple[float, np.ndarray, float]:
        """Return (−2 REML log-likelihood, β, σ²) at the variance ratios, with σ² at its REML estimate."""
        beta, _, residual, logdets = self.generalised(ratios)
        dof = self.n - self.p
        scale = residual / dof
        return dof * (1.0 + np.log(2 * np.pi * scale)) + logdets, beta, scale


def _hessian(f, x: np.ndarray, step: float) -> np.ndarray:
    """Return the matrix of second derivatives of f at x by central differences."""
    k = x.size
    out = np.empty((k, k))
    shift = np.eye(k) * step
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = (
                f(x + shift[i] + shift[j]) - f(x + shift[i] - shift[j])
                - f(x - shift[i] + shift[j]) + f(x - shift[i] - shift[j])
            ) / (4 * step * step)
    return out


def satterthwaite_df(data: _Levels, variances: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Return Satterthwaite's degrees of freedom for each fixed effect: 2 Var(β_j)² / Var(Var(β_j)).

    Var(β_j) is a function of the variances ψ; its variance is by the delta method g' A g, with g its gradient
    and A the inverse of the REML information of ψ, both by central differences on log ψ, as lmerTest does
    numerically in R (Kuznetsova et al. 2017). Variances estimated at 0 are held fixed (on the boundary the
    likelihood has no curvature to measure). In balanced designs this gives the exact F-test degrees of freedom.
    """
    free = np.flatnonzero(variances > 0)
    base = np.log(variances[free])

    def at(eta: np.ndarray) -> tuple[float, np.ndarray]:
        full = variances.copy()
        full[free] = np.exp(eta)
        return data.loglik(full)

    information = -_hessian(lambda eta: at(eta)[0], base, step)
    shift = np.eye(free.size) * step
    gradient = np.stack([(np.diag(at(base + s)[1]) - np.diag(at(base - s)[1])) / (2 * step) for s in shift])
    spread = np.einsum("ij,ik,kj->j", gradient, np.linalg.inv(information), gradient)
    var_beta = np.diag(at(base)[1])
    return np.clip(2 * var_beta**2 / spread, 1.0, data.n - data.p)


def fit_nested(
    exog: pd.DataFrame, endog: pd.Series | np.ndarray, levels: dict[str, np.ndarray | pd.Series]
) -> NestedFit:
    """Return the REML fit of endog ~ exog with a random intercept for each level, lowest level first.

    `levels` maps a name ("episode", "patient", "clinician") to each observation's unit at that level; each level
    must nest in the next (a unit lies in one unit above). The variance ratios to the residual variance are
    found by L-BFGS-B from two starting points, σ² and β profiled out. The fixed effects' covariance is the
    model-based (X' V⁻¹ X)⁻¹ that nlme, lme4 and SAS report; statsmodels' MixedLM inverts the observed information
    of all parameters together, which differs by about 1 % on the sample data.
    """
    names = list(levels)
    if not names:
        raise ValueError("no level: a random intercept needs at least one")
    data = _Levels(np.asarray(exog, dtype=float), np.asarray(endog, dtype=float),
                   [np.asarray(v) for v in levels.values()])
    if data.n <= data.p:
        raise ValueError("fewer observations than fixed effects")

    def objective(ratios: np.ndarray) -> float:
        return data.profile(ratios)[0]

    bounds = [(0.0, 1e4)] * len(names)
    fits = [optimize.minimize(objective, np.full(len(names), start), method="L-BFGS-B", bounds=bounds)
            for start in (0.1, 1.0)]
    best = min(fits, key=lambda f: f.fun)
    ratios = np.where(best.x < BOUNDARY, 0.0, best.x)
    _, beta, scale = data.profile(ratios)
    variances = np.concatenate([[scale], ratios * scale])
    llf, cov = data.loglik(variances)
    columns = list(exog.columns) if isinstance(exog, pd.DataFrame) else [f"x{i}" for i in range(data.p)]
    notes = [f"{name} variance estimated at 0: no variation between {name}s beyond chance"
             for name, ratio in zip(names, ratios, strict=True) if ratio == 0.0]
    if not best.success:
        notes.append(f"the optimiser stopped early ({best.message}); the best fit found is shown")
    return NestedFit(
        params=pd.Series(beta, index=columns),
        cov=pd.DataFrame(cov, index=columns, columns=columns),
        df=pd.Series(satterthwaite_df(data, variances), index=columns),
        variances={**{n: float(v) for n, v in zip(names, variances[1:], strict=True)}, "residual": scale},
        llf=llf,
        converged=bool(best.success),
        notes=notes,
    )
