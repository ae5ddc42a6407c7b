"""Exact (integer) teacher output, checked by verify in exact rational arithmetic.

``teach(phi, method, exact=True)`` on an integer target returns integer pairs that are exactly
consistent with it, so that verify's exact path (every p <= 12) applies to every teacher's output; the
floating-point output of a teacher on a rank-deficient target is, as stored, not exactly consistent.
"""
import math

import numpy as np
import pytest

import featlib as fl
from featlib import _exact
from featlib.teachers import TEACHERS

SIZES = [(p, r) for p in (4, 7, 10, 12) for r in sorted({1, 2, p // 2, p - 1, p})]


def options(method, p):
    if method == "sparse-sampled":
        return dict(mu=1 - 3 / p, s=3, n=p * (p + 1) // 2 + 5)
    return {}


def exact_teach(D, method, seed=1, **kw):
    phi = D.T @ D
    target = fl.Factored(D.astype(float)) if method == "compact" else phi
    return fl.teach(target, method, exact=True, seed=seed, **{**options(method, D.shape[1]), **kw})


def as_ints(a):
    a = np.asarray(a)
    assert np.all(a == np.round(a)) and np.abs(a).max(initial=0) < 2**53
    return np.array([[int(x) for x in row] for row in a], dtype=object)


@pytest.mark.parametrize("method", TEACHERS)
@pytest.mark.parametrize("p,r", SIZES)
def test_every_teacher_is_certified_exactly_at_small_p(method, p, r):
    D = fl.datasets.integer_factor(p, r, seed=p * 100 + r)
    phi = D.T @ D
    fb = exact_teach(D, method)
    assert fb.meta["exact"] is True
    # the pairs are integers and satisfy the target exactly (Python integers, no rounding)
    Y, Z, A = as_ints(fb.dense_y()), as_ints(fb.dense_z()), as_ints(phi)
    for y, z in zip(Y, Z):
        assert y.dot(A.dot(y)) == z.dot(A.dot(z))
    hint = {"face_hint": fb.meta["face_hint"]} if method == "compact" else {}
    sol = fl.solve(fb, "exact", **hint)
    assert sol.certificate is not None
    v = fl.verify(fb, sol)
    assert v.valid and v.exact, (v.reason, v.checks)
    if sol.certificate.verdict == "identified":
        assert fl.relative_error(sol.phi, phi) < 1e-8
    else:  # only the sampled teachers can fail to identify (pairs short of some coordinates)
        assert method == "sparse-sampled"


@pytest.mark.parametrize("method", TEACHERS)
def test_exact_output_keeps_each_teachers_form(method):
    p, r = 6, 3
    D = fl.datasets.integer_factor(p, r, seed=3)
    fb = exact_teach(D, method)
    counts = {"eigen": r * (r + 1) // 2 + (p - r), "compact": max(p, r * (r + 1) // 2),
              "sparse": p * (p + 1) // 2, "gaussian": p * (p + 1) // 2 - 1, "sparse-sampled": p * (p + 1) // 2 + 5}
    assert len(fb) == counts[method]
    if method == "sparse":
        # left sides e_i and e_i + e_j; right sides on the line through them and the reference e_k
        k = fb.meta["reference"]
        Y, Z = fb.dense_y(), fb.dense_z()
        for (i, j), y, z in zip(fb.meta["pairs"], Y, Z):
            support = {i, j}
            assert set(np.flatnonzero(y)) == support
            assert set(np.flatnonzero(z)) <= support | {k}
    if method == "eigen":
        null = fb.dense_z()[fb.meta["null_rows"]]
        assert np.allclose((D.T @ D) @ null.T, 0) and not np.any(fb.dense_y()[fb.meta["null_rows"]])
    if method == "sparse-sampled":
        assert np.diff(fb.y.indptr).max() <= 3 and fb.storage == "sparse"


def test_regressions_found_by_exact_pairs():
    # (1) a refined combination step made of rounding: with more pairs than unknowns the pair matrices are
    # dependent, and the projected multipliers were mostly a dependence, combining to 1e-17 everywhere
    # (the solver accepted it as a rank-7 step; verify could only say inconclusive)
    D = fl.datasets.integer_factor(10, 2, seed=1002, bound=3)
    fb = fl.teach(D.T @ D, "sparse", exact=True)
    v = fl.verify(fb, fl.solve(fb, "exact"))
    assert v.valid and v.exact
    # (2) a refined step rejected because its rounding was judged against its top eigenvalue, not against
    # the size of its terms (a combination 1e5 times smaller than its terms)
    # (integer pairs now have that step snapped to its exact face; the refinement, which float pairs get,
    # is tested with snapping switched off)
    from featlib.solvers import exact

    D = fl.datasets.integer_factor(10, 5, seed=11005)
    fb = fl.teach(D.T @ D, "sparse-sampled", exact=True, seed=10, mu=0.7, s=3, n=60)
    sol = fl.solve(fb, "exact")
    v = fl.verify(fb, sol)
    assert sol.identified and sol.info.get("snapped_steps") == 1 and v.valid and v.exact
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "_snapped_step", lambda *a, **k: None)
        sol = fl.solve(fb, "exact")
    v = fl.verify(fb, sol)
    assert sol.info.get("refined_step") is True and v.valid and v.exact
    # (3) compact at r = p - 1: an unscaled integer null vector (entries ~1e5) in the pull-back made the
    # pairs' conditioning ~1e18; the solver claimed "not identified"
    D = fl.datasets.integer_factor(10, 9, seed=1009, bound=3)
    fb = fl.teach(fl.Factored(D.astype(float)), "compact", exact=True)
    sol = fl.solve(fb, "exact", face_hint=fb.meta["face_hint"])
    assert sol.identified and fl.verify(fb, sol).valid
    # (4) eigen at r = p - 1: the range basis from a rational null-space basis (a sublattice of huge index)
    # gave entries up to 8e18, refused as beyond 2^53; the saturated, reduced lattice basis gives small ones
    D = fl.datasets.integer_factor(12, 11, seed=14211)
    fb = fl.teach(D.T @ D, "eigen", exact=True)
    assert np.abs(fb.dense_y()).max() < 1e6 and fl.verify(fb, fl.solve(fb, "exact")).valid


def test_verify_exact_path_on_float_pairs_stays_sound():
    # float teacher output is not exactly consistent: the exact path says so and floating point decides
    phi = fl.datasets.random_feature_matrix(10, 3, seed=1)
    fb = fl.teach(phi, "gaussian", n=40, seed=2)
    v = fl.verify(fb, fl.solve(fb, "exact"), margin=1e-2)
    assert not v.exact and "checked in floating point" in v.checks[0]


def test_exact_teach_refuses_what_it_cannot_make_exact():
    D = fl.datasets.integer_factor(5, 2, seed=0)
    phi = D.T @ D
    with pytest.raises(fl.ArgumentError, match="integer target"):
        fl.teach(fl.datasets.random_feature_matrix(5, 2, seed=0), "gaussian", exact=True)
    with pytest.raises(fl.ArgumentError, match="truncation"):
        fl.teach(phi, "eigen", exact=True, rank=1)
    with pytest.raises(fl.ArgumentError, match="storage"):
        fl.teach(phi, "eigen", exact=True, storage="span")
    with pytest.raises(fl.ArgumentError, match="Factored"):
        fl.teach(phi, "compact", exact=True)
    with pytest.raises(fl.ArgumentTypeError):
        fl.teach(phi, "gaussian", exact="yes")
    with pytest.raises(fl.ArgumentError, match="up to p = 64"):
        fl.teach(np.eye(65), "sparse", exact=True)
    # numerically PSD (eigenvalue -5e-9 against 2e8), exactly indefinite: det = -1
    bad = np.array([[10**8, 10**8 + 1], [10**8 + 1, 10**8 + 2]], dtype=float)
    with pytest.raises(fl.ArgumentError, match="not positive semidefinite in exact arithmetic"):
        fl.teach(bad, "gaussian", exact=True)
    # a power-of-two multiple of an integer target is accepted (the pairs are the same up to scale)
    fb = fl.teach(phi / 8, "sparse", exact=True)
    assert np.array_equal(fb.dense_y(), fl.teach(phi, "sparse", exact=True).dense_y())
    # entries beyond float64's integers are refused, not rounded
    with pytest.raises(fl.ArgumentError, match="2\\^53"):
        fl.teach(np.diag([2.0**31, 1.0, 1.0]), "sparse", exact=True, reference=np.array([2.0**20, 1.0, 1.0]))


def test_integer_factor():
    D = fl.datasets.integer_factor(7, 3, seed=4, bound=1)
    assert D.shape == (3, 7) and D.dtype == np.int64 and np.abs(D).max() <= 1
    assert _exact.rank(D.astype(object)) == 3
    with pytest.raises(fl.ArgumentError):
        fl.datasets.integer_factor(3, 4)


def test_exact_linear_algebra():
    A = np.array([[1, 2, 3], [2, 4, 7], [3, 6, 10]], dtype=object)
    R, piv = _exact.rref(_exact.q(A))
    assert piv == [0, 2] and _exact.rank(_exact.q(A)) == 2
    N = _exact.null_space(_exact.q(A))
    assert N.shape == (3, 1) and not any(_exact.matmul(_exact.q(A), N).ravel())
    assert _exact.solve(_exact.q(A), _exact.q([1, 2, 4])) is None  # inconsistent
    x = _exact.solve(_exact.q(A), _exact.q([6, 13, 19]))
    assert list(_exact.matmul(_exact.q(A), x.reshape(-1, 1)).ravel()) == [6, 13, 19]
    assert _exact.psd_rank(_exact.q([[2, 1], [1, 1]])) == (True, 2)
    assert _exact.psd_rank(_exact.q([[1, 1], [1, 1]])) == (True, 1)
    assert _exact.psd_rank(_exact.q([[0, 1], [1, 0]]))[0] is False
    # a float is its exact dyadic value
    assert _exact.q([0.1])[0] == _exact.q([3602879701896397])[0] / 2**55


def test_reduced_lattice_basis_is_the_whole_integer_kernel():
    # N = (1, 2, 3): the integer vectors orthogonal to it form a rank-2 lattice of determinant |N| ...
    # a basis of that *saturated* lattice has 2 x 2 minors with gcd 1 (a rational null-space basis of
    # large index does not)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, m = 6, int(rng.integers(1, 4))
        N = rng.integers(-50, 51, size=(p, m)).astype(object)
        B = _exact.reduced_lattice_basis(N, p)
        assert B.shape == (p, p - m)
        assert not any(int(v) for v in N.T.dot(B).ravel())
        from itertools import combinations
        g = 0
        for rows in combinations(range(p), p - m):
            sub = B[list(rows)]
            g = math.gcd(g, abs(int(np.round(np.linalg.det(sub.astype(float))))))
        assert g == 1


def test_exact_verification_reaches_p20_on_integer_pairs():
    # integer pairs are checked exactly up to p = 20 (EXACT_MAX_UNKNOWNS_INTEGER); float pairs only to p = 12
    p = 20
    # rank 1: the step's multipliers span 1e-18 to 0.5 (the largest on a pair removed by the first step);
    # rationalised over the largest, every multiplier that mattered became 0 (exact combination of rank 0)
    D = fl.datasets.integer_factor(p, 1, seed=1)
    fb = fl.teach(D.T @ D, "gaussian", exact=True, n=45, seed=1)
    assert fb.has_integer_entries()
    v = fl.verify(fb, fl.solve(fb, "exact"))
    assert v.valid and v.exact
    # rank 15: the combination's kernel (the target's range) has a reduced row echelon form with
    # denominators 8.7e6, beyond what rationalising a float basis recovers; LLL finds short integer vectors
    D = fl.datasets.integer_factor(p, 15, seed=15)
    fb = fl.teach(D.T @ D, "gaussian", exact=True, n=200, seed=1)
    sol = fl.solve(fb, "exact")
    v = fl.verify(fb, sol)
    assert sol.identified and v.valid and v.exact and "combination" in v.checks[0]
    # the same target's float pairs are not checked exactly at p = 20
    fbf = fl.teach(D.T @ D, "gaussian", n=200, seed=1)
    assert not fbf.has_integer_entries()
    with pytest.raises(fl.CertificateError, match="exact verification is limited"):
        fl.verify(fbf, fl.solve(fbf, "exact"), exact=True)


def test_integer_vectors_near_recovers_a_rational_subspace():
    rng = np.random.default_rng(3)
    B = rng.integers(-2, 3, size=(12, 7)).astype(float)  # a subspace spanned by short integer vectors
    K = np.linalg.svd(B, full_matrices=False)[0] + 1e-13 * rng.standard_normal((12, 7))  # a float basis
    C = _exact.integer_vectors_near(K)
    assert C is not None and C.shape == (12, 7)
    # the same column space, exactly: B's columns are exact combinations of C's
    joint = np.concatenate([C, _exact.q(B)], axis=1)
    assert _exact.rank(joint) == 7
    # a random float subspace has no short integer basis: None, not a wrong answer
    assert _exact.integer_vectors_near(np.linalg.qr(rng.standard_normal((12, 7)))[0]) is None


def test_verify_benchmark_counts_every_set():
    lines = []
    rows = fl.benchmarks.verify_exact((4,), seeds=1, out=lines.append)
    assert len(lines) == 1 + 5 + 1  # header, one row per teacher, the float comparison
    for row in rows[:5]:
        assert row["sets"] == 4 and row["exact"] == 4  # ranks 1, 2, 3, 4 at p = 4: every one proved exactly
