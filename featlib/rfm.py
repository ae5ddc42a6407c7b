"""Recursive Feature Machines (Radhakrishnan et al., Science 2024): the paper's source of real
feature matrices at p = 10.

An RFM alternates two steps, starting from ``M = I``:

1. kernel ridge regression with the Mahalanobis kernel ``K_M``:
   ``alpha = (K_M(X, X) + reg I)^{-1} y`` and ``f(x) = sum_i alpha_i K_M(x_i, x)``;
2. ``M <- AGOP(f) = (1/m) sum_x grad f(x) grad f(x)^T`` over (up to ``agop_samples``) training
   points: the average gradient outer product, the feature matrix the paper's agent holds.

Kernels: ``"laplace"``, ``K_M(x, z) = exp(-||x - z||_M / L)`` with ``||v||_M = sqrt(v^T M v)``
(the reference implementation's choice, with ``L = 10`` and ``reg = 1e-3``), and ``"gaussian"``,
``exp(-||x - z||_M^2 / (2 L^2))``.  As in the reference code, the AGOP is a mean (the paper writes
a sum; the scale does not matter for feature equivalence), the Laplace kernel's gradient is set
to zero where ``x = x_i`` (it is not differentiable there), and after the last update the
predictor is refitted with the final ``M``, which is ``M_``.

``RFM(iters=0, M=phi)`` is plain kernel ridge regression with a fixed feature matrix: how the book
measures the test MSE of a feature matrix learned from feedback.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from . import _checks
from .linalg import psd_project
from .metrics import relative_error
from .solvers import solve
from .teachers import TEACHERS, teach

__all__ = ["RFM", "agop", "kernel_matrix", "feature_matrix_mse", "recovery_table"]

KERNELS = ("laplace", "gaussian")


def _points(A, B, M):
    """Checked float arrays: rows of A and B (n x d, m x d) and a d x d matrix M."""
    A, B, M = (_checks.finite_array(A, "A"), _checks.finite_array(B, "B"), _checks.finite_array(M, "M"))
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1] or M.shape != (A.shape[1], A.shape[1]):
        raise _checks.ShapeError(f"expected points of shape (n, d) and (m, d) and a d x d matrix M; got "
                                 f"{A.shape}, {B.shape} and {M.shape}.")
    return A, B, M


def _sq_dist(A, B, M):
    """Squared Mahalanobis distances ||a - b||_M^2, shape (len(A), len(B)), clipped at 0."""
    AM = A @ M
    na = np.einsum("ij,ij->i", AM, A)
    nb = np.einsum("ij,ij->i", B @ M, B)
    d2 = na[:, None] + nb[None, :] - 2.0 * (AM @ B.T)
    return np.maximum(d2, 0.0)


def kernel_matrix(A, B, M, *, kernel="laplace", bandwidth=10.0):
    """``K_M(a_i, b_j)`` for the rows of A and B (shape (len(A), len(B)))."""
    _checks.check_method(kernel, KERNELS, "kernel")
    bandwidth = _checks.check_real(bandwidth, "bandwidth", low=0, low_open=True)
    d2 = _sq_dist(*_points(A, B, M))
    if kernel == "laplace":
        return np.exp(-np.sqrt(d2) / bandwidth)
    return np.exp(-d2 / (2.0 * bandwidth**2))


def agop(X_centers, alpha, X_eval, M, *, kernel="laplace", bandwidth=10.0, chunk=2048):
    """Average gradient outer product of ``f(x) = sum_i alpha_i K_M(x_i, x)`` over the rows of
    ``X_eval`` (alpha of shape (n,) or (n, c); outputs are summed, as in the reference code).

    ``grad f(x) = sum_i alpha_i k'(x_i, x) M (x - x_i)`` with ``k' = -K / (L ||x - x_i||_M)`` for the
    Laplace kernel (0 where x = x_i) and ``k' = -K / L^2`` for the Gaussian one.
    """
    _checks.check_method(kernel, KERNELS, "kernel")
    bandwidth = _checks.check_real(bandwidth, "bandwidth", low=0, low_open=True)
    chunk = _checks.check_positive_int(chunk, "chunk")
    Xc, Xe, M = _points(X_centers, X_eval, M)
    A = _checks.finite_array(alpha, "alpha")
    A = A[:, None] if A.ndim == 1 else A
    if A.ndim != 2 or A.shape[0] != Xc.shape[0]:
        raise _checks.ShapeError(f"alpha must have shape (n,) or (n, c) with n = {Xc.shape[0]} centers; got {A.shape}.")
    d = Xc.shape[1]
    out = np.zeros((d, d))
    for start in range(0, Xe.shape[0], chunk):
        E = Xe[start:start + chunk]
        d2 = _sq_dist(Xc, E, M)  # (n, m)
        if kernel == "laplace":
            dist = np.sqrt(d2)
            K = np.exp(-dist / bandwidth)
            with np.errstate(divide="ignore", invalid="ignore"):
                W = np.where(dist > 1e-10, K / (bandwidth * np.where(dist > 1e-10, dist, 1.0)), 0.0)
        else:
            W = np.exp(-d2 / (2.0 * bandwidth**2)) / bandwidth**2
        for c in range(A.shape[1]):
            Wc = W * A[:, c:c + 1]  # (n, m): alpha_i * |k'(x_i, x)|
            # grad = -M (x sum_i w_i - sum_i w_i x_i)
            G = -(E * Wc.sum(axis=0)[:, None] - Wc.T @ Xc) @ M  # (m, d)
            out += G.T @ G
    return out / Xe.shape[0]


class RFM:
    """Recursive Feature Machine, scikit-learn style.

    Parameters
    ----------
    kernel : {"laplace", "gaussian"}
    bandwidth : float
        L in the kernel (reference implementation: 10).
    reg : float
        Ridge added to the kernel matrix (reference: 1e-3).
    iters : int
        AGOP updates (the paper and the reference code: 5).  0 gives kernel ridge regression with
        the fixed matrix ``M``.
    M : array (d, d), optional
        Initial feature matrix (default the identity); with ``iters=0`` the fixed one.
    agop_samples : int, optional
        Evaluate the AGOP on at most this many training points (random subset, as the reference
        code does above 20,000); default all.
    seed : int or Generator
        For the AGOP subsample.
    agop_scale : {"none", "max"}
        "none" (default): ``M`` is the plain average of gradient outer products, as in the reference
        ``rfm.py`` of Radhakrishnan et al. that the paper's experiments adapt (its ``get_grads``
        divides by the number of points and nothing else), so the default reproduces the paper's
        feature matrices.  Its scale follows the scale of y (M grows like c^2 when y is multiplied
        by c), and through the kernel bandwidth so do the features.  "max": divide M by its largest
        entry after every update, as xRFM does; the fit then does not depend on the scale of y.

    Attributes after ``fit``: ``M_`` (the learned feature matrix, symmetric PSD), ``alpha_`` (the
    kernel-ridge coefficients for ``M_``), ``history_`` (``M`` after every update, starting with
    the initial one), ``train_mse_`` (training MSE before every update and after the final refit).
    """

    def __init__(self, kernel="laplace", bandwidth=10.0, reg=1e-3, iters=5, M=None, agop_samples=None, seed=0,
                 agop_scale="none"):
        self.agop_scale = agop_scale
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.reg = reg
        self.iters = iters
        self.M = M
        self.agop_samples = agop_samples
        self.seed = seed

    def _check_X(self, X, name="X", d=None):
        X = _checks.finite_array(X, name)
        if X.ndim != 2:
            raise _checks.ShapeError(f"{name} must be a 2-D array (n samples x d features); got shape {X.shape}.")
        if d is not None and X.shape[1] != d:
            raise _checks.ShapeError(f"{name} has {X.shape[1]} features; the model was fitted with {d}.")
        return X

    @staticmethod
    def _check_y(y, pred):
        y = _checks.finite_array(y, "y")
        if y.shape != pred.shape:
            raise _checks.ShapeError(f"y must have shape {pred.shape} (one target per row of X); got {y.shape}.")
        return y

    def _solve(self, X, y, M):
        with np.errstate(over="ignore", invalid="ignore"):
            K = kernel_matrix(X, X, M, kernel=self.kernel, bandwidth=self.bandwidth)
        if not np.all(np.isfinite(K)):
            raise _checks.NonFiniteError(
                "the kernel matrix is not finite (the distances overflowed: the data's scale is "
                f"{float(np.max(np.abs(X))):.3g}); standardise X (and y) before fitting.")
        K[np.diag_indices_from(K)] += self.reg
        try:
            alpha = scipy.linalg.solve(K, y, assume_a="pos", check_finite=False)
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            try:
                alpha = scipy.linalg.solve(K, y, check_finite=False)
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
                raise _checks.FeatlibError(
                    f"the kernel matrix is singular (reg = {self.reg:g}; duplicated training points make "
                    f"identical rows): pass reg > 0, e.g. RFM(reg=1e-3), or remove the duplicates.") from None
        K[np.diag_indices_from(K)] -= self.reg
        return alpha, K

    def fit(self, X, y):
        """Fit on X (n, d) and y (n,) or (n, c)."""
        _checks.check_method(self.kernel, KERNELS, "kernel")
        _checks.check_method(self.agop_scale, ("none", "max"), "agop_scale")
        X = self._check_X(X)
        y = _checks.finite_array(y, "y")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise _checks.ShapeError(f"y must have shape (n,) or (n, c) with n = {X.shape[0]}; got {y.shape}.")
        iters = _checks.check_positive_int(self.iters, "iters", minimum=0)
        if X.shape[0] < 2:
            raise _checks.ShapeError(f"an RFM needs at least 2 training rows; got {X.shape[0]}.")
        if self.agop_samples is not None:
            _checks.check_positive_int(self.agop_samples, "agop_samples")
        _checks.check_real(self.bandwidth, "bandwidth", low=0, low_open=True)
        _checks.check_real(self.reg, "reg", low=0)
        n, d = X.shape
        M = np.eye(d) if self.M is None else _checks.psd_matrix(self.M, "M", allow_zero=False)
        if M.shape != (d, d):
            raise _checks.ShapeError(f"M must be {d} x {d} for {d} features; got {M.shape}.")
        rng = _checks.as_generator(self.seed)
        history, train_mse = [M], []
        for _ in range(iters):
            alpha, K = self._solve(X, y, M)
            train_mse.append(float(np.mean((K @ alpha - y) ** 2)))
            Xe = X
            if self.agop_samples is not None and self.agop_samples < n:
                Xe = X[rng.choice(n, size=self.agop_samples, replace=False)]
            M = agop(X, alpha, Xe, M, kernel=self.kernel, bandwidth=self.bandwidth)
            M = (M + M.T) / 2
            if self.agop_scale == "max" and np.any(M):
                M = M / np.max(np.abs(M))
            if not np.all(np.isfinite(M)) or not np.any(M):
                raise _checks.NonFiniteError(
                    "the AGOP became non-finite or zero (the kernel distances overflowed or underflowed: the "
                    f"data's scale is {float(np.max(np.abs(X))):.3g}); standardise X (and y) before fitting.")
            history.append(M)
        alpha, K = self._solve(X, y, M)
        if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(K))):
            raise _checks.NonFiniteError(
                "kernel ridge regression produced non-finite coefficients (the kernel distances overflowed: the "
                f"data's scale is {float(np.max(np.abs(X))):.3g}); standardise X (and y) before fitting.")
        train_mse.append(float(np.mean((K @ alpha - y) ** 2)))
        self.X_fit_, self.M_, self.alpha_ = X, M, alpha
        self.history_, self.train_mse_ = history, train_mse
        self.n_features_in_ = d
        return self

    def _fitted(self):
        if not hasattr(self, "M_"):
            raise _checks.FeatlibError("This RFM is not fitted yet: call fit(X, y) first.")

    def predict(self, X):
        """Predictions for X (n, d)."""
        self._fitted()
        X = self._check_X(X, d=self.n_features_in_)
        return kernel_matrix(X, self.X_fit_, self.M_, kernel=self.kernel, bandwidth=self.bandwidth) @ self.alpha_

    def mse(self, X, y):
        """Mean squared error on (X, y): the paper's metric."""
        pred = self.predict(X)
        return float(np.mean((pred - self._check_y(y, pred)) ** 2))

    def score(self, X, y):
        """Coefficient of determination R^2 (scikit-learn's convention for regressors)."""
        pred = self.predict(X)
        y = self._check_y(y, pred)
        resid = np.sum((pred - y) ** 2)
        total = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1.0 - resid / total) if total > 0 else 0.0


