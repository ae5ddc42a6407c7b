import numpy as np
import pytest
import scipy.sparse as sp

import featlib as fl
from featlib.linalg import svec
from conftest import target


def _three_storages(rng, p=5, n=8):
    Y = rng.standard_normal((n, p)) * (rng.random((n, p)) < 0.5)
    Z = rng.standard_normal((n, p)) * (rng.random((n, p)) < 0.5)
    B = rng.standard_normal((p, p + 2))
    Yc = rng.standard_normal((n, p + 2))
    Zc = rng.standard_normal((n, p + 2))
    return [
        (fl.PairFeedback(Y, Z), Y, Z),
        (fl.PairFeedback(sp.csr_matrix(Y), sp.csr_matrix(Z)), Y, Z),
        (fl.PairFeedback(sp.csr_matrix(Yc), Zc, basis=B), Yc @ B.T, Zc @ B.T),
    ]


def test_storages_materialise_and_constrain(rng):
    p = 5
    S = rng.standard_normal((p, p)); S = S + S.T
    for fb, Y, Z in _three_storages(rng, p):
        assert len(fb) == 8 and fb.p == p and fb.n_unknowns == 15
        np.testing.assert_allclose(fb.dense_y(), Y, atol=1e-12)
        np.testing.assert_allclose(fb.dense_z(), Z, atol=1e-12)
        expect = np.einsum("ij,jk,ik->i", Y, S, Y) - np.einsum("ij,jk,ik->i", Z, S, Z)
        np.testing.assert_allclose(fb.residuals(S), expect, atol=1e-10)
        A = fb.constraints()
        assert sp.issparse(A) and A.shape == (8, 15)
        np.testing.assert_allclose(A @ svec(S), expect, atol=1e-10)
    assert [f.storage for f, _, _ in _three_storages(rng, p)] == ["dense", "sparse", "basis"]


def test_indexing_and_concat(rng):
    for fb, Y, Z in _three_storages(rng):
        sub = fb[3:5]
        assert isinstance(sub, fl.PairFeedback) and len(sub) == 2 and sub.storage == fb.storage
        np.testing.assert_allclose(sub.dense_y(), Y[3:5], atol=1e-12)
        fancy = fb[[0, 2, 7]]
        np.testing.assert_allclose(fancy.dense_z(), Z[[0, 2, 7]], atol=1e-12)
        mask = np.zeros(8, bool); mask[[1, 4]] = True
        np.testing.assert_allclose(fb[mask].dense_y(), Y[[1, 4]], atol=1e-12)
        y2, z2 = fb[2]
        np.testing.assert_allclose(y2, Y[2], atol=1e-12)
        np.testing.assert_allclose(fb[-1][1], Z[-1], atol=1e-12)
        both = fb[:3] + fb[3:]
        assert len(both) == 8 and both.storage == fb.storage
        np.testing.assert_allclose(both.dense_y(), Y, atol=1e-12)
        with pytest.raises(IndexError):
            fb[8]
    a, _, _ = _three_storages(rng)[0]
    b, _, _ = _three_storages(rng)[1]
    mixed = fl.PairFeedback.concat([a, b])
    assert len(mixed) == 16 and mixed.storage == "dense"


def test_relative_residuals_scale_free():
    phi = target(4, 4, seed=3)
    fb = fl.teach(phi, "gaussian", seed=0)
    r1 = fb.relative_residuals(phi)
    r2 = fb.relative_residuals(7.0 * phi)
    assert np.all(r1 < 1e-12) and np.all(r2 < 1e-12)
    wrong = fb.relative_residuals(np.eye(4))
    np.testing.assert_allclose(fb.relative_residuals(3.0 * np.eye(4)), wrong)
    assert np.max(wrong) > 1e-3 and np.max(wrong) <= 1


def test_pairfeedback_validation():
    with pytest.raises(fl.ShapeError, match="same shape"):
        fl.PairFeedback(np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(fl.NonFiniteError):
        fl.PairFeedback(np.full((1, 2), np.nan), np.zeros((1, 2)))
    with pytest.raises(fl.ShapeError, match=r"\(n, 3\)"):
        fl.PairFeedback(np.zeros((2, 4)), np.zeros((2, 4)), basis=np.eye(3))
    fb = fl.PairFeedback(np.ones(3), np.ones(3))  # a single pair as two vectors
    assert len(fb) == 1 and fb.p == 3
    with pytest.raises(fl.ShapeError, match="3 x 3"):
        fb.residuals(np.eye(4))
    assert len(fl.PairFeedback.empty(5)) == 0


def test_relative_residuals_through_a_factor_match(rng):
    phi = target(7, 3, seed=4)
    L = np.linalg.cholesky(phi + 1e-12 * np.eye(7))  # a factor with L L^T ~ phi
    approx = L @ L.T
    for fb in (fl.teach(phi, "eigen"), fl.teach(phi, "sparse"), fl.teach(phi, "gaussian", seed=0)):
        direct = fb.relative_residuals(approx)
        via = fb.relative_residuals(approx, factor=L)
        np.testing.assert_allclose(via, direct, atol=1e-13)
        np.testing.assert_allclose(fb.sq_norms()[0], np.sum(fb.dense_y() ** 2, axis=1))
    with pytest.raises(fl.ShapeError, match="factor"):
        fb.relative_residuals(approx, factor=np.ones((3, 2)))


def test_row_quadratics_all_layouts():
    from featlib.feedback import padded_rows, row_quadratics
    rng = np.random.default_rng(0)
    M = rng.standard_normal((30, 30))
    M = M + M.T
    few = sp.random(500, 30, density=0.08, random_state=1, format="csr")  # <= 8 non-zeros per row
    few = few[np.diff(few.indptr) <= 8]
    many = sp.random(50, 30, density=0.6, random_state=2, format="csr")
    for C in (few, many, few.toarray(), many.toarray()):
        D = C.toarray() if sp.issparse(C) else C
        want = np.einsum("ij,jk,ik->i", D, M, D)
        got = row_quadratics(C, M, chunk_rows=37)  # several chunks
        assert np.allclose(got, want, atol=1e-12)
    A = rng.standard_normal((30, 30))  # not symmetric, and Fortran-ordered: c^T A c all the same
    D = few.toarray()
    assert np.allclose(row_quadratics(few, np.asfortranarray(A)), np.einsum("ij,jk,ik->i", D, A, D), atol=1e-12)
    idx, val = padded_rows(few)
    assert idx.shape == val.shape and idx.shape[1] == np.diff(few.indptr).max()
    assert np.allclose((val[:, :, None] * np.eye(30)[idx]).sum(1), few.toarray())


def test_sparse_squared_norms_with_duplicates_and_empty_rows():
    from featlib.feedback import row_sq_norms

    # row 0 stores column 0 twice (1 + 2 = 3), row 1 is empty: the norms are of the summed matrix
    C = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1]), np.array([0, 2, 2, 3])), shape=(3, 4))
    assert np.allclose(row_sq_norms(C), [9.0, 0.0, 9.0])
    assert np.array_equal(C.data, [1.0, 2.0, 3.0])  # the caller's matrix is left as it was
    R = sp.random(300, 40, density=0.05, random_state=3, format="csr")
    assert np.allclose(row_sq_norms(R), (R.toarray() ** 2).sum(1))
