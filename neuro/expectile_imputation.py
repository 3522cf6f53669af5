"""Imputation step for an expectile code: K equally weighted samples with given expectiles.

A distributional value head with an expectile code (Dabney et al. 2020, Nature 577:671) outputs the
expectiles e_1 <= ... <= e_K of a return distribution at asymmetries tau_1 < ... < tau_K in (0, 1).
Bootstrapping from the expectiles as if they were samples is biased (they are less spread out than
the distribution); Rowland et al. (2019, "Statistics and samples in distributional reinforcement
learning", ICML) first *impute* samples z_1..z_K whose expectiles are the e_k, i.e. solve

    F_k(z) = (1/K) sum_j [tau_k (z_j - e_k)_+ - (1 - tau_k) (e_k - z_j)_+] = 0,   k = 1..K,

and use r + gamma z_j as targets. They minimise sum_k F_k(z)^2 with scipy; here the system is solved
in closed form, batched in plain torch.

Closed form. Sort z and let T_c = z_c + ... + z_{K-1}, so T_0 = K m (m the mean) and T_K = 0; T is
concave in c (its increments -z_c decrease) and sum_j (z_j - e)_+ = max_c [T_c - (K - c) e]. So for
tau_k != 1/2, K F_k = (2 tau_k - 1) max_c [T_c - L_k(c)] with the line

    L_k(c) = K gamma_k (e_k - m) + (K - c) e_k,   gamma_k = (1 - tau_k) / (2 tau_k - 1),

and F = 0 says that T lies below every line and touches each one. The largest such T, the lower
envelope T_c = min_k L_k(c) for 0 < c < K, is concave and touches every line whenever some K-sample
set has exactly these expectiles: then z_c = T_c - T_{c+1} solves the imputation exactly, with
O(K^2) work per row and no iteration. The tau = 1/2 channel is the mean m, held exactly, so the
samples are mean-preserving. Without such a channel, m is one of the K - 1 values at which lines
k and k + 1 meet at c = k (true of any exact solution): the one whose envelope touches every line.

Expectiles that no K-sample set matches (a network's noisy output, crossing rows, most continuous
laws at large K) leave lines untouched, and lines that noise has lowered pull the envelope down,
above all those with tau near 1/2 (an error d in e_k moves L_k by about K d / (2 |2 tau_k - 1|)).
So a relaxed envelope, each line raised by s rms(K F) / |2 tau_k - 1|, is built too, and the one
with the smaller sum_k F_k^2 kept. Optional Gauss-Newton steps then lower that sum: at fixed counts
c_k = #{z_j <= e_k}, K F_k is linear in T_{c_k} with slope 2 tau_k - 1, a least squares per c; a
step is kept only where it helps. That is a least-squares best effort (finite, mean-preserving),
not a certified minimum.
"""

from __future__ import annotations

import functools
from itertools import pairwise
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_ITERATIONS", "impute_samples"]

DEFAULT_ITERATIONS = 0  # Gauss-Newton steps after the closed form; each adds ~60% to a call's time
_RELAX = 0.4  # slack s of the relaxed envelope, in units of the exact envelope's rms(K F)
_RIDGE = 1e-12  # keeps empty per-c least-squares denominators positive (nonempty ones are >= ~1/K^2)
_BREAKPOINT_TOL = 1e-7  # in units of c, when checking that an envelope touches every line
_MEAN_CANDIDATES = 3  # candidate means (no tau = 1/2 channel) scored on the full residual


class _Plan(NamedTuple):
    """Constants of one taus vector (float64, on the input's device); the Q lines are all channels
    but tau = 1/2."""

    n: int  # K
    mid: int | None  # index of tau = 1/2, if any
    below: int  # number of taus below 1/2
    eq: Tensor  # (Q,) long: the channels that are lines
    b: Tensor  # (Q,) 2 tau - 1
    bb: Tensor  # (Q,) (2 tau - 1)^2
    k_a: Tensor  # (Q,) K (1 - tau)
    k_tau: Tensor  # (Q,) K tau
    k_gamma: Tensor  # (Q,) K gamma = K (1 - tau) / (2 tau - 1)
    weights: Tensor  # (K - 1, 1): K - c for c = 1..K-1
    floor: Tensor  # (Q,) 0 where tau > 1/2 (e_k >= m there), else -inf
    ceil: Tensor  # (Q,) 0 where tau < 1/2 (e_k <= m there), else +inf
    relax: Tensor  # (Q,) s / |2 tau - 1|


