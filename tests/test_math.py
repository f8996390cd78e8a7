"""The math of softreg against independent references.

Every value is compared with something the library did not compute: scipy.special
(softmax, log_softmax, logsumexp), explicit loops over the closed forms of DERIVATION.md,
one-hot matrices, numpy.linalg.eigvalsh, and central finite differences written here (not
``gradcheck.central_difference``). The last section checks that ``check_derivation`` itself
passes on correct code and fails on the classic gradient bugs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special as sps

import softreg.model.gradcheck as gradcheck_module
import softreg.model.math.linear as linear_module
from softreg.model.gradcheck import FLOAT32_TOLERANCE_FACTOR, check_derivation, random_problem
from softreg.model.math.linear import loss_and_gradient, objective
from softreg.model.math.lipschitz import lipschitz_constant
from softreg.model.math.softmax import (
    cross_entropy,
    cross_entropy_and_logit_gradient,
    log_softmax,
    logsumexp,
    loss_grad_wrt_logits,
    loss_grad_wrt_softmax,
    sample_losses,
    softmax,
    softmax_jacobian,
)

# The genuine functions, kept before any monkeypatching.
_loss_and_gradient = loss_and_gradient
_softmax_jacobian = softmax_jacobian


# --------------------------------------------------------------------------------------
# Independent references and helpers
# --------------------------------------------------------------------------------------


def fd_gradient(f, theta, eps=1e-6):
    """Central-difference gradient (scalar f) or Jacobian (vector f), in float64.

    Result shape: f(theta).shape + theta.shape.
    """
    theta = np.array(theta, dtype=np.float64)
    out_shape = np.shape(f(theta.copy()))
    flat = theta.ravel()
    result = np.empty(out_shape + (flat.size,))
    for i in range(flat.size):
        plus = flat.copy()
        minus = flat.copy()
        plus[i] += eps
        minus[i] -= eps
        fp = np.asarray(f(plus.reshape(theta.shape)), dtype=np.float64)
        fm = np.asarray(f(minus.reshape(theta.shape)), dtype=np.float64)
        result[..., i] = (fp - fm) / (2 * eps)
    return result.reshape(out_shape + theta.shape)


def onehot(y, n_classes):
    Y = np.zeros((len(y), n_classes))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def ref_sample_losses(Z, y):
    """-sum_k Y_ik log s_ik, from scipy's log_softmax and an explicit one-hot matrix."""
    Z = np.asarray(Z, dtype=np.float64)
    return -(onehot(y, Z.shape[1]) * sps.log_softmax(Z, axis=1)).sum(axis=1)


def ref_cross_entropy(Z, y, sample_weight=None):
    L = ref_sample_losses(Z, y)
    if sample_weight is None:
        return L.mean()
    w = np.asarray(sample_weight, dtype=np.float64)
    return (w * L).sum() / w.sum()


def ref_objective(W, b, X, y, l2=0.0, sample_weight=None):
    """J(W, b) = weighted mean cross-entropy + l2/2 ||W||^2 (bias not penalised)."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    Z = Xd.astype(np.float64) @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    return ref_cross_entropy(Z, y, sample_weight) + 0.5 * l2 * np.sum(np.asarray(W, dtype=np.float64) ** 2)


def make_problem(n_samples, n_features, n_classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    y[: min(n_classes, n_samples)] = np.arange(min(n_classes, n_samples))
    W = 0.5 * rng.standard_normal((n_features, n_classes))
    b = 0.5 * rng.standard_normal(n_classes)
    w = rng.uniform(0.2, 3.0, size=n_samples)
    return X, y, W, b, w


def augmented_gram(X, sample_weight=None):
    """X~^T diag(w / sum w) X~ with X~ = [X, 1], dense, float64."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    n = Xd.shape[0]
    Xt = np.hstack([Xd, np.ones((n, 1))])
    omega = np.full(n, 1.0 / n) if sample_weight is None else sample_weight / sample_weight.sum()
    return Xt.T @ (omega[:, None] * Xt)


