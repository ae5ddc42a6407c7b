import numpy as np
import pytest
import scipy.sparse as sp

from featlib import linalg


@pytest.mark.parametrize("p", [1, 2, 5])
def test_svec_is_isometry_and_inverse(p, rng):
    A = rng.standard_normal((p, p)); A = A + A.T
    B = rng.standard_normal((p, p)); B = B + B.T
    assert linalg.svec(A).shape == (linalg.svec_dim(p),)
    assert np.isclose(linalg.svec(A) @ linalg.svec(B), np.trace(A @ B))
    np.testing.assert_allclose(linalg.smat(linalg.svec(A)), A)


def test_svec_index_matches_triu_order():
    p = 6
    iu, ju = np.triu_indices(p)
    np.testing.assert_array_equal(linalg.svec_index(iu, ju, p), np.arange(iu.size))
    np.testing.assert_array_equal(linalg.svec_index(ju, iu, p), np.arange(iu.size))


def test_outer_rows_give_quadratic_forms(rng):
    p, n = 5, 7
    Y = rng.standard_normal((n, p))
    S = rng.standard_normal((p, p)); S = S + S.T
    rows = linalg.svec_outer(Y)
    np.testing.assert_allclose(rows @ linalg.svec(S), np.einsum("ij,jk,ik->i", Y, S, Y))


def test_sparse_outer_equals_dense(rng):
    p, n = 9, 40
    Y = rng.standard_normal((n, p)) * (rng.random((n, p)) < 0.3)
    Y[3] = 0.0  # an empty row
    dense = linalg.svec_outer(Y)
    sparse = linalg.svec_outer_sparse(sp.csr_matrix(Y)).toarray()
    np.testing.assert_allclose(sparse, dense, atol=1e-15)


def test_psd_project_and_rank(rng):
    S = np.diag([3.0, 1.0, -2.0])
    P = linalg.psd_project(S)
    np.testing.assert_allclose(P, np.diag([3.0, 1.0, 0.0]))
    assert linalg.is_psd(P) and not linalg.is_psd(S)
    assert linalg.numerical_rank(P) == 2
    assert linalg.numerical_rank(np.diag([1.0, 1e-20])) == 1
    assert linalg.numerical_rank(np.diag([1.0, 1e-20]), rtol=1e-30) == 2


def test_null_space_and_complement(rng):
    N = rng.standard_normal((6, 2))
    Q = linalg.orthogonal_complement(N, 6)
    assert Q.shape == (6, 4)
    np.testing.assert_allclose(Q.T @ N, 0, atol=1e-12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-12)


def test_the_one_pass_constraint_assembly_matches_the_difference():
    from featlib.linalg import svec_outer_difference_sparse, svec_outer_sparse

    Y = sp.random(300, 25, density=0.12, random_state=1, format="csr")
    Z = sp.random(300, 25, density=0.12, random_state=2, format="csr")
    Z[0] = Y[0]  # a pair whose matrix is exactly zero: no explicit zeros may remain
    A = (svec_outer_sparse(Y) - svec_outer_sparse(Z)).tocsr()
    B = svec_outer_difference_sparse(Y, Z)
    assert (A != B).nnz == 0 and B.nnz == A.nnz and np.all(B.data != 0) and B[0].nnz == 0
    with pytest.raises(linalg._checks.ShapeError):
        svec_outer_difference_sparse(Y, Z[:5])


@pytest.mark.parametrize("density", [0.15, 0.9])
def test_dense_difference_is_the_dense_formula(density):
    """svec_outer_difference assembles mostly-zero rows from their non-zeros: the same products in the same
    order (equal as numbers; only the sign of an exact zero may differ, -0.0 in the dense formula where a
    zero multiplies a negative entry) and the same column-major layout as the dense formula, so later
    BLAS products round the same (a row-major copy flipped a near-threshold verdict)."""
    rng = np.random.default_rng(7)
    for p in (1, 3, 12):
        Y = rng.standard_normal((40, p)) * (rng.random((40, p)) < density)
        Z = rng.standard_normal((40, p)) * (rng.random((40, p)) < density)
        got = linalg.svec_outer_difference(Y, Z)
        ref = linalg.svec_outer(Y) - linalg.svec_outer(Z)
        assert np.array_equal(got, ref)
        assert np.array_equal(np.signbit(got) & (got != 0), np.signbit(ref) & (ref != 0))
        assert (got.flags["F_CONTIGUOUS"], got.flags["C_CONTIGUOUS"]) == (ref.flags["F_CONTIGUOUS"], ref.flags["C_CONTIGUOUS"])
    with pytest.raises(Exception):
        linalg.svec_outer_difference(np.ones((2, 3)), np.ones((2, 4)))