def feature_matrix_mse(phi, X_train, y_train, X_test, y_test, *, scale_to=None, kernel="laplace", bandwidth=10.0,
                       reg=1e-3):
    """Test MSE of kernel ridge regression with the fixed feature matrix ``phi``.

    Feedback determines Phi only up to a positive scale, and the Laplace kernel with a fixed
    bandwidth is not scale-invariant; ``scale_to`` (a matrix, typically Phi*) rescales ``phi`` to the
    same trace first, as the paper's matching MSEs imply (digest 5.1).
    """
    phi = _checks.square_matrix(phi, "phi")
    if scale_to is not None:
        t = float(np.trace(phi))
        if t <= 0:
            raise _checks.ArgumentError("phi has non-positive trace; cannot match its scale.")
        scale_to = _checks.square_matrix(scale_to, "scale_to")
        if scale_to.shape != phi.shape:
            raise _checks.ShapeError(f"scale_to must have phi's shape {phi.shape}; got {scale_to.shape}.")
        phi = phi * (float(np.trace(scale_to)) / t)
    model = RFM(kernel=kernel, bandwidth=bandwidth, reg=reg, iters=0, M=phi).fit(X_train, y_train)
    return model.mse(X_test, y_test)


def recovery_table(phi_star, teacher, counts, data, *, seed=0, method="auto", rank=None, kernel="laplace",
                   bandwidth=10.0, reg=1e-3, **options):
    """Recover Phi from ``teacher``'s feedback at each budget in ``counts`` and measure it.

    ``data = (X_train, y_train, X_test, y_test)``.  Constructive teachers ("eigen", "sparse") use the
    first ``n`` of their pairs (``rank`` is passed to "eigen", the paper's rank-r truncation);
    sampled teachers draw ``n`` pairs with ``seed``.  Each row: ``pairs``, ``identified``,
    ``rel_err`` (to Phi*, or to its rank truncation for "eigen") and ``mse`` (kernel ridge with the
    recovered Phi scaled to Phi*'s trace, :func:`feature_matrix_mse`).
    """
    try:
        X_train, y_train, X_test, y_test = data
    except (TypeError, ValueError):
        raise _checks.ArgumentTypeError("data must be a tuple (X_train, y_train, X_test, y_test).") from None
    phi_star = _checks.psd_matrix(phi_star, "phi_star")
    _checks.check_method(teacher, TEACHERS, "teacher")
    if rank is not None:
        rank = _checks.check_positive_int(rank, "rank")
    try:
        counts = [_checks.check_positive_int(n, "each count", minimum=0) for n in counts]
    except TypeError:
        raise _checks.ArgumentTypeError(f"counts must be an iterable of integers; got {type(counts).__name__}.") from None
    rows = []
    full = None
    if teacher in ("eigen", "sparse"):
        full = teach(phi_star, teacher, **({"rank": rank} if teacher == "eigen" and rank is not None else {}),
                     **options)
    target = phi_star
    if teacher == "eigen" and rank is not None:  # the pairs teach the rank-r truncation
        w, V = np.linalg.eigh(phi_star)
        target = psd_project((V[:, -rank:] * w[-rank:]) @ V[:, -rank:].T)
    for n in counts:
        n = int(n)
        fb = full[:n] if full is not None else teach(phi_star, teacher, n=n, seed=seed, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _checks.IdentifiabilityWarning)
            sol = solve(fb, method)
        rows.append({
            "teacher": teacher, "pairs": n, "identified": bool(sol.identified),
            "rel_err": relative_error(sol.phi, target),
            "mse": feature_matrix_mse(sol.phi, X_train, y_train, X_test, y_test, scale_to=phi_star,
                                      kernel=kernel, bandwidth=bandwidth, reg=reg),
        })
    return rows