@functools.lru_cache(maxsize=64)
def _plan(taus: tuple[float, ...], device: torch.device) -> _Plan:
    n = len(taus)
    f64: dict[str, Any] = dict(dtype=torch.float64, device=device)

    mid = taus.index(0.5) if 0.5 in taus else None
    eq = [i for i in range(n) if i != mid]
    t = torch.tensor([taus[i] for i in eq], **f64)
    b = 2 * t - 1
    zero, inf = torch.zeros_like(b), torch.full_like(b, torch.inf)
    return _Plan(
        n=n, mid=mid, below=sum(tau < 0.5 for tau in taus), eq=torch.tensor(eq, device=device),
        b=b, bb=b * b, k_a=n * (1 - t), k_tau=n * t, k_gamma=n * (1 - t) / b,
        weights=(n - torch.arange(1, n, **f64)).unsqueeze(-1),
        floor=torch.where(b > 0, zero, -inf), ceil=torch.where(b > 0, inf, zero), relax=_RELAX / b.abs(),
    )


def _proper(e: Tensor, mean: Tensor | None, plan: _Plan) -> Tensor:
    """e_k moved to the mean where it lies on the wrong side of it (an expectile at tau > 1/2 is at
    least the mean, one at tau < 1/2 at most), which keeps every envelope concave: samples sorted."""
    if mean is None:
        return torch.clamp(e, plan.floor, plan.ceil)
    return torch.where(plan.b > 0, torch.maximum(e, mean), torch.minimum(e, mean))


def _envelope(e: Tensor, mean: Tensor | None, plan: _Plan, slack: Tensor | None = None) -> Tensor:
    """T (..., K + 1): T_0 = K m, T_c = min_k (L_k(c) + slack_k) for 0 < c < K, T_K = 0, from proper
    e (..., Q), mean (..., 1) (None: m = 0) and slack broadcastable to e."""
    beta = plan.k_gamma * (e if mean is None else e - mean)
    if slack is not None:
        beta = beta + slack
    lines = torch.addcmul(beta.unsqueeze(-2), plan.weights, e.unsqueeze(-2))  # (..., K - 1, Q)
    tails = F.pad(lines.amin(-1), (1, 1))
    if mean is not None:
        tails[..., :1] = plan.n * mean
    return tails


def _differences(tails: Tensor) -> Tensor:
    """z_c = T_c - T_{c+1}."""
    return tails[..., :-1] - tails[..., 1:]


def _tails(z: Tensor) -> Tensor:
    """T (..., K + 1): T_c = z_c + ... + z_{K-1}, so T_0 is the sum and T_K = 0 exactly."""
    cumsum = z.cumsum(-1)
    return cumsum[..., -1:] - F.pad(cumsum, (1, 0))


def _offset(e: Tensor, mean: Tensor | None, plan: _Plan) -> Tensor:
    """(1 - tau_k) T_0 - tau_k K e_k with T_0 = K m."""
    if mean is None:
        return -plan.k_tau * e
    return torch.addcmul(plan.k_a * mean, plan.k_tau, e, value=-1.0)


def _residual(z: Tensor, tails: Tensor, e: Tensor, offset: Tensor, plan: _Plan) -> tuple[Tensor, Tensor, Tensor]:
    """For sorted z with tail sums T: counts c_k = #{z_j <= e_k}, r_k = K F_k = (2 tau_k - 1)
    (T_{c_k} + c_k e_k) + offset_k, and sum_k r_k^2 (keepdim)."""
    counts = torch.searchsorted(z, e, right=True)
    spans = torch.addcmul(tails.gather(-1, counts), counts.to(e.dtype), e)
    r = torch.addcmul(offset, plan.b, spans)
    return counts, r, r.square().sum(-1, keepdim=True)


