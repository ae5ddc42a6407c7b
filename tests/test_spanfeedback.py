"""SpanFeedback: null-space pairs kept as a span, solved and verified through the exact reduction."""

import numpy as np
import pytest
import scipy.sparse as sp

import featlib as fl
from featlib.spanfeedback import SpanFeedback
from conftest import run_under_address_limit


def _target(p=9, r=3, seed=0):
    D = np.random.default_rng(seed).standard_normal((r, p))
    return D, D.T @ D


@pytest.mark.parametrize("factored", [False, True])
def test_span_feedback_is_the_same_pairs_as_its_explicit_form(factored):
    D, phi = _target()
    fb = fl.teach(fl.Factored(D) if factored else phi, "eigen", storage="span")
    assert isinstance(fb, SpanFeedback) and fb.storage == "span"
    dense = fl.teach(phi, "eigen")
    assert len(fb) == len(dense) == fb.n_stored + fb.n_span and fb.n_span == 9 - 3
    ex = fb.expand()
    assert ex.storage == "basis" and len(ex) == len(fb)
    # the explicit form's span pairs are (0, v) with v orthonormal and orthogonal to the frame
    V = ex.dense_z()[fb.n_stored:]
    assert np.allclose(ex.dense_y()[fb.n_stored:], 0) and np.allclose(V @ V.T, np.eye(6), atol=1e-12)
    assert np.allclose(V @ fb.frame, 0, atol=1e-12)
    # every inherited operation reads the explicit form
    assert np.allclose(fb.residuals(phi), ex.residuals(phi)) and np.max(np.abs(fb.residuals(phi))) < 1e-12
    assert (fb.constraints() != ex.constraints()).nnz == 0
    assert np.allclose(fb.dense_y(), ex.dense_y()) and np.allclose(fb[2][1], ex[2][1])
    # both forms identify Phi* with the same answer
    a, b = fl.solve(fb, "exact"), fl.solve(ex, "exact")
    assert a.identified and b.identified and a.info["route"] == "span" and a.factor is not None
    assert fl.relative_error(a.as_factored(), phi) < 1e-12 and fl.relative_error(b.phi, phi) < 1e-12
    assert a.residual < 1e-13


def test_indexing_keeps_the_structure_where_it_can():
    _, phi = _target()
    fb = fl.teach(phi, "eigen", storage="span")
    m = fb.n_stored
    head = fb[:3]
    assert head.storage == "basis" and len(head) == 3 and np.allclose(head.dense_z(), fb.expand()[:3].dense_z())
    keep = fb[[0, 4] + list(range(m, len(fb)))]
    assert isinstance(keep, SpanFeedback) and len(keep) == 2 + fb.n_span
    mixed = fb[[0, m + 1]]
    assert not isinstance(mixed, SpanFeedback) and np.allclose(mixed.dense_z(), fb.expand()[[0, m + 1]].dense_z())
    mask = np.zeros(len(fb), bool)
    mask[m:] = True
    assert isinstance(fb[mask], SpanFeedback) and fb[mask].n_stored == 0
    with pytest.raises(fl.IndexOutOfRangeError):
        fb[[len(fb)]]


def test_solve_and_verify_never_write_the_span_pairs_out(monkeypatch):
    D, phi = _target(p=12, r=4, seed=1)
    fb = fl.teach(fl.Factored(D), "eigen")

    def refuse(self):
        raise AssertionError("the span pairs were written out")

    monkeypatch.setattr(SpanFeedback, "expand", refuse)
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.as_factored(), fl.Factored(D)) < 1e-12
    v = fl.verify(fb, sol)
    assert v.valid and "span feedback" in v.checks[0]
    r = fb.relative_residuals(None, factor=sol.factor)
    assert r.shape == (len(fb),) and np.max(r) < 1e-13
    for method in ("sdp", "gd"):
        if method == "sdp":
            pytest.importorskip("cvxpy")
        s = fl.solve(fb, method)
        assert s.info["route"] == "span" and fl.pcc(s.as_factored(), fl.Factored(D)) > 0.999


