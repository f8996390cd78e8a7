"""The row-block engine equals the plain formula, written here with scipy, to 1e-12 in float64.

References are independent of softreg's code: scipy.special.log_softmax / softmax for the loss
and G = w_i (P_i - Y_i), NumPy for the chain rule, brute force for the row counts and for the
largest eigenvalue behind the Lipschitz bound.
"""

import numpy as np
import pytest
from scipy import sparse
from scipy.special import log_softmax, softmax

from softreg.model.engines import MemoryEngine
from softreg.model.engines.base import block_rows_for, csr_rows, row_blocks
from softreg.model.solve import OptimizerSettings, train_softmax


def reference(W, b, X, y, l2, sample_weight=None):
    """J, dJ/dW, dJ/db from the formula of step 4, in float64."""
    X64 = X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=np.float64)
    n = X64.shape[0]
    w = np.full(n, 1.0 / n) if sample_weight is None else sample_weight / sample_weight.sum()
    Z = X64 @ W.astype(np.float64) + b.astype(np.float64)
    J = -np.sum(w * log_softmax(Z, axis=1)[np.arange(n), y]) + 0.5 * l2 * np.sum(W.astype(np.float64) ** 2)
    Y = np.eye(W.shape[1])[y]
    G = w[:, None] * (softmax(Z, axis=1) - Y)
    return J, X64.T @ G + l2 * W, G.sum(axis=0)


def problem(n, d, k, seed=0, layout="dense", dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if layout == "sparse":
        X[rng.random((n, d)) > 0.1] = 0.0
        X = sparse.csr_matrix(X.astype(dtype))
    else:
        X = X.astype(dtype)
    y = rng.integers(0, k, n)
    W = (rng.standard_normal((d, k)) * 0.3).astype(dtype)
    b = (rng.standard_normal(k) * 0.2).astype(dtype)
    return X, y, W, b


def relative(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("k", [2, 7])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("block_rows, threads", [(None, None), (37, 1), (37, 2), (500, 2)])
def test_engine_equals_the_formula(layout, k, weighted, l2, block_rows, threads):
    X, y, W, b = problem(503, 11, k, layout=layout)
    weights = np.random.default_rng(1).uniform(0, 3, 503) if weighted else None
    if weighted:
        weights[::7] = 0.0  # zero-weight rows count for nothing
    J, dW, db = reference(W, b, X, y, l2, weights)
    with MemoryEngine(X, y, weights, n_classes=k, block_rows=block_rows, threads=threads) as engine:
        if block_rows is not None:
            assert len(engine.blocks) == -(-503 // block_rows)
        result = engine.objective(W, b, l2)
        value_only = engine.objective(W, b, l2, gradient=False)
    assert abs(result.value - J) <= 1e-12 * abs(J)
    assert value_only.value == result.value and value_only.dW is None
    assert relative(result.dW, dW) <= 1e-12
    assert relative(result.db, db) <= 1e-12
    assert result.dW.shape == W.shape and result.dW.flags.c_contiguous


def test_float32_stays_float32_and_matches_float64():
    X, y, W, b = problem(3000, 40, 5, dtype=np.float32)
    with MemoryEngine(X, y, n_classes=5, block_rows=256) as engine:
        result = engine.objective(W, b, 0.01)
    assert result.dW.dtype == np.float32 and result.db.dtype == np.float32
    J, dW, db = reference(W, b, X, y, 0.01)
    assert abs(result.value - J) <= 1e-6 * abs(J)
    assert relative(result.dW, dW) <= 1e-5 and relative(result.db, db) <= 1e-5


def test_sums_are_reduced_in_block_order_whatever_the_thread_count():
    """Bitwise the same result with 1 or 2 threads: partial sums are added in block order."""
    X, y, W, b = problem(20_000, 30, 6)
    results = []
    for threads in (1, 2):
        with MemoryEngine(X, y, n_classes=6, block_rows=1024, threads=threads) as engine:
            results.append(engine.objective(W, b, 0.1))
    assert results[0].value == results[1].value
    assert np.array_equal(results[0].dW, results[1].dW) and np.array_equal(results[0].db, results[1].db)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_row_counts_match_brute_force(layout):
    X, y, W, b = problem(700, 9, 4, layout=layout)
    X_tied = X.toarray() if sparse.issparse(X) else X.copy()
    # A zero row with a zero bias ties every class: not separated, and argmax picks class 0.
    X_tied[5] = 0.0
    b_tied = np.zeros_like(b)
    Z = X_tied @ W + b_tied
    X_in = sparse.csr_matrix(X_tied) if layout == "sparse" else X_tied
    with MemoryEngine(X_in, y, n_classes=4, block_rows=64) as engine:
        counts = engine.objective(W, b_tied, 0.0, gradient=False, count=True)
    brute_correct = sum(int(np.argmax(Z[i]) == y[i]) for i in range(700))
    brute_unseparated = sum(
        int(not all(Z[i, y[i]] > Z[i, j] for j in range(4) if j != y[i])) for i in range(700))
    assert counts.n_correct == brute_correct
    assert counts.n_unseparated == brute_unseparated
    assert brute_unseparated >= 1 and not counts.separates


def test_separable_data_is_recognized_and_zero_weight_rows_do_not_count():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] > 0).astype(int)
    W = np.array([[-50.0, 50.0], [0.0, 0.0]])  # class 1 exactly when x0 > 0
    b = np.zeros(2)
    with MemoryEngine(X, y, n_classes=2) as engine:
        assert engine.objective(W, b, 0.0, gradient=False, count=True).separates
    y_wrong = y.copy()
    y_wrong[0] = 1 - y_wrong[0]
    with MemoryEngine(X, y_wrong, n_classes=2) as engine:
        assert engine.objective(W, b, 0.0, gradient=False, count=True).n_unseparated == 1
    weights = np.ones(200)
    weights[0] = 0.0
    with MemoryEngine(X, y_wrong, weights, n_classes=2) as engine:
        assert engine.objective(W, b, 0.0, gradient=False, count=True).separates


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_lipschitz_bound_matches_the_largest_eigenvalue(layout):
    X, y, _, _ = problem(900, 12, 3, layout=layout)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, 900)
    dense = X.toarray() if sparse.issparse(X) else X
    X_tilde = np.hstack([dense, np.ones((900, 1))])
    omega = weights / weights.sum()
    largest = np.linalg.eigvalsh(X_tilde.T @ (omega[:, None] * X_tilde))[-1]
    with MemoryEngine(X, y, weights, n_classes=3, block_rows=100) as engine:
        L = engine.lipschitz(0.25)
    assert 0.5 * largest + 0.25 <= L <= (0.5 * largest) * 1.01 + 0.25


