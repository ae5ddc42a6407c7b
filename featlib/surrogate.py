r"""A corrected prediction for pair feedback: the phase transition of Gaussian measurements with the
pairs' second moment.

Why a correction is needed.  :func:`featlib.bounds.convex_phase_transition` predicts where random
*isotropic* linear constraints identify a rank-r PSD target (Amelunxen, Lotz, McCoy and Tropp,
*Living on the edge*, 2014: a uniformly random subspace of codimension n meets a closed convex cone
C beyond 0 with probability near 1 when n < delta(C) and near 0 when n > delta(C), delta the
statistical dimension).  Sampled pairs beat that prediction by a wide margin at low rank (measured:
rank 1 at p = 10 needs 17.5 Gaussian pairs, not 31.5), because their constraint matrices are far from
isotropic.

The surrogate (derived here; the one heuristic step is named).  Take the pairs of
``teach(phi, "gaussian")`` or ``teach(phi, "sparse-sampled")``: activation x against a fixed
reference b, rescaled so that x^T Phi* x = c b^T Phi* b.  Modulo the ray of Phi* every direction can
be normalised to b^T Delta b = 0, and then a pair's constraint reads <x x^T, Delta> = 0.  So the
pairs identify Phi* exactly when no non-zero Delta in the cone

    K = { Delta : U_perp^T Delta U_perp >= 0 (PSD),  b^T Delta b = 0 }

(the tangent cone of the PSD cone at Phi*, U_perp a basis of its kernel, cut by the reference's
hyperplane) satisfies <x_i x_i^T, Delta> = 0 for every pair.  Write the constraint through svec
(the orthonormal coordinates of symmetric matrices: diagonal entries, sqrt(2) times the upper
off-diagonal ones, row by row), v_i = svec(x_i x_i^T), and let S = E[v v^T] be the second-moment
matrix of the ensemble.

1. *Heuristic step (universality, not proved here):* replace the v_i by Gaussian vectors with the
   same second moment, v_i = S^(1/2) g_i, g_i ~ N(0, I).  (S carries both the mean E[x x^T],
   which for Gaussian x is the identity, and the covariance of x x^T; what it drops is that each
   x x^T is a rank-one PSD matrix.)
2. *Proved for that surrogate:* <S^(1/2) g_i, Delta> = <g_i, S^(1/2) Delta>, so the null space of
   the surrogate constraints is S^(-1/2) applied to a uniformly random subspace of codimension n;
   it meets K beyond 0 exactly when that random subspace meets the linear image S^(1/2) K.  ALMT
   (their Theorem I) then puts the 50 % point at n* = delta(S^(1/2) K), within a window of order
   sqrt(D), D = p(p+1)/2.
3. *Computed here by Monte Carlo:* delta(C) = E || Pi_C(g) ||^2 (ALMT, Proposition 3.1), and the
   projection onto C = S^(1/2) K is ``min_{Delta in K} || g - S^(1/2) svec(Delta) ||^2``, a convex
   problem solved to a stated tolerance by ADMM (:func:`statistical_dimension`).

Two remarks.  The normalisation does not matter: the pair matrices themselves, A = x x^T - c b b^T,
are P v with v = svec(x x^T) and P = I - a phi^T / (b^T Phi* b) (a = svec(b b^T), phi = svec(Phi*)),
and on Phi*'s orthogonal complement <P S^(1/2) g, Delta> = <S^(1/2) g, P^T Delta> with P^T a
bijection from T cut by phi^perp onto K; so Gaussian constraints with the pair matrices' own second
moment P S P^T, acting on T cut by phi^perp, give the same event.  And the isotropic control is the
case P S P^T = the identity on phi^perp (not S = I), where the prediction is
:func:`featlib.bounds.convex_phase_transition`, delta(T) - 1, in closed form.  A check that holds
exactly: at full rank K is a subspace of dimension D - 1, so n* = D - 1, the proved full-rank count.  Only second moments enter, so what the
surrogate cannot see is anything beyond them: which entries an activation's support touches at all
(a sparse ensemble that never touches an entry cannot identify it, whatever the second moment says),
and wasted activations (a 0- or 1-sparse activation carries less than its share).  How close the
prediction comes is *measured*, in the chapter "How many pairs? Phase transitions" and on the
Benchmarks page; it is a prediction, not a bound.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from . import _checks

__all__ = ["SURROGATE_ENSEMBLES", "svec_indices", "second_moment", "statistical_dimension"]

#: the activation laws :func:`second_moment` knows (those of the phase experiments)
SURROGATE_ENSEMBLES = ("gaussian", "sparse-sampled")


def svec_indices(p: int):
    """Row and column indices ``(i, j)``, i <= j, of the svec coordinates, row by row, and each
    coordinate's factor (1 on the diagonal, sqrt(2) off it), so that svec is an isometry: the order and
    weights of :func:`featlib.linalg.svec` (a module of the same layer, which this one may not import)."""
    p = _checks.check_positive_int(p, "p")
    i, j = np.triu_indices(p)
    return i, j, np.where(i == j, 1.0, math.sqrt(2.0))


def _support_probabilities(p, s, mu, sampler):
    """P(a fixed set of t coordinates lies in the support), t = 0..4, for the teacher's law."""
    if sampler == "exact":
        counts, weights = np.array([min(s, p)]), np.array([1.0])
    else:  # a count from Binomial(p, 1 - mu) (truncated at s when given), then a uniform support
        q = 1.0 - mu
        kmax = p if s is None else min(s, p)
        counts = np.arange(kmax + 1)
        logw = scipy.stats.binom.logpmf(counts, p, q)
        if not np.any(np.isfinite(logw)):
            raise _checks.ArgumentError(f"no activation has at most s = {s} non-zeros at mu = {mu:g}, p = {p}.")
        weights = np.exp(logw - logw.max())
        weights /= weights.sum()
    out = np.empty(5)
    for t in range(5):
        falling = np.ones(counts.shape)
        for a in range(t):
            falling *= np.clip(counts - a, 0, None) / (p - a) if p - a > 0 else 0.0
        out[t] = float(weights @ falling)
    return out