def test_residuals_through_a_factor_match_the_explicit_form_and_bound_the_span_pairs():
    _, phi = _target(p=8, r=3, seed=2)
    fb = fl.teach(phi, "eigen", storage="span")
    F = np.random.default_rng(0).standard_normal((8, 5))  # not in the frame: span pairs violated
    got, want = fb.relative_residuals(None, factor=F), fb.expand().relative_residuals(None, factor=F)
    m = fb.n_stored
    assert np.allclose(got[:m], want[:m], rtol=1e-10, atol=1e-15)
    assert np.all(got[m:] >= want[m:] - 1e-15) and np.all(got[m:] <= 1.0)
    assert fb.span_mass(F) == pytest.approx(np.sum(F * F) - np.sum((fb.frame.T @ F) ** 2))


def test_not_identified_and_inconsistent_verdicts_transfer_with_their_certificates():
    _, phi = _target(p=9, r=3, seed=3)
    fb = fl.teach(phi, "eigen", storage="span")
    m = fb.n_stored
    few = fb[[0, 1] + list(range(m, len(fb)))]  # two kernel pairs: S in R^3 is not pinned down
    sol = fl.solve(few, "exact")
    assert sol.decided and not sol.identified
    v = fl.verify(few, sol)
    assert v.valid and v.verdict == "not identified" and any("full column rank" in c for c in v.checks)
    # a stored pair Phi* violates, against a frame that leaves no room: inconsistent, with a certificate
    W = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 2)))[0]
    bad = SpanFeedback(W, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[2.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(fl.InconsistentFeedbackError) as err:
        fl.solve(bad, "exact")
    assert fl.verify(bad, err.value.certificate).valid


def test_a_forged_certificate_does_not_verify_on_span_feedback():
    _, phi = _target(p=9, r=3, seed=4)
    fb = fl.teach(phi, "eigen", storage="span")
    few = fb[[0, 1] + list(range(fb.n_stored, len(fb)))]
    good = fl.solve(fb, "exact").certificate
    assert not fl.verify(few, good).valid  # "identified" claimed where two kernel pairs leave freedom


def test_span_feedback_refuses_bad_frames_and_large_expansions(monkeypatch):
    with pytest.raises(fl.ArgumentError, match="linearly independent"):
        SpanFeedback(np.array([[1.0, 1.0], [0.0, 1e-9], [0.0, 0.0]]), np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(fl.ShapeError):
        SpanFeedback(np.eye(3)[:, :2], np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(fl.ShapeError):
        SpanFeedback(np.eye(3)[:, :2], np.zeros((1, 2)), np.zeros((1, 2)), basis=np.eye(3))
    with pytest.raises(fl.NonFiniteError):
        SpanFeedback(np.full((3, 1), np.nan), np.zeros((1, 1)), np.zeros((1, 1)))
    _, phi = _target()
    fb = fl.teach(phi, "eigen", storage="span")
    monkeypatch.setattr("featlib.spanfeedback.EXPAND_MAX_BYTES", 100)
    with pytest.raises(fl.ResourceError, match="reduced"):
        fb.dense_y()
    assert fl.solve(fb, "exact").identified  # the reduction needs no explicit form
    with pytest.raises(fl.ArgumentError, match="numerical rank"):
        fl.teach(phi, "eigen", storage="span", rank=5)
    with pytest.raises(fl.ArgumentError, match="fixed"):
        fl.teach(phi, "eigen", storage="span", n=4)  # the count is the theorem's, as for the other storages


def _factored_route_under(d, p, gib, seed):
    """teach(Factored(D), "eigen") then solve and the exact PCC in a fresh Python under an address-space
    limit of ``gib`` GiB; returns the PCC."""
    out = run_under_address_limit(
        "import featlib as fl\n"
        f"D = fl.datasets.random_dictionary({d}, {p}, seed={seed})\n"
        "fb = fl.teach(fl.Factored(D), 'eigen')\n"
        "sol = fl.solve(fb, 'exact')\n"
        f"assert sol.identified and fb.storage == 'span' and sol.factor.shape == ({p}, {d})\n"
        "print(fl.pcc(sol.as_factored(), fl.Factored(D)))\n", gib=gib)
    return float(out.split()[0])


def test_teach_and_solve_a_factored_sae_at_p_16384_under_a_6_gb_ceiling():
    """The issue's case: teach(Factored(D), "eigen") then solve, p = 16,384, d = 256, under an
    address-space limit of 6 GB (one p x p float64 array alone is 2 GiB, the explicit span pairs 4 GiB
    with their QR); PCC computed exactly in factored form."""
    assert _factored_route_under(256, 16384, 6, 0) > 0.99999


def test_sparse_coefficient_rows_and_identity_reduced_basis():
    W = np.linalg.qr(np.random.default_rng(5).standard_normal((7, 2)))[0]
    S = np.array([[2.0, 0.5], [0.5, 1.0]])
    phi = W @ S @ W.T
    # pairs in R^2 for S: e1 + e2 vs scaled e1, e2 vs scaled e1
    y = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    q = np.einsum("ij,jk,ik->i", y, S, y)
    z = np.array([[1.0, 0.0]]) * np.sqrt(q / S[0, 0])[:, None]
    fb = SpanFeedback(W, sp.csr_matrix(y[1:]), sp.csr_matrix(z[1:]))
    sol = fl.solve(fb, "exact")
    assert sol.identified and fl.relative_error(sol.as_factored(), phi) < 1e-12
    assert "k=2" in repr(fb) and fb.reduced_basis is None and fb.y_coef.shape == (2, 2)


@pytest.mark.parametrize("scale", [1e-160, 1e160])
def test_extreme_frame_scales_change_nothing(scale):
    _, phi = _target(p=8, r=3, seed=6)
    fb = fl.teach(phi, "eigen", storage="span")
    far = SpanFeedback(fb.frame * scale, fb.y_coef, fb.z_coef, basis=fb.reduced_basis)
    sol = fl.solve(far, "exact")
    assert sol.identified and fl.relative_error(sol.as_factored(), phi) < 1e-12 and sol.residual < 1e-13
    assert fl.verify(far, sol).valid
    with pytest.raises(fl.ArgumentError, match="linearly independent"):
        SpanFeedback(np.zeros((4, 2)), np.zeros((1, 2)), np.zeros((1, 2)))


def test_a_stream_of_span_feedback_is_refused_by_the_shard_writer(tmp_path):
    """Stored rows of span (or basis) feedback are coefficients, not activations: writing them as
    shards would save wrong pairs, so the writer refuses them."""
    _, phi = _target()
    span = fl.teach(phi, "eigen", storage="span")

    class SpanStream(fl.PairStream):
        def batch(self, b):
            return span

        def key(self):
            return {"source": "span-test"}

    with pytest.raises(fl.FeedbackError, match="span"):
        SpanStream(span.p, len(span), len(span)).save(tmp_path / "shards")


def test_the_sparse_exact_path_reads_activations_not_coefficients():
    """solve_exact(..., sparse=True) on basis-stored feedback used the basis coefficients as if they
    were activations; now both storages give the dense answer."""
    from featlib.solvers.exact import solve_exact

    _, phi = _target(p=7, r=3, seed=7)
    for fb in (fl.teach(phi, "eigen"), fl.teach(phi, "eigen", storage="span")):
        sol = solve_exact(fb, sparse=True)
        learned = sol.phi if sol.factor is None else sol.as_factored()
        assert sol.identified and fl.relative_error(learned, phi) < 1e-10


def test_factored_route_holds_about_three_p_by_d_arrays():
    """The p = 2^20 stretch's memory budget at a size CI can run: teach + solve + exact PCC at p = 2^19,
    d = 64 under a 2.5 GiB address-space limit.  D, the frame and the answer's factor are 256 MiB each;
    before the blocked metrics, the in-place re-orthonormalisation and the uncopied frame this took
    about ten such arrays (the PCC alone formed three copies of p x (2d + 1)) and failed the limit."""
    assert _factored_route_under(64, 2**19, 2.5, 1) > 0.99999


def test_blocked_products_match_the_whole_ones(monkeypatch):
    from featlib import factors
    from featlib import spanfeedback

    rng = np.random.default_rng(3)
    D = rng.standard_normal((4, 23))
    fb = fl.teach(fl.Factored(D), "eigen")
    assert np.shares_memory(fb.scaled_frame, fb.frame)  # a frame of ordinary scale is not copied
    F = rng.standard_normal((23, 3))
    whole = fb.span_mass(F)
    P = fb.frame @ np.linalg.solve(fb.frame.T @ fb.frame, fb.frame.T)
    assert abs(whole - np.linalg.norm(F - P @ F) ** 2) < 1e-12 * np.linalg.norm(F) ** 2
    monkeypatch.setattr(spanfeedback, "ROW_BLOCK", 5)
    assert abs(fb.span_mass(F) - whole) < 1e-12 * whole
    A, B = fl.Factored(D), fl.Factored(rng.standard_normal((3, 23)))
    dense_pcc, dense_err = fl.pcc(A.dense(), B.dense()), fl.relative_error(A.dense(), B.dense())
    for block in (1, 4, 7, 10_000):
        monkeypatch.setattr(factors, "QR_ROW_BLOCK", block)
        assert abs(factors.pcc(A, B) - dense_pcc) < 1e-13
        assert abs(factors.relative_error(A, B) - dense_err) < 1e-13


def test_factored_eigenvectors_are_orthonormal_with_their_signs():
    from featlib.feedback import Agent

    D = np.random.default_rng(4).standard_normal((6, 40)) * np.logspace(0, -5, 6)[:, None]
    w, V, r, _ = Agent(fl.Factored(D)).top_eigh()
    wd, Vd = np.linalg.eigh(D.T @ D)
    Vd = Vd[:, ::-1][:, :r]
    assert r == 6 and np.abs(V.T @ V - np.eye(r)).max() < 1e-14
    assert np.allclose(w, wd[::-1][:r], rtol=1e-10)
    # the same eigenvectors, each with the sign of L^T u_i (a positive Cholesky diagonal keeps it)
    assert np.abs(np.abs(np.sum(V * Vd, axis=0)) - 1).max() < 1e-8


def test_factored_eigenvectors_fall_back_to_a_qr(monkeypatch):
    from featlib.feedback import Agent

    D = np.random.default_rng(7).standard_normal((5, 30))
    w0, V0, r0, _ = Agent(fl.Factored(D)).top_eigh()

    def singular(a):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(np.linalg, "cholesky", singular)
    w, V, r, _ = Agent(fl.Factored(D)).top_eigh()
    assert r == r0 and np.allclose(w, w0) and np.abs(V - V0).max() < 1e-12


@pytest.mark.parametrize("scale", [1e-160, 1e160])
def test_extreme_stored_rows_give_true_residuals(scale):
    """Stored rows at 1e+-160: the residual is a ratio per pair, read after a power-of-two rescaling of
    each pair (before, 1e-160 reported 3.9e-4 and 1e+160 NaN for an exact answer)."""
    D = np.random.default_rng(8).standard_normal((3, 12))
    fb = fl.teach(fl.Factored(D), "eigen")
    far = fl.SpanFeedback(fb.frame, fb.y_coef * scale, fb.z_coef * scale, basis=fb.reduced_basis, meta=fb.meta)
    sol = fl.solve(far, "exact")
    assert sol.identified and 0 <= sol.residual < 1e-13
    assert fl.relative_error(sol.as_factored(), fl.Factored(D)) < 1e-10
    assert fl.verify(far, sol).verdict == "identified"