def test_csr_blocks_share_the_matrix_memory():
    X, _, _, _ = problem(300, 20, 2, layout="sparse")
    block = csr_rows(X, 100, 250)
    assert np.shares_memory(block.data, X.data) and np.shares_memory(block.indices, X.indices)
    assert (block != X[100:250]).nnz == 0


def test_blocks_cover_every_row_once_and_depend_on_shape_only():
    X = np.zeros((10_001, 256))
    blocks = row_blocks(X, block_rows_for(256, 8))
    assert blocks[0][0] == 0 and blocks[-1][1] == 10_001
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(blocks, blocks[1:]))
    assert block_rows_for(256, 8) == 2048 and block_rows_for(256, 4) == 4096


def test_training_on_many_blocks_and_threads_gives_the_single_block_weights():
    """Same data, same settings: the weights agree to 1e-10 however the rows are blocked."""
    from softreg.model.solve import train_on_engine

    X, _, W_true, _ = problem(4000, 60, 4)
    y = np.argmax(X @ W_true + np.random.default_rng(5).gumbel(size=(4000, 4)), axis=1)
    settings = OptimizerSettings(max_epochs=12, tol=0, momentum="nesterov")
    results = []
    for block_rows, threads in ((None, 1), (300, 2)):
        engine = MemoryEngine(X, y, n_classes=4, block_rows=block_rows, threads=threads)
        results.append(train_on_engine(engine, 4, l2=1e-3, settings=settings))
    assert [result.stop_reason for result in results] == ["max_epochs"] * 2
    assert relative(results[1].W, results[0].W) <= 1e-10
    plain = train_softmax(X, y, 4, l2=1e-3, settings=settings)
    assert relative(plain.W, results[0].W) <= 1e-10


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_folded_standardization_equals_training_on_standardized_rows(layout, weighted):
    """Folding (mean, scale) into the weights gives J, its gradient and L of the standardized rows."""
    X, y, W, b = problem(400, 8, 3, layout=layout)
    dense = X.toarray() if sparse.issparse(X) else X
    dense = dense * np.arange(1, 9) + 3.0 * np.arange(8)  # columns with different means and spreads
    X_raw = sparse.csr_matrix(dense) if layout == "sparse" else dense
    mean, scale = dense.mean(axis=0), dense.std(axis=0)
    standardized = (dense - mean) / scale
    weights = np.random.default_rng(4).uniform(0.1, 2.0, 400) if weighted else None
    J, dW, db = reference(W, b, standardized, y, 0.2, weights)
    with MemoryEngine(X_raw, y, weights, n_classes=3, block_rows=64, standardization=(mean, scale)) as engine:
        result = engine.objective(W, b, 0.2)
        L = engine.lipschitz(0.2)
    assert abs(result.value - J) <= 1e-12 * abs(J)
    assert relative(result.dW, dW) <= 1e-10 and relative(result.db, db) <= 1e-10
    omega = np.full(400, 1 / 400) if weights is None else weights / weights.sum()
    X_tilde = np.hstack([standardized, np.ones((400, 1))])
    largest = np.linalg.eigvalsh(X_tilde.T @ (omega[:, None] * X_tilde))[-1]
    # Standardized random columns have clustered eigenvalues, where power iteration stops a
    # little early; what is tested here is the fold, so the tolerance is the power iteration's.
    assert 0.99 * (0.5 * largest) + 0.2 <= L <= 0.5 * largest * 1.01 + 0.2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stream_engine_reads_the_same_blocks_as_memory(tmp_path, dtype):
    """Same blocks, same sums: the out-of-core engine (rows standardized in its buffer) agrees
    with the in-memory one (standardization folded into the weights) and with the formula."""
    from softreg.model.engines import StreamEngine

    X, y, W, b = problem(5000, 13, 4, dtype=dtype)
    weights = np.random.default_rng(6).uniform(0, 2, 5000)
    weights[::3] = 0.0  # rows left out, as a split leaves them out
    path = tmp_path / "x.npy"
    np.save(path, X)
    mean, scale = X.mean(axis=0).astype(np.float64), X.std(axis=0).astype(np.float64)
    results = []
    for engine in (MemoryEngine(X, y, weights, n_classes=4, block_rows=700, standardization=(mean, scale)),
                   StreamEngine(path, y, weights, n_classes=4, block_rows=700, standardization=(mean, scale))):
        with engine:
            results.append((engine.objective(W, b, 0.1, count=True), engine.lipschitz(0.1)))
    (memory, L_memory), (stream, L_stream) = results
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    J, dW, db = reference(W, b, (X.astype(np.float64) - mean) / scale, y, 0.1, weights)
    for result in (memory, stream):
        assert abs(result.value - J) <= tolerance * abs(J)
        assert relative(result.dW, dW) <= tolerance * 10 and relative(result.db, db) <= tolerance * 10
    assert abs(L_stream - L_memory) <= 1e-6 * L_memory
    assert stream.n_correct == memory.n_correct
    kept = weights > 0
    Z = ((X[kept] - mean) / scale) @ W + b
    assert memory.n_correct == int(np.sum(np.argmax(Z, axis=1) == y[kept]))