# --------------------------------------------------------------------------------------
# softmax, log_softmax, logsumexp against scipy
# --------------------------------------------------------------------------------------

SHAPES = [(), (7,), (3, 4)]
KS = [2, 5, 50]
DTYPES = [np.float64, np.float32]


def _logits(lead, K, dtype, seed=0):
    rng = np.random.default_rng(seed + K + 10 * len(lead))
    return (3.0 * rng.standard_normal(lead + (K,))).astype(dtype)


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("lead", SHAPES)
def test_softmax_matches_scipy(lead, K, dtype):
    Z = _logits(lead, K, dtype)
    out = softmax(Z)
    assert out.shape == Z.shape
    assert out.dtype == dtype
    np.testing.assert_allclose(out, sps.softmax(Z.astype(np.float64), axis=-1), **_tol(dtype))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("lead", SHAPES)
def test_log_softmax_matches_scipy(lead, K, dtype):
    Z = _logits(lead, K, dtype)
    out = log_softmax(Z)
    assert out.shape == Z.shape
    assert out.dtype == dtype
    np.testing.assert_allclose(out, sps.log_softmax(Z.astype(np.float64), axis=-1), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("lead", SHAPES)
def test_logsumexp_matches_scipy(lead, K, dtype):
    Z = _logits(lead, K, dtype)
    out = np.asarray(logsumexp(Z))
    assert out.shape == Z.shape[:-1]
    assert out.dtype == dtype
    np.testing.assert_allclose(out, sps.logsumexp(Z.astype(np.float64), axis=-1), **_tol(dtype))


def test_softmax_is_shift_invariant_per_row():
    Z = _logits((6,), 5, np.float64)
    shifts = np.arange(6.0)[:, None] * 100.0
    np.testing.assert_allclose(softmax(Z + shifts), sps.softmax(Z, axis=1), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------
# Step 1: the softmax Jacobian
# --------------------------------------------------------------------------------------


def _jacobian_by_loops(z):
    s = sps.softmax(np.asarray(z, dtype=np.float64))
    K = s.size
    J = np.empty((K, K))
    for n in range(K):
        for m in range(K):
            J[n, m] = s[n] * ((1.0 if n == m else 0.0) - s[m])
    return J


@pytest.mark.parametrize("K", [2, 3, 7, 50])
def test_softmax_jacobian_matches_finite_differences_and_loops(K):
    z = np.random.default_rng(100 + K).standard_normal(K) * 2.0
    J = softmax_jacobian(z)
    assert J.shape == (K, K)
    J_fd = fd_gradient(lambda z_: sps.softmax(z_), z, eps=1e-6)  # J_fd[n, m] = d s_n / d z_m
    np.testing.assert_allclose(J, J_fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(J, _jacobian_by_loops(z), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(J, J.T, rtol=0, atol=1e-16)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(J.sum(axis=0), 0.0, atol=1e-15)


# --------------------------------------------------------------------------------------
# Steps 2 and 3: loss gradients in s and in z
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 3, 50])
def test_loss_grad_wrt_softmax_matches_finite_differences(K):
    rng = np.random.default_rng(200 + K)
    s = sps.softmax(rng.standard_normal(K))
    label = int(rng.integers(K))
    y = np.eye(K)[label]
    analytic = loss_grad_wrt_softmax(s, y)
    np.testing.assert_allclose(analytic, -y / s, rtol=1e-15, atol=0)
    # Relative step per entry: s can be small, an absolute step would leave log's domain.
    numeric = np.empty(K)
    for i in range(K):
        h = 1e-6 * s[i]
        sp_, sm_ = s.copy(), s.copy()
        sp_[i] += h
        sm_[i] -= h
        numeric[i] = (-(y * np.log(sp_)).sum() + (y * np.log(sm_)).sum()) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("K", [2, 3, 50])
def test_loss_grad_wrt_logits_matches_finite_differences(K):
    rng = np.random.default_rng(300 + K)
    z = 2.0 * rng.standard_normal(K)
    label = int(rng.integers(K))
    y = np.eye(K)[label]
    analytic = loss_grad_wrt_logits(z, y)
    numeric = fd_gradient(lambda z_: sps.logsumexp(z_) - z_[label], z, eps=1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(analytic, sps.softmax(z) - y, rtol=1e-13, atol=1e-15)
    assert abs(analytic.sum()) < 1e-14
    # The chain rule of step 3 with the independent loop Jacobian: J^T (-y/s) = s - y.
    chain = _jacobian_by_loops(z).T @ (-y / sps.softmax(z))
    np.testing.assert_allclose(analytic, chain, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------------------
# Cross-entropy and its gradient in the logits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 3, 50])
def test_sample_losses_and_cross_entropy_match_reference(K):
    rng = np.random.default_rng(400 + K)
    N = 23
    Z = 3.0 * rng.standard_normal((N, K))
    y = rng.integers(0, K, size=N)
    w = rng.uniform(0.1, 4.0, size=N)
    L_ref = ref_sample_losses(Z, y)
    np.testing.assert_allclose(sample_losses(Z, y), L_ref, rtol=1e-12, atol=1e-14)
    assert cross_entropy(Z, y) == pytest.approx(L_ref.mean(), rel=1e-12)
    assert cross_entropy(Z, y, w) == pytest.approx((w * L_ref).sum() / w.sum(), rel=1e-12)
    # Weights are a ratio: scaling all of them changes nothing.
    assert cross_entropy(Z, y, 17.0 * w) == pytest.approx(cross_entropy(Z, y, w), rel=1e-12)


def test_integer_sample_weights_equal_repeated_rows():
    rng = np.random.default_rng(450)
    N, K = 9, 4
    Z = rng.standard_normal((N, K))
    y = rng.integers(0, K, size=N)
    counts = rng.integers(1, 4, size=N)
    Z_rep, y_rep = np.repeat(Z, counts, axis=0), np.repeat(y, counts)
    assert cross_entropy(Z, y, counts) == pytest.approx(ref_cross_entropy(Z_rep, y_rep), rel=1e-12)
    loss, G = cross_entropy_and_logit_gradient(Z, y, counts.astype(float))
    loss_rep, G_rep = cross_entropy_and_logit_gradient(Z_rep, y_rep)
    assert loss == pytest.approx(loss_rep, rel=1e-12)
    # Summing the repeated rows' gradients gives the weighted row's gradient.
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    np.testing.assert_allclose(G, np.add.reduceat(G_rep, starts, axis=0), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("K", [2, 3, 50])
def test_cross_entropy_and_logit_gradient(K, weighted):
    rng = np.random.default_rng(500 + K + weighted)
    N = 19
    Z = 3.0 * rng.standard_normal((N, K))
    y = rng.integers(0, K, size=N)
    w = rng.uniform(0.1, 4.0, size=N) if weighted else None
    Z_before = Z.copy()

    loss, G = cross_entropy_and_logit_gradient(Z, y, w)
    np.testing.assert_array_equal(Z, Z_before)  # overwrite_logits=False leaves Z alone
    assert not np.shares_memory(G, Z)
    assert loss == pytest.approx(ref_cross_entropy(Z, y, w), rel=1e-12)
    scale = np.full(N, 1.0 / N) if w is None else w / w.sum()
    G_ref = (sps.softmax(Z, axis=1) - onehot(y, K)) * scale[:, None]
    np.testing.assert_allclose(G, G_ref, rtol=1e-12, atol=1e-16)
    # G is the gradient of the loss in Z: check a few entries by finite differences.
    G_fd = fd_gradient(lambda Z_: ref_cross_entropy(Z_, y, w), Z, eps=1e-6)
    np.testing.assert_allclose(G, G_fd, rtol=1e-6, atol=1e-9)

    Z_buffer = Z_before.copy()
    loss2, G2 = cross_entropy_and_logit_gradient(Z_buffer, y, w, overwrite_logits=True)
    assert np.shares_memory(G2, Z_buffer)  # the buffer was reused
    np.testing.assert_array_equal(Z_buffer, G2)
    assert loss2 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(G2, G_ref, rtol=1e-12, atol=1e-16)


def test_cross_entropy_and_logit_gradient_preserves_float32():
    rng = np.random.default_rng(550)
    Z = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 5, size=8)
    loss, G = cross_entropy_and_logit_gradient(Z, y)
    assert G.dtype == np.float32
    assert loss == pytest.approx(ref_cross_entropy(Z, y), rel=1e-5)
    G_ref = (sps.softmax(Z.astype(np.float64), axis=1) - onehot(y, 5)) / 8
    np.testing.assert_allclose(G, G_ref, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------
# Step 4: the batch objective and its parameter gradient
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("K", [2, 3, 50])
def test_loss_and_gradient_matches_reference_and_finite_differences(K, l2, weighted, fmt):
    N, D = 30, 3
    X, y, W, b, w = make_problem(N, D, K, seed=600 + K)
    if fmt == "csr":
        X = X * (np.random.default_rng(601).uniform(size=X.shape) < 0.5)  # real zeros
    sw = w if weighted else None
    Xin = sp.csr_matrix(X) if fmt == "csr" else X

    J, dW, db = loss_and_gradient(W, b, Xin, y, l2, sw)
    assert dW.shape == (D, K) and db.shape == (K,)
    assert isinstance(dW, np.ndarray) and isinstance(db, np.ndarray)
    assert J == pytest.approx(ref_objective(W, b, X, y, l2, sw), rel=1e-12)
    assert objective(W, b, Xin, y, l2, sw) == pytest.approx(ref_objective(W, b, X, y, l2, sw), rel=1e-12)

    dW_fd = fd_gradient(lambda W_: ref_objective(W_, b, X, y, l2, sw), W, eps=1e-6)
    db_fd = fd_gradient(lambda b_: ref_objective(W, b_, X, y, l2, sw), b, eps=1e-6)
    np.testing.assert_allclose(dW, dW_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, db_fd, rtol=1e-6, atol=1e-8)

    if fmt == "csr":
        J_d, dW_d, db_d = loss_and_gradient(W, b, X, y, l2, sw)
        assert J == pytest.approx(J_d, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(dW, dW_d, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(db, db_d, rtol=1e-12, atol=1e-12)


def test_bias_is_not_penalised():
    X, y, W, b, _ = make_problem(20, 3, 4, seed=650)
    _, dW0, db0 = loss_and_gradient(W, b, X, y, 0.0)
    J1, dW1, db1 = loss_and_gradient(W, b, X, y, 0.7)
    J0 = loss_and_gradient(W, b, X, y, 0.0)[0]
    np.testing.assert_allclose(db1, db0, rtol=0, atol=0)
    np.testing.assert_allclose(dW1 - dW0, 0.7 * W, rtol=1e-12, atol=1e-15)
    assert J1 - J0 == pytest.approx(0.35 * np.sum(W**2), rel=1e-10)
    # Changing b does not change the penalty.
    J1b = loss_and_gradient(W, b + 5.0, X, y, 0.7)[0]
    J0b = loss_and_gradient(W, b + 5.0, X, y, 0.0)[0]
    assert J1b - J0b == pytest.approx(J1 - J0, rel=1e-10)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("K", [2, 50])
def test_loss_and_gradient_float32(K, weighted, fmt):
    X, y, W, b, w = make_problem(40, 4, K, seed=700 + K)
    sw = w if weighted else None
    X32, W32, b32 = X.astype(np.float32), W.astype(np.float32), b.astype(np.float32)
    Xin32 = sp.csr_matrix(X32) if fmt == "csr" else X32
    J32, dW32, db32 = loss_and_gradient(W32, b32, Xin32, y, 0.3, sw)
    assert dW32.dtype == np.float32 and db32.dtype == np.float32
    # The float64 result on the same (float32-rounded) inputs.
    J64, dW64, db64 = loss_and_gradient(
        W32.astype(np.float64), b32.astype(np.float64), X32.astype(np.float64), y, 0.3, sw
    )
    assert J32 == pytest.approx(J64, rel=1e-4)
    np.testing.assert_allclose(dW32, dW64, rtol=1e-4, atol=1e-4 * np.abs(dW64).max())
    np.testing.assert_allclose(db32, db64, rtol=1e-4, atol=1e-4 * np.abs(db64).max())


# --------------------------------------------------------------------------------------
# Extreme values: finite results and no RuntimeWarning
# --------------------------------------------------------------------------------------


def test_extreme_logits_are_finite_without_warnings():
    Z = np.array(
        [
            [1e4, -1e4, 0.0, 1e4 - 1.0],
            [-1e4, -1e4, -1e4, -1e4],
            [1e4, 1e4, 1e4, 1e4],
            [-1e4, 1e4, -1e4, -1e4],
        ]
    )
    y = np.array([1, 0, 2, 0])  # includes true classes at -1e4 against +1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = softmax(Z)
        logP = log_softmax(Z)
        lse = logsumexp(Z)
        L = sample_losses(Z, y)
        ce = cross_entropy(Z, y)
        loss, G = cross_entropy_and_logit_gradient(Z, y)
        for z, label in zip(Z, y):
            g = loss_grad_wrt_logits(z, np.eye(4)[label])
            J = softmax_jacobian(z)
            assert np.all(np.isfinite(g)) and np.all(np.isfinite(J))
    for arr in (P, logP, lse, L, G):
        assert np.all(np.isfinite(arr))
    assert np.isfinite(ce) and np.isfinite(loss)
    np.testing.assert_allclose(P, sps.softmax(Z, axis=1), rtol=1e-12, atol=1e-300)
    # z - logsumexp(z) cancels at the scale of the logits: allow a few ulps of 1e4.
    atol = 8 * np.finfo(np.float64).eps * 1e4
    np.testing.assert_allclose(logP, sps.log_softmax(Z, axis=1), rtol=1e-12, atol=atol)
    np.testing.assert_allclose(lse, sps.logsumexp(Z, axis=1), rtol=1e-12)
    np.testing.assert_allclose(L, ref_sample_losses(Z, y), rtol=1e-12, atol=atol)
    assert L[0] == pytest.approx(2e4 + np.log1p(np.exp(-1.0)), rel=1e-12)
    np.testing.assert_allclose(G, (sps.softmax(Z, axis=1) - onehot(y, 4)) / 4, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_huge_features_give_finite_loss_and_gradient(fmt):
    X, y, W, b, w = make_problem(25, 3, 5, seed=800)
    X = 1e6 * X
    Xin = sp.csr_matrix(X) if fmt == "csr" else X
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J, dW, db = loss_and_gradient(W, b, Xin, y, 0.3, w)
        Ju, dWu, dbu = loss_and_gradient(W, b, Xin, y, 0.0)
    for value in (J, Ju):
        assert np.isfinite(value)
    for arr in (dW, db, dWu, dbu):
        assert np.all(np.isfinite(arr))
    assert J == pytest.approx(ref_objective(W, b, X, y, 0.3, w), rel=1e-10)
    # At logits of ~1e6 the softmax is one-hot, so the reference gradient is exact.
    Z = X @ W + b
    G_ref = (sps.softmax(Z, axis=1) - onehot(y, 5)) * (w / w.sum())[:, None]
    np.testing.assert_allclose(dW, X.T @ G_ref + 0.3 * W, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(db, G_ref.sum(axis=0), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# The Lipschitz constant (Böhning's bound)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lipschitz_constant_brackets_exact_eigenvalue(seed, l2, weighted, fmt):
    rng = np.random.default_rng(900 + seed)
    N, D = int(rng.integers(10, 60)), int(rng.integers(1, 7))
    X = rng.standard_normal((N, D)) * rng.uniform(0.2, 3.0, size=D) + rng.standard_normal(D)
    w = rng.uniform(0.2, 3.0, size=N) if weighted else None
    Xin = sp.csr_matrix(X) if fmt == "csr" else X
    lam = np.linalg.eigvalsh(augmented_gram(X, w))[-1]
    exact = 0.5 * lam + l2
    L = lipschitz_constant(Xin, l2, w)
    assert L >= exact
    assert L <= 1.01 * exact


@pytest.mark.parametrize(
    "K, at_zero, l2, weighted",
    [(3, False, 0.0, False), (4, False, 0.3, True), (2, False, 0.0, True), (2, True, 0.0, False), (2, True, 0.2, True)],
)
def test_lipschitz_constant_bounds_true_hessian(K, at_zero, l2, weighted):
    N, D = 25, 3
    X, y, W, b, w = make_problem(N, D, K, seed=950 + K)
    X = X + np.array([0.5, -1.0, 2.0])  # not centred: the bias direction matters
    sw = w if weighted else None
    if at_zero:
        W, b = np.zeros_like(W), np.zeros_like(b)
    theta = np.concatenate([W.ravel(), b])

    def grad(theta_):
        W_ = theta_[: D * K].reshape(D, K)
        b_ = theta_[D * K :]
        _, dW, db = loss_and_gradient(W_, b_, X, y, l2, sw)
        return np.concatenate([dW.ravel(), db])

    H = fd_gradient(grad, theta, eps=1e-5)
    H = 0.5 * (H + H.T)
    h_max = np.linalg.eigvalsh(H)[-1]
    L = lipschitz_constant(X, l2, sw)
    assert h_max <= L
    if at_zero:
        # With K = 2 at W = 0 (P = 1/2 everywhere) the data Hessian is exactly
        # 1/2 (I - 1 1^T / 2) kron X~^T Ω X~, so Böhning's bound is attained when l2 = 0; the
        # penalty only adds l2 on the W block (not the bias), so it lies in [bound - l2, bound].
        lam = np.linalg.eigvalsh(augmented_gram(X, sw))[-1]
        if l2 == 0:
            assert h_max == pytest.approx(0.5 * lam, rel=1e-6)
        else:
            assert 0.5 * lam - 1e-6 <= h_max <= 0.5 * lam + l2 + 1e-6


# Regression: an all-ones start vector is orthogonal to the top eigenvector here, and power
# iteration from it stalled on a smaller eigenvalue (half the true bound).
def test_lipschitz_constant_standardized_binary_onehot():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 2, size=200).astype(float)
    X = np.column_stack([g, 1.0 - g])
    X = (X - X.mean(axis=0)) / X.std(axis=0)  # columns are exactly x and -x
    lam = np.linalg.eigvalsh(augmented_gram(X))[-1]  # = 2
    assert 0.5 * lam <= lipschitz_constant(X) <= 0.5 * lam * 1.01


# --------------------------------------------------------------------------------------
# gradcheck.check_derivation: passes on correct code, fails on wrong gradients
# --------------------------------------------------------------------------------------

STEPS = ["1. softmax Jacobian", "2. loss in softmax", "3. chain rule", "4. batch gradient"]


@pytest.mark.parametrize("K", [2, 7])
def test_check_derivation_passes(K):
    X, y = random_problem(25, 4, K, seed=K)
    report = check_derivation(X, y, K, seed=K)
    assert [c.step for c in report.checks] == STEPS
    assert report.passed, report.to_dict()
    assert report.failed_steps == []
    for check in report.checks:
        assert check.atol == 1e-8 and check.rtol == 1e-6
        assert check.entries > 0
    assert report.checks[3].entries == 4 * K + K


# Wrong versions of the functions training runs (softreg.model.math.linear looks them up at
# call time): the kernel, the penalty's gradient, the fold's chain rule.
_right_kernel = linear_module.cross_entropy_and_logit_gradient_t
_right_objective_from_sums = linear_module.objective_from_sums


def _flip_sign(Z_t, y, row_weight, *, gradient=True):
    loss, G_t = _right_kernel(Z_t, y, row_weight, gradient=gradient)
    return loss, None if G_t is None else -G_t


def _missing_one_over_n(Z_t, y, row_weight, *, gradient=True):
    loss, G_t = _right_kernel(Z_t, y, row_weight, gradient=gradient)
    return loss, None if G_t is None else G_t * Z_t.shape[1]


def _missing_l2(total, W, l2, standardization=None):
    value, dW, db = _right_objective_from_sums(total, W, 0.0, standardization)
    return value + linear_module.penalty(W, l2), dW, db


def _fold_without_the_mean(dW, db, mean, scale):
    dW /= scale[:, None].astype(dW.dtype)
    return dW


WRONG_TRAINING_MATH = {
    "sign": ("cross_entropy_and_logit_gradient_t", _flip_sign),
    "1/N": ("cross_entropy_and_logit_gradient_t", _missing_one_over_n),
    "l2": ("objective_from_sums", _missing_l2),
    "fold": ("unfold_gradient", _fold_without_the_mean),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("wrong", list(WRONG_TRAINING_MATH), ids=list(WRONG_TRAINING_MATH))
@pytest.mark.parametrize("K", [2, 7])
def test_check_derivation_fails_on_wrong_training_math(monkeypatch, K, wrong, dtype):
    """A mistake in a function training runs is a failure of step 4, and only of step 4."""
    X, y = random_problem(25, 4, K, seed=K)
    monkeypatch.setattr(linear_module, *WRONG_TRAINING_MATH[wrong])
    report = check_derivation(X, y, K, seed=K, dtype=dtype)
    assert report.passed is False
    assert report.failed_steps == ["4. batch gradient"]


def test_a_sign_error_in_the_training_kernel_changes_training_and_fails_gradcheck(monkeypatch):
    """The kernel gradcheck proves is the one the engines train with: patched with a sign
    error, a memory engine's gradient flips, and gradcheck fails."""
    from softreg.model.engines import MemoryEngine

    X, y = random_problem(40, 3, 3, seed=1)
    W, b = np.full((3, 3), 0.1), np.array([0.2, -0.1, 0.0])
    with MemoryEngine(X, y, n_classes=3, block_rows=16) as engine:
        right = engine.objective(W, b, 0.1)
        monkeypatch.setattr(linear_module, "cross_entropy_and_logit_gradient_t", _flip_sign)
        wrong = engine.objective(W, b, 0.1)
    np.testing.assert_allclose(wrong.db, -right.db, rtol=1e-12)
    assert check_derivation(X, y, 3).failed_steps == ["4. batch gradient"]


def test_check_derivation_fails_on_wrong_jacobian(monkeypatch):
    def wrong_jacobian(z):
        s = sps.softmax(np.asarray(z, dtype=np.float64))
        return np.diag(s) + np.outer(s, s)

    X, y = random_problem(25, 4, 5, seed=3)
    monkeypatch.setattr(gradcheck_module, "softmax_jacobian", wrong_jacobian)
    report = check_derivation(X, y, 5, seed=3)
    assert report.passed is False
    assert report.failed_steps[0] == "1. softmax Jacobian"
    assert "4. batch gradient" not in report.failed_steps


@pytest.mark.parametrize("K", [2, 7])
def test_check_derivation_float32(K):
    X, y = random_problem(25, 4, K, seed=K)
    report = check_derivation(X, y, K, seed=K, dtype="float32", atol=1e-8, rtol=1e-6)
    assert report.passed, report.to_dict()
    assert report.dtype == "float32"
    assert f"{FLOAT32_TOLERANCE_FACTOR:g}" in report.tolerance_note
    for check in report.checks:
        assert check.atol == pytest.approx(1e-8 * FLOAT32_TOLERANCE_FACTOR, rel=1e-12)
        assert check.rtol == pytest.approx(1e-6 * FLOAT32_TOLERANCE_FACTOR, rel=1e-12)
    # float64 keeps the tolerances it was given.
    report64 = check_derivation(X, y, K, seed=K, atol=1e-8, rtol=1e-6)
    assert all(c.atol == 1e-8 and c.rtol == 1e-6 for c in report64.checks)