def second_moment(p: int, ensemble: str = "gaussian", *, s: int | None = 3, mu: float | None = None,
                  sampler: str = "exact") -> np.ndarray:
    """S = E[svec(x x^T) svec(x x^T)^T] (D x D, D = p(p+1)/2, :func:`svec_indices` order) for the
    activations x of a phase-experiment ensemble, in closed form.

    ``"gaussian"``: x ~ N(0, I_p) (``teach(..., "gaussian")``), S = 2 I + svec(I) svec(I)^T.
    ``"sparse-sampled"``: the law of ``teach(..., "sparse-sampled", s=, mu=, sampler=)``: a uniformly
    random support (exactly ``s`` coordinates for ``sampler="exact"``; for ``"bernoulli"`` each
    coordinate with probability 1 - ``mu``, at most ``s`` when ``s`` is given) with independent
    U(0, 1] values, so E[x_i x_j x_k x_l] = P(the distinct indices all lie in the support) times the
    product of 1 / (m + 1) over the distinct indices' multiplicities m.
    (The isotropic control needs no surrogate: its prediction is in closed form, module docstring.)
    """
    p = _checks.check_positive_int(p, "p")
    ensemble = _checks.check_method(ensemble, SURROGATE_ENSEMBLES, "ensemble")
    D = p * (p + 1) // 2
    _checks.check_allocation(8 * 6 * D * D, f"a {D} x {D} second-moment matrix (p = {p})")
    i, j, f = svec_indices(p)
    if ensemble == "gaussian":
        m = np.where(i == j, 1.0, 0.0)
        return 2.0 * np.eye(D) + np.outer(m, m)
    sampler = _checks.check_method(sampler, ("exact", "bernoulli"), "sampler")
    if sampler == "exact":
        if s is None:
            raise _checks.ArgumentTypeError("sampler='exact' draws exactly s non-zeros: pass s.")
        s = _checks.check_positive_int(s, "s")
    else:
        if mu is None:
            raise _checks.ArgumentTypeError("sampler='bernoulli' needs mu, the probability that a coordinate is zero.")
        mu = _checks.check_probability(mu, "mu", closed_high=False)
        s = None if s is None else _checks.check_positive_int(s, "s")
    prob = _support_probabilities(p, s, mu, sampler)
    idx = np.sort(np.stack(np.broadcast_arrays(i[:, None], j[:, None], i[None, :], j[None, :]), axis=-1), axis=-1)
    eq = idx[..., 1:] == idx[..., :-1]  # (D, D, 3): which neighbours (sorted) coincide
    # the eight patterns of equal neighbours -> (number of distinct indices, prod 1 / (m + 1))
    code = eq[..., 0] * 4 + eq[..., 1] * 2 + eq[..., 2]
    distinct = np.array([4, 3, 3, 2, 3, 2, 2, 1])  # 0b000 .. 0b111
    weight = np.array([1 / 16, 1 / 12, 1 / 12, 1 / 8, 1 / 12, 1 / 9, 1 / 8, 1 / 5])
    moment = prob[distinct[code]] * weight[code]
    return moment * f[:, None] * f[None, :]