def _mean_without_half(e: Tensor, plan: _Plan) -> Tensor:
    """The mean m (batch, 1) when no tau is 1/2. Any exact solution's envelope has lines k and k + 1
    meeting at c = k for some k, which fixes m; the candidates whose envelope touches every line
    (read off its breakpoints) and lies between the expectiles either side of tau = 1/2 come first,
    and the best few are scored on the full residual."""
    n = plan.n
    gamma = plan.k_gamma / n
    c = torch.arange(1, n, dtype=e.dtype, device=e.device)
    e0, e1 = e[:, :-1], e[:, 1:]
    gap = e1 - e0
    candidates = (n * (gamma[1:] * e1 - gamma[:-1] * e0) + (n - c) * gap) / (n * (gamma[1:] - gamma[:-1]))
    # Lines i and i + 1 cross at c = breaks_i; line i is the lowest on [breaks_{i-1}, breaks_i] and
    # touches the envelope iff that interval holds an integer of [1, K - 1].
    beta = plan.k_gamma * (e.unsqueeze(1) - candidates.unsqueeze(-1))  # (batch, K - 1 candidates, K)
    breaks = n - (beta[..., :-1] - beta[..., 1:]) / gap.unsqueeze(1)
    breaks = torch.where(gap.unsqueeze(1) > 0, breaks, torch.nan)
    lower = F.pad(breaks, (1, 0), value=1.0).clamp(min=1.0)
    upper = F.pad(breaks, (0, 1), value=n - 1.0).clamp(max=n - 1.0)
    misses = (lower - _BREAKPOINT_TOL - torch.floor(upper + _BREAKPOINT_TOL)).clamp(min=0).sum(-1)
    inf = torch.full_like(e[:, :1], torch.inf)
    low = e[:, plan.below - 1: plan.below] if plan.below > 0 else -inf
    high = e[:, plan.below: plan.below + 1] if plan.below < n else inf
    score = misses + (candidates - high).clamp(min=0) + (low - candidates).clamp(min=0)
    top = torch.nan_to_num(score, nan=torch.inf).topk(min(_MEAN_CANDIDATES, n - 1), largest=False).indices
    means = candidates.gather(1, top).unsqueeze(-1)  # (batch, M, 1)
    many = e.unsqueeze(1).expand(-1, means.shape[1], -1).contiguous()
    tails = _envelope(_proper(many, means, plan), means, plan)
    objective = _residual(_differences(tails), tails, many, _offset(many, means, plan), plan)[2]
    best = torch.nan_to_num(objective, nan=torch.inf).argmin(1, keepdim=True)
    return means.gather(1, best)[:, 0]