def test_stream_engine_memory_stays_near_a_block(tmp_path):
    import tracemalloc

    from softreg.model.engines import StreamEngine

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 100))  # 32 MB on disk
    y = rng.integers(0, 3, 40_000)
    path = tmp_path / "x.npy"
    np.save(path, X)
    del X
    engine = StreamEngine(path, y, n_classes=3, block_rows=1000, threads=2)  # 0.8 MB blocks
    W, b = np.zeros((100, 3)), np.zeros(3)
    tracemalloc.start()
    try:
        with engine:
            engine.objective(W, b, 0.0)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB for a 32 MB file read in 0.8 MB blocks"


def test_stream_engine_refuses_a_file_it_cannot_stream(tmp_path):
    from softreg.model.engines import StreamEngine

    path = tmp_path / "x.npy"
    np.save(path, np.asfortranarray(np.ones((10, 3))))
    with pytest.raises(ValueError, match="row-major"):
        StreamEngine(path, np.zeros(10, dtype=int), n_classes=2)
    np.save(path, np.ones(10))
    with pytest.raises(ValueError, match="2-D"):
        StreamEngine(path, np.zeros(10, dtype=int), n_classes=2)


def test_nested_entries_share_one_pool_and_restore_blas_threads():
    from threadpoolctl import threadpool_info

    X, y, W, b = problem(60_000, 60, 5)  # above the small-problem threshold: a pool of 2
    before = [info["num_threads"] for info in threadpool_info()]
    engine = MemoryEngine(X, y, n_classes=5, threads=2)
    with engine:
        with engine:  # train_on_engine enters an engine its caller may already have entered
            engine.objective(W, b)
        assert engine._pool is not None
        engine.objective(W, b)
    assert engine._pool is None
    assert [info["num_threads"] for info in threadpool_info()] == before


def test_csc_and_coo_input_equal_csr():
    X, y, W, b = problem(400, 9, 3, layout="sparse")
    J, dW, _ = reference(W, b, X, y, 0.1)
    for converted in (X.tocsc(), X.tocoo()):
        with MemoryEngine(converted, y, n_classes=3, block_rows=50) as engine:
            result = engine.objective(W, b, 0.1)
        assert abs(result.value - J) <= 1e-12 * abs(J) and relative(result.dW, dW) <= 1e-12


def test_pool_threads_keep_the_callers_numpy_error_state():
    """An overflowing trial step warns nowhere when the caller silenced numpy (as training does)."""
    import warnings

    X, y, W, b = problem(30_000, 40, 5)
    with MemoryEngine(X, y, n_classes=5, threads=2, block_rows=1000) as engine:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="ignore", invalid="ignore"):
                result = engine.objective(W * 1e306, b, gradient=False)
    assert not np.isfinite(result.value)