def statistical_dimension(phi_star, second_moment, *, reference="gaussian", samples: int = 100, seed=0,
                          tol: float = 1e-4, mean_tol: float = 1e-2,
                          max_iter: int = 20000) -> dict:
    """Monte Carlo estimate of delta(S^(1/2) K) for one target (the module docstring's n*).

    ``K = {Delta : U_perp^T Delta U_perp >= 0, b^T Delta b = 0}`` with U_perp the kernel of
    ``phi_star`` (eigenvalues at most 1e-10 of the largest count as zero; the target's rank is what
    is left) and b the reference: ``"gaussian"`` draws a fresh N(0, I) vector for every sample (the
    Gaussian teacher's reference, whose law is what matters), an int k means e_k, a vector means
    itself.  Each sample draws g ~ N(0, I_D) and solves ``min_{Delta in K} ||g - S^(1/2) svec(Delta)||^2``
    by ADMM (the PSD block split from the quadratic, over-relaxed, each sample's penalty balanced on its
    residuals, the x-step solved through S's eigendecomposition; S is first divided by its largest
    entry, which changes no cone).  Every 10 iterations it *brackets* ||Pi_C(g)||^2 =
    ||g||^2 - dist(g, C)^2 = dist(g, C^o)^2 (Moreau) between two values: a point of K (the z-iterate,
    whose block was projected, moved along K's lineality onto the reference's hyperplane) gives the
    lower bound <g, S^(1/2) x>^2 / ||S^(1/2) x||^2, and a point of the polar cone C^o,
    S^(-1/2)(tau u + nu a) with u the part the z-step removed (built from the negative eigenvalues
    themselves, so it lies in K's polar) and a = svec(b b^T), gives the upper bound
    ||g - S^(-1/2)(tau u + nu a)||^2 at the best tau >= 0 and nu.  A sample stops when its bracket is
    within ``tol`` (relative), or after ``max_iter`` iterations (rare: a reference nearly in the
    kernel of Phi* makes the cut nearly degenerate and ADMM slow); its value is the bracket's
    midpoint.  (The bounds hold in exact arithmetic; they are computed in floating point.)

    Returns ``delta`` (the mean), ``stderr`` (its Monte Carlo standard error), ``bracket`` (the means
    of the lower and upper bounds: the sample mean lies in it), ``values`` (per sample),
    ``unconverged`` (samples stopped by ``max_iter``), ``rank`` and ``iterations``.  If the bracket of
    the mean is wider than ``mean_tol`` (relative) the estimate is refused with
    :class:`featlib.ConvergenceError`, never returned inexact.
    """
    phi = _checks.finite_array(phi_star, "phi_star")
    if phi.ndim != 2 or phi.shape[0] != phi.shape[1]:
        raise _checks.ShapeError(f"phi_star must be a square matrix; got shape {phi.shape}.")
    p = phi.shape[0]
    D = p * (p + 1) // 2
    S = _checks.finite_array(second_moment, "second_moment")
    if S.shape != (D, D):
        raise _checks.ShapeError(f"second_moment must be {D} x {D} for p = {p} (see second_moment()); got {S.shape}.")
    samples = _checks.check_positive_int(samples, "samples")
    max_iter = _checks.check_positive_int(max_iter, "max_iter")
    tol = _checks.check_rtol(tol, "tol")
    mean_tol = _checks.check_rtol(mean_tol, "mean_tol")
    _checks.check_allocation(8 * (4 * D * samples + 3 * D * D), f"{samples} samples at p = {p}")
    sym = (phi + phi.T) / 2
    if np.max(np.abs(sym - phi)) > 1e-12 * max(1.0, np.max(np.abs(phi))):
        raise _checks.ArgumentError("phi_star must be symmetric.")
    lam, vec = np.linalg.eigh(sym)
    top = float(np.max(np.abs(lam)))
    if top == 0 or lam[0] < -1e-10 * top:
        raise _checks.ArgumentError("phi_star must be PSD and non-zero.")
    kernel = vec[:, lam <= 1e-10 * top]
    m = kernel.shape[1]
    rng = _checks.as_generator(seed)
    ii, jj, f = svec_indices(p)
    # references, one column per sample, as svec(b b^T)
    if isinstance(reference, str):
        if reference != "gaussian":
            raise _checks.ArgumentError(f"reference must be 'gaussian', an index or a vector; got {reference!r}.")
        B = rng.standard_normal((p, samples))
    elif isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if not 0 <= int(reference) < p:
            raise _checks.ArgumentError(f"reference index {reference} is out of range for p = {p}.")
        B = np.zeros((p, samples))
        B[int(reference)] = 1.0
    else:
        b = _checks.finite_array(reference, "reference").ravel()
        if b.shape != (p,) or not np.any(b):
            raise _checks.ShapeError(f"reference must be a non-zero vector of length {p}.")
        B = np.repeat(b[:, None], samples, axis=1)
    A = B[ii] * B[jj] * f[:, None]  # svec(b b^T), (D, samples)
    A /= np.linalg.norm(A, axis=0)
    # directions in K's lineality space (U_perp^T Delta U_perp = 0) that leave b^T Delta b = 0: the
    # projection of b b^T onto that space (b^T (.) b of it is |b|^4 - |U_perp^T b|^4 > 0 unless b is in the kernel)
    Bm = np.einsum("is,js->sij", B, B)
    lin = Bm - kernel @ (kernel.T @ Bm @ kernel) @ kernel.T
    L_dir = (lin[:, ii, jj] * f[None, :]).T  # (D, samples)
    quad = np.einsum("is,ij,js->s", B, sym, B) / (top * np.sum(B * B, axis=0))
    if np.any(quad <= 1e-12):
        raise _checks.ArgumentError(
            f"a reference lies in the kernel of phi_star (b^T Phi* b / (|Phi*| |b|^2) = {float(quad.min()):.2g}), "
            "so no pair can be normalised against it: choose another (an index with a positive diagonal entry).")
    L_dir /= np.linalg.norm(L_dir, axis=0)
    # delta(S^(1/2) K) does not change when S is scaled (the cone is): work with S / max|S|, so that
    # a second moment at 1e+-150 neither overflows nor underflows
    big = float(np.max(np.abs(S)))
    if big == 0:
        raise _checks.ArgumentError("second_moment is zero.")
    w, V = np.linalg.eigh((S / big + (S / big).T) / 2)
    if w[0] <= 1e-12 * max(w[-1], 1e-300):
        raise _checks.ArgumentError(
            "second_moment must be positive definite: a singular one means the ensemble never measures some "
            "direction of Sym(p) (e.g. 1-sparse activations and the off-diagonal entries), which no Gaussian "
            "surrogate describes.")
    G = rng.standard_normal((D, samples))
    half = lambda x: V @ (np.sqrt(w)[:, None] * (V.T @ x))  # noqa: E731  S^(1/2) x
    neg_half = lambda x: V @ ((1 / np.sqrt(w))[:, None] * (V.T @ x))  # noqa: E731  S^(-1/2) x
    q = half(G)
    Ah = neg_half(A)

    Vq, VA = V.T @ q, V.T @ A  # fixed for the whole run: only the penalties change

    def hyperplane_solve(rho, cols):
        """(S + rho)^(-1) a per sample and a^T of it: the x-step's correction onto b^T Delta b = 0,
        recomputed only when a penalty changes or samples stop."""
        c = V @ (VA[:, cols] / (w[:, None] + rho[None, :]))
        return c, np.sum(A[:, cols] * c, axis=0)

    def x_step(z, u, rho, cols, c, ac):
        inv = 1.0 / (w[:, None] + rho[None, :])  # each sample has its own penalty
        y = V @ (inv * (Vq[:, cols] + rho * (V.T @ (z - u))))
        nu = np.sum(A[:, cols] * y, axis=0) / ac
        return y - nu * c

    def to_mat(x):
        X = np.zeros((x.shape[1], p, p))
        X[:, ii, jj] = (x / f[:, None]).T
        X[:, jj, ii] = (x / f[:, None]).T
        return X

    def z_step(v):
        """The projection onto K and what it removes, U_perp N U_perp^T with N <= 0 (in K's polar),
        built from N itself rather than as a difference (a difference carries rounding that the
        upper bound would amplify)."""
        if m == 0:
            return v, np.zeros_like(v)
        blk = kernel.T @ to_mat(v) @ kernel  # batched matrix products (a three-operand einsum loops naively)
        bl, bv = np.linalg.eigh((blk + np.swapaxes(blk, 1, 2)) / 2)
        neg = (bv * np.minimum(bl, 0.0)[:, None, :]) @ np.swapaxes(bv, 1, 2)
        Nm = kernel @ neg @ kernel.T
        removed = (Nm[:, ii, jj] * f[None, :]).T
        return v - removed, removed

    def bracket(z, u, cols):
        """Lower and upper bounds on ||Pi_C(g)||^2 from a point of K' and a point of C's polar."""
        g, a, ld, ah = G[:, cols], A[:, cols], L_dir[:, cols], Ah[:, cols]
        # z is in K (its block was projected); moving along L_dir (K's lineality) puts it on b^T Delta b = 0
        xf = z - np.sum(a * z, axis=0) / np.sum(ld * a, axis=0) * ld
        sx = half(xf)
        num = np.maximum(np.sum(g * sx, axis=0), 0.0)
        den = np.sum(sx * sx, axis=0)
        lower = np.divide(num * num, den, out=np.zeros_like(num), where=den > 0)  # best multiple of xf
        # u is in K's polar (what the z-step removed), so S^(-1/2)(tau u + nu a) is in C's polar for tau >= 0:
        # the best such (tau, nu) by least squares, tau clipped at 0 (then nu alone)
        uh = neg_half(u)
        upper = np.empty(len(cols))
        for k in range(len(cols)):
            M2 = np.stack([uh[:, k], ah[:, k]], axis=1)
            coef = np.linalg.lstsq(M2, g[:, k], rcond=None)[0]
            if coef[0] < 0:
                coef = np.array([0.0, ah[:, k] @ g[:, k] / (ah[:, k] @ ah[:, k])])
            resid = g[:, k] - M2 @ coef
            upper[k] = resid @ resid
        return lower, upper

    lower = np.zeros(samples)
    upper = np.full(samples, np.inf)
    iterations = np.zeros(samples, dtype=np.int64)
    cols = np.arange(samples)  # samples still running
    x = np.zeros((D, samples))
    z = np.zeros((D, samples))
    u = np.zeros((D, samples))
    rho = np.full(samples, float(np.mean(w)))
    scale = math.sqrt(D)
    it = 0
    c, ac = hyperplane_solve(rho, cols)
    while cols.size and it < max_iter:
        x = x_step(z, u, rho, cols, c, ac)
        xr = 1.6 * x + (1 - 1.6) * z  # over-relaxation (Boyd et al. 3.4.3), alpha = 1.6
        z_old = z
        z, u = z_step(xr + u)  # the scaled dual: (xr + u) - z, exactly in K's polar
        it += 1
        if it % 10 == 0:
            lo, hi = bracket(z, u, cols)
            lower[cols], upper[cols], iterations[cols] = lo, hi, it
            done = hi - lo <= tol * np.maximum(hi, 1.0)
            r_p = np.linalg.norm(x - z, axis=0)
            r_d = rho * np.linalg.norm(z - z_old, axis=0)
            size = np.maximum(np.maximum(np.linalg.norm(x, axis=0), np.linalg.norm(z, axis=0)), 1.0)
            up, down = r_p / size > 5 * r_d / scale, r_d / scale > 5 * r_p / size
            # residual balancing (Boyd et al. 3.4.1); u is scaled by 1 / rho, so rescale it with rho
            rho = np.where(up, 2 * rho, np.where(down, rho / 2, rho))
            u = u * np.where(up, 0.5, np.where(down, 2.0, 1.0))
            keep = ~done
            cols, x, z, u, rho = cols[keep], x[:, keep], z[:, keep], u[:, keep], rho[keep]
            if cols.size and np.any((up | down)[keep]):
                c, ac = hyperplane_solve(rho, cols)
            else:
                c, ac = c[:, keep], ac[keep]
    values = (lower + upper) / 2
    if not np.all(np.isfinite(lower)):  # pragma: no cover - not reached with S scaled and g Gaussian
        raise _checks.ConvergenceError(f"a projection onto the surrogate cone overflowed (p = {p}, rank {p - m}).")
    lo_mean, hi_mean = float(lower.mean()), float(upper.mean())
    if not np.isfinite(hi_mean) or hi_mean - lo_mean > mean_tol * max(hi_mean, 1.0):
        raise _checks.ConvergenceError(
            f"the projections onto the surrogate cone bracket the mean only to [{lo_mean:.6g}, {hi_mean:.6g}] after "
            f"{it} ADMM iterations ({cols.size} of {samples} samples not within tol {tol:g}; p = {p}, rank {p - m}): "
            f"raise max_iter or loosen mean_tol (now {mean_tol:g}).")
    return {"delta": float(values.mean()),
            "stderr": float(values.std(ddof=1) / math.sqrt(samples)) if samples > 1 else float("nan"),
            "bracket": (lo_mean, hi_mean), "values": values, "unconverged": int(cols.size), "rank": p - m,
            "iterations": int(iterations.max())}