@torch.no_grad()
def impute_samples(expectiles: Tensor, taus: Tensor, iterations: int = DEFAULT_ITERATIONS) -> Tensor:
    """K equally weighted samples per row whose expectiles at ``taus`` are ``expectiles``.

    Solves F_k(z) = (1/K) sum_j [tau_k (z_j - e_k)_+ - (1 - tau_k)(e_k - z_j)_+] = 0, k = 1..K, the
    imputation step of Rowland et al. (2019, ICML), by the lower envelope of the module docstring:
    exact (up to rounding) whenever some K-sample set has these expectiles. Rows that no K-sample
    set matches (noisy, crossing or non-monotone rows, most continuous laws at large K) get a
    least-squares best effort: the exact or a relaxed envelope, whichever has the smaller
    sum_k F_k^2, then ``iterations`` Gauss-Newton steps, each kept only where it lowers that sum;
    finite, but not a certified minimum. The tau = 1/2 condition (the mean), when present, holds
    exactly in every row. A row whose expectiles are all equal (e.g. the target r of a terminal
    transition) returns K copies of that value.

    Batched, with fixed work per call; computed in float64; under ``torch.no_grad()`` (it builds
    targets and is not differentiable).

    :param expectiles: (batch, K) finite floating tensor, each row ascending along ``taus``.
    :param taus: (K,) strictly increasing asymmetries in (0, 1).
    :param iterations: Gauss-Newton steps after the closed form.
    :return: (batch, K) samples in the dtype of ``expectiles``, each row ascending (up to rounding).
    """
    if expectiles.dim() != 2 or taus.dim() != 1 or expectiles.shape[1] != taus.shape[0]:
        raise ValueError(f"expected expectiles (batch, K) and taus (K,), got {tuple(expectiles.shape)} "
                         f"and {tuple(taus.shape)}")
    if not expectiles.is_floating_point():
        raise TypeError(f"expectiles must be floating point, got {expectiles.dtype}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    tau_list = tuple(taus.detach().cpu().double().tolist())
    if not all(0.0 < t < 1.0 for t in tau_list) or any(s >= t for s, t in pairwise(tau_list)):
        raise ValueError(f"taus must be strictly increasing in (0, 1), got {tau_list}")
    n = len(tau_list)
    if n == 1 or expectiles.shape[0] == 0:
        return expectiles.detach().clone()  # one sample is its own expectile at any tau
    plan = _plan(tau_list, expectiles.device)

    # Centre each row on its mean (or mid-range); the method is shift- and scale-equivariant.
    x = expectiles.detach().to(torch.float64)
    centre = x[:, plan.mid: plan.mid + 1] if plan.mid is not None else 0.5 * (x[:, :1] + x[:, -1:])
    e = x.index_select(1, plan.eq) - centre  # (batch, Q); all 0 for a constant row
    mean = None if plan.mid is not None else _mean_without_half(e, plan)
    offset = _offset(e, mean, plan)
    proper = _proper(e, mean, plan)

    # The exact envelope, and a relaxed one for rows it leaves far off; keep the better per row.
    tails = _envelope(proper, mean, plan)
    z = _differences(tails)  # sorted: the envelope of proper lines is concave
    counts, r, objective = _residual(z, tails, e, offset, plan)
    relaxed_tails = _envelope(proper, mean, plan, (objective / r.shape[-1]).sqrt() * plan.relax)
    relaxed_z = _differences(relaxed_tails)
    relaxed_counts, relaxed_r, relaxed_objective = _residual(relaxed_z, relaxed_tails, e, offset, plan)
    better = relaxed_objective < objective
    z = torch.where(better, relaxed_z, z)
    if iterations == 0:
        return (centre + z).to(expectiles.dtype)

    tails = torch.where(better, relaxed_tails, tails)
    counts = torch.where(better, relaxed_counts, counts)
    r = torch.where(better, relaxed_r, r)
    objective = torch.where(better, relaxed_objective, objective)
    rate = torch.ones_like(objective)
    for i in range(iterations):
        # Least squares per c: the lines whose count is c share the unknown T_c (T_0, T_K held).
        at = counts.clamp(1, n - 1)
        numerator = torch.zeros_like(tails).scatter_add_(1, at, plan.b * r)
        denominator = torch.zeros_like(tails).scatter_add_(1, at, plan.bb.expand_as(r))
        step = numerator / (denominator + _RIDGE)
        new_z = _differences(torch.addcmul(tails, rate, step, value=-1.0)).sort(-1).values
        new_tails = _tails(new_z)
        new_counts, new_r, new_objective = _residual(new_z, new_tails, e, offset, plan)
        better = new_objective < objective
        z = torch.where(better, new_z, z)
        if i + 1 < iterations:
            tails = torch.where(better, new_tails, tails)
            counts = torch.where(better, new_counts, counts)
            r = torch.where(better, new_r, r)
            objective = torch.where(better, new_objective, objective)
            rate = torch.where(better, 1.0, 0.5 * rate)  # halve the step where it did not help
    return (centre + z).to(expectiles.dtype)
