"""Imputation of samples from expectiles (Rowland et al. 2019), checked against an independent truth.

The truth here is numpy/scipy only: the expectile at tau of an equally weighted sample set is the
root of tau mean((z - e)+) - (1 - tau) mean((e - z)+) (scipy's brentq, per tau). Expectiles of K
drawn samples are realisable by K samples (those ones), so the imputed samples' own expectiles must
reproduce the input; for inputs no K-sample set matches, only finiteness, the mean and a residual no
worse than simple alternatives are required.
"""

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from neuro.expectile_imputation import impute_samples

SEED = 20190609


def centred_taus(k: int) -> np.ndarray:
    return (np.arange(k) + 0.5) / k


def reference_expectiles(samples: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Expectiles of the equally weighted samples at each tau (brentq on the first-order condition)."""
    samples = np.asarray(samples, dtype=np.float64)
    low, high = samples.min(), samples.max()
    if low == high:
        return np.full(len(taus), low)
    tol = 1e-14 * (high - low)

    def condition(e: float, tau: float) -> float:
        return tau * np.maximum(samples - e, 0).mean() - (1 - tau) * np.maximum(e - samples, 0).mean()

    return np.array([optimize.brentq(condition, low, high, args=(tau,), xtol=tol, rtol=1e-15) for tau in taus])


def law_expectiles(law: str, taus: np.ndarray) -> np.ndarray:
    """Expectiles of a standard normal or unit exponential law, from the closed forms of
    E(X - e)+ (upper) and E(e - X)+ = e - E[X] + E(X - e)+."""
    if law == "normal":
        mean, upper = 0.0, lambda e: stats.norm.pdf(e) - e * stats.norm.sf(e)
    else:
        mean, upper = 1.0, lambda e: np.exp(-e) if e >= 0 else 1.0 - e

    def condition(e: float, tau: float) -> float:
        return tau * upper(e) - (1 - tau) * (e - mean + upper(e))

    return np.array([optimize.brentq(condition, -50.0, 50.0, args=(tau,), xtol=1e-14) for tau in taus])


def residuals(samples: np.ndarray, expectiles: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """F_k(z) = mean_j [tau_k (z_j - e_k)+ - (1 - tau_k)(e_k - z_j)+] (zero at an exact imputation)."""
    gaps = np.asarray(samples)[None, :] - np.asarray(expectiles)[:, None]
    tau = np.asarray(taus)[:, None]
    return (tau * np.maximum(gaps, 0) - (1 - tau) * np.maximum(-gaps, 0)).mean(axis=1)


def draw(kind: str, rng: np.random.Generator, k: int) -> np.ndarray:
    if kind == "normal":
        return rng.normal(1.5, 2.0, k)
    if kind == "skewed":  # a right-skewed mixture: exponential bulk, 30% wide bump far right
        return np.where(rng.random(k) < 0.3, rng.normal(5.0, 2.0, k), rng.exponential(1.0, k))
    if kind == "two_point":  # Bernoulli-like: -1 or 10 (many ties)
        return np.where(rng.random(k) < 0.3, 10.0, -1.0)
    if kind == "integers":  # ties in several places
        return np.round(rng.normal(0.0, 2.0, k))
    raise ValueError(kind)


KINDS = ("normal", "skewed", "two_point", "integers")


def realisable_rows(taus: np.ndarray, rows_per_kind: int = 3, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(samples, expectiles) for K drawn samples per row, K = len(taus)."""
    rng = np.random.default_rng(seed)
    samples = np.array([draw(kind, rng, len(taus)) for kind in KINDS for _ in range(rows_per_kind)])
    return samples, np.array([reference_expectiles(row, taus) for row in samples])


def impute(expectiles: np.ndarray, taus: np.ndarray, **kwargs) -> np.ndarray:
    return impute_samples(torch.from_numpy(expectiles), torch.from_numpy(taus), **kwargs).numpy()


def assert_reproduces(imputed: np.ndarray, expectiles: np.ndarray, taus: np.ndarray, rtol: float) -> None:
    """The imputed rows' own expectiles equal the input rows within rtol times each row's spread."""
    for row, target in zip(imputed, expectiles, strict=True):
        assert np.all(np.isfinite(row))
        scale = max(np.ptp(target), 1e-300)
        achieved = reference_expectiles(row, taus)
        assert np.max(np.abs(achieved - target)) <= rtol * scale, (achieved - target) / scale


# --- Exact imputation of realisable expectiles ----------------------------------------------------


@pytest.mark.parametrize("k", [5, 11, 51])
@pytest.mark.parametrize("iterations", [0, 2])
def test_imputed_samples_have_the_given_expectiles(k, iterations):
    taus = centred_taus(k)
    _, expectiles = realisable_rows(taus)
    imputed = impute(expectiles, taus, iterations=iterations)
    assert imputed.shape == expectiles.shape
    assert_reproduces(imputed, expectiles, taus, rtol=1e-9)
    assert np.all(np.diff(imputed, axis=1) >= -1e-12 * np.ptp(expectiles, axis=1, keepdims=True))


@pytest.mark.parametrize("k", [5, 11, 51])
def test_imputation_is_mean_preserving_and_more_spread_out_than_the_expectiles(k):
    """The bias Rowland et al. describe: read as samples, expectiles are too concentrated. The
    imputed samples keep the mean (the tau = 1/2 expectile) and have at least their variance."""
    taus = centred_taus(k)
    samples, expectiles = realisable_rows(taus)
    imputed = impute(expectiles, taus)
    spread = np.ptp(expectiles, axis=1)
    np.testing.assert_allclose(imputed.mean(axis=1), expectiles[:, k // 2], rtol=0, atol=1e-12 * spread.max())
    np.testing.assert_allclose(imputed.mean(axis=1), samples.mean(axis=1), rtol=0, atol=1e-9 * spread.max())
    varying = spread > 0
    assert np.all(imputed.var(axis=1)[varying] > expectiles.var(axis=1)[varying])


def test_two_samples_have_the_analytic_answer():
    """Two equal atoms z1 <= z2 have expectile tau z2 + (1 - tau) z1, so two taus fix them:
    z2 - z1 = (e2 - e1) / (t2 - t1), z1 = e1 - t1 (z2 - z1). For taus 1/4, 3/4: m -+ (e2 - e1)."""
    for taus in ([0.25, 0.75], [0.2, 0.6], [0.55, 0.9]):
        t1, t2 = taus
        e = np.array([[0.0, 1.0], [-3.0, 2.5], [4.0, 4.0]])
        width = (e[:, 1] - e[:, 0]) / (t2 - t1)
        expected = np.stack([e[:, 0] - t1 * width, e[:, 0] + (1 - t1) * width], axis=1)
        np.testing.assert_allclose(impute(e, np.array(taus)), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(impute(np.array([[0.0, 1.0]]), np.array([0.25, 0.75])), [[-0.5, 1.5]], atol=1e-12)


def test_three_samples_in_general_position_are_recovered():
    """With one sample per gap between expectiles the solution is unique: the samples themselves."""
    taus = centred_taus(3)
    samples = np.array([[-1.0, 0.0, 4.0], [2.0, 2.5, 2.6]])
    expectiles = np.array([reference_expectiles(row, taus) for row in samples])
    np.testing.assert_allclose(impute(expectiles, taus), samples, rtol=0, atol=1e-12)


@pytest.mark.parametrize("taus", [centred_taus(4), centred_taus(10), np.array([0.1, 0.3, 0.45, 0.6, 0.8, 0.95]),
                                  np.array([0.6, 0.7, 0.8, 0.95]), np.array([0.05, 0.2, 0.4])])
def test_taus_without_one_half(taus):
    """No channel gives the mean; the expectiles are still matched. With taus on both sides of 1/2
    the mean comes out as the samples' here; with taus on one side only, several exact solutions
    with different means can exist, so only the expectiles are checked."""
    samples, expectiles = realisable_rows(taus)
    imputed = impute(expectiles, taus)
    assert_reproduces(imputed, expectiles, taus, rtol=1e-9)
    if taus[0] < 0.5 < taus[-1]:
        np.testing.assert_allclose(imputed.mean(axis=1), samples.mean(axis=1), rtol=0,
                                   atol=1e-9 * np.ptp(expectiles, axis=1).max())


# --- Degenerate, tiny and float32 rows -----------------------------------------------------------


@pytest.mark.parametrize("k", [2, 5, 51])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_constant_rows_return_that_constant(k, dtype):
    """A terminal transition's target r is a point mass: every expectile and every sample is r."""
    rows = torch.tensor([[3.25] * k, [0.0] * k, [-1e6] * k], dtype=dtype)
    for taus in (centred_taus(k), np.linspace(0.1, 0.9, k)):
        imputed = impute_samples(rows, torch.from_numpy(taus), iterations=1)
        assert imputed.dtype == dtype
        assert torch.equal(imputed, rows)


def test_tiny_spread_is_finite_and_accurate():
    taus = centred_taus(11)
    rng = np.random.default_rng(SEED)
    samples = 100.0 + 1e-6 * rng.normal(size=(4, 11))
    expectiles = np.array([reference_expectiles(row, taus) for row in samples])
    imputed = impute(expectiles, taus, iterations=1)
    assert_reproduces(imputed, expectiles, taus, rtol=1e-6)
    # Non-realisable (evenly spaced) tiny rows, also straddling zero.
    for centre in (100.0, 0.0):
        rows = centre + 1e-6 * np.linspace(-1, 1, 11)[None, :]
        out = impute(rows, taus, iterations=1)
        assert np.all(np.isfinite(out))
        assert abs(out.mean() - rows[0, 5]) <= 1e-12 * max(abs(centre), 1e-6)
        assert np.ptp(out) < 1e-5


def test_float32_input():
    taus = centred_taus(51)
    _, expectiles = realisable_rows(taus)
    imputed = impute_samples(torch.from_numpy(expectiles).float(), torch.from_numpy(taus).float())
    assert imputed.dtype == torch.float32
    assert_reproduces(imputed.double().numpy(), expectiles, taus, rtol=1e-5)


def test_mixed_batch_matches_rows_imputed_alone():
    """Rows do not interact: a batch with constant, realisable, noisy and crossing rows gives what
    each row gives alone, and the realisable and constant ones are exact."""
    k = 11
    taus = centred_taus(k)
    _, realisable = realisable_rows(taus, rows_per_kind=1)
    rng = np.random.default_rng(SEED + 1)
    noisy = realisable[0] + rng.normal(0, 0.05, k)
    crossing = realisable[1][[0, 1, 2, 3, 6, 5, 4, 7, 8, 9, 10]]
    batch = np.vstack([np.full(k, 2.0), realisable[0], noisy, np.zeros(k), crossing, realisable[2], realisable[3]])
    for iterations in (0, 2):
        together = impute(batch, taus, iterations=iterations)
        alone = np.vstack([impute(row[None], taus, iterations=iterations) for row in batch])
        np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12)
        assert np.all(together[0] == 2.0) and np.all(together[3] == 0.0)
        exact = [1, 5, 6]
        assert_reproduces(together[exact], batch[exact], taus, rtol=1e-9)


# --- Inputs that no K-sample set matches ---------------------------------------------------------


def unmatched_rows(k: int) -> np.ndarray:
    """Expectiles of continuous laws, the same with noise (sorted or not), crossing and random rows:
    none is the expectile set of K samples."""
    taus = centred_taus(k)
    rng = np.random.default_rng(SEED + 2)
    smooth = [law_expectiles("normal", taus), law_expectiles("exponential", taus)]
    noisy = [row + rng.normal(0, scale * np.ptp(row), k) for row in smooth for scale in (0.001, 0.01)]
    rows = smooth + [np.sort(row) for row in noisy] + noisy
    crossing = np.sort(rng.normal(size=k))
    crossing[k // 2 - 1], crossing[k // 2 + 2] = crossing[k // 2 + 2], crossing[k // 2 - 1]
    return np.vstack(rows + [crossing, np.sort(rng.normal(size=k)), rng.normal(size=k)])


@pytest.mark.parametrize("k", [11, 51])
def test_unmatched_rows_get_a_finite_mean_preserving_least_squares_effort(k):
    taus = centred_taus(k)
    rows = unmatched_rows(k)
    plain = impute(rows, taus, iterations=0)
    refined = impute(rows, taus, iterations=3)
    for e, z0, z3 in zip(rows, plain, refined, strict=True):
        assert np.all(np.isfinite(z0)) and np.all(np.isfinite(z3))
        assert z0.mean() == pytest.approx(e[k // 2], abs=1e-12 * np.ptp(e))
        assert z3.mean() == pytest.approx(e[k // 2], abs=1e-12 * np.ptp(e))

        def loss(z: np.ndarray, e: np.ndarray = e) -> float:  # the tau = 1/2 residual is 0 for both
            return float(np.sum(np.delete(residuals(z, e, taus), k // 2) ** 2))

        naive = np.sort(e) - e.mean() + e[k // 2]  # the expectiles used as samples, with the right mean
        assert loss(z3) <= loss(z0) * (1 + 1e-9) + (1e-12 * np.ptp(e)) ** 2  # steps kept only if they help
        assert loss(z0) < loss(naive)


def test_expectiles_of_a_continuous_law_are_nearly_matched():
    """A smooth law's expectiles are matched by K samples up to a small residual (exactly for K = 11
    here; at K = 51 some lines cannot all be touched), far below the naive use of the expectiles."""
    for k, bound in ((11, 1e-9), (51, 1e-4)):
        taus = centred_taus(k)
        e = law_expectiles("normal", taus)
        z = impute(e[None], taus, iterations=1)[0]
        relative = np.abs(residuals(z, e, taus)).max() / np.ptp(e)
        assert relative <= bound
        assert relative < 1e-2 * np.abs(residuals(e, e, taus)).max() / np.ptp(e)


# --- Interface ------------------------------------------------------------------------------------


def test_no_gradient_and_input_untouched():
    e = torch.tensor([[0.0, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    before = e.detach().clone()
    out = impute_samples(e, torch.tensor([0.25, 0.5, 0.75]))
    assert not out.requires_grad
    assert torch.equal(e.detach(), before)


def test_rejects_bad_arguments():
    e = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        impute_samples(e, torch.tensor([0.25, 0.5]))
    with pytest.raises(ValueError):
        impute_samples(e, torch.tensor([0.5, 0.25, 0.75]))
    with pytest.raises(ValueError):
        impute_samples(e, torch.tensor([0.0, 0.5, 0.75]))
    with pytest.raises(ValueError):
        impute_samples(e, torch.tensor([0.25, 0.5, 0.75]), iterations=-1)
    with pytest.raises(TypeError):
        impute_samples(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0.25, 0.5, 0.75]))
    assert impute_samples(torch.zeros(0, 3), torch.tensor([0.25, 0.5, 0.75])).shape == (0, 3)
    single = torch.tensor([[1.5], [-2.0]])
    assert torch.equal(impute_samples(single, torch.tensor([0.8])), single)
