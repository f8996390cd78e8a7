"""`softreg gradcheck` through Typer's runner: exit codes first, then output."""

import json

import numpy as np
import pytest

from softreg.cli.app import app
import softreg.model.gradcheck as gradcheck_module


def test_gradcheck_passes_with_a_table(runner):
    result = runner.invoke(app, ["gradcheck"])
    assert result.exit_code == 0, result.output
    for step in ("1. softmax Jacobian", "2. loss in softmax", "3. chain rule", "4. batch gradient"):
        assert step in result.output
    assert result.output.count("PASS") == 4
    assert "FAIL" not in result.output


def test_gradcheck_json_is_machine_readable(runner):
    result = runner.invoke(app, ["gradcheck", "--json", "--classes", "2", "--samples", "7"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is True
    assert [c["step"] for c in document["checks"]] == [
        "1. softmax Jacobian", "2. loss in softmax", "3. chain rule", "4. batch gradient"
    ]
    assert document["problem"]["classes"] == 2
    assert all(c["max_abs_error"] < 1e-7 for c in document["checks"])


def _flipped_sign(right):
    def kernel(Z_t, y, row_weight, *, gradient=True):
        loss, G_t = right(Z_t, y, row_weight, gradient=gradient)
        return loss, None if G_t is None else -G_t
    return kernel


def _missing_one_over_n(right):
    def kernel(Z_t, y, row_weight, *, gradient=True):
        loss, G_t = right(Z_t, y, row_weight, gradient=gradient)
        return loss, None if G_t is None else G_t * Z_t.shape[1]
    return kernel


def _missing_l2(right):
    def objective_from_sums(total, W, l2, standardization=None):
        value, dW, db = right(total, W, 0.0, standardization)
        return value + 0.5 * l2 * float(np.vdot(W, W)), dW, db
    return objective_from_sums


@pytest.mark.parametrize(
    "function, wrong, name",
    [
        ("cross_entropy_and_logit_gradient_t", _flipped_sign, "flipped sign"),
        ("cross_entropy_and_logit_gradient_t", _missing_one_over_n, "missing 1/N"),
        ("objective_from_sums", _missing_l2, "missing l2 term"),
    ],
)
def test_gradcheck_fails_on_a_wrong_gradient(runner, monkeypatch, function, wrong, name):
    """A wrong formula in the math training runs (softreg.model.math.linear) fails step 4."""
    import softreg.model.math.linear as linear

    monkeypatch.setattr(linear, function, wrong(getattr(linear, function)))
    result = runner.invoke(app, ["gradcheck"])
    assert result.exit_code == 1, f"{name}: {result.output}"
    assert "FAILED: 4. batch gradient" in result.output
    assert "1. softmax Jacobian" in result.output


def test_gradcheck_fails_on_a_wrong_jacobian(runner, monkeypatch):
    def wrong_jacobian(z):
        s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        return np.diag(s) + np.outer(s, s)  # sign error in the off-diagonal terms

    monkeypatch.setattr(gradcheck_module, "softmax_jacobian", wrong_jacobian)
    result = runner.invoke(app, ["gradcheck", "--json"])
    assert result.exit_code == 1
    failed = [c["step"] for c in json.loads(result.stdout)["checks"] if not c["passed"]]
    assert "1. softmax Jacobian" in failed


def test_gradcheck_on_a_builtin_dataset(runner):
    result = runner.invoke(app, ["gradcheck", "iris", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["problem"]["samples"] == 150 and document["problem"]["classes"] == 3


def test_gradcheck_sweep_draws_the_v(runner):
    result = runner.invoke(app, ["gradcheck", "--sweep"])
    assert result.exit_code == 0, result.output
    assert "best eps" in result.output
    sweep = json.loads(runner.invoke(app, ["gradcheck", "--sweep", "--json"]).stdout)["sweep"]
    errors = np.array(sweep["step4"])
    best = int(np.argmin(errors))
    # A V: both ends are much worse than the bottom, which lies between 1e-3 and 1e-8.
    assert 1e-8 <= sweep["eps"][best] <= 1e-3
    assert errors[0] > 100 * errors[best] and errors[-1] > 100 * errors[best]


def test_gradcheck_float32_scales_tolerances_and_says_so(runner):
    result = runner.invoke(app, ["gradcheck", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    assert "tolerances scaled" in result.output
    # With float64 tolerances the float32 gradient would not pass: that is why they scale.
    document = json.loads(runner.invoke(app, ["gradcheck", "--dtype", "float32", "--json"]).stdout)
    assert max(c["max_abs_error"] for c in document["checks"]) > 1e-8


@pytest.mark.parametrize(
    "args, needle",
    [
        (["gradcheck", "--dtype", "float16"], "--dtype"),
        (["gradcheck", "--classes", "1"], "--classes"),
        (["gradcheck", "no_such_dataset"], "no_such_dataset"),
    ],
)
def test_gradcheck_bad_input_exits_2(runner, args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_every_command_has_help(runner):
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        assert name in listing.output
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage" in result.output


# --- gradcheck --explain: the worked example -------------------------------------------------

def _explained(runner, *args):
    result = runner.invoke(app, ["gradcheck", "--explain", "--json", *args])
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


@pytest.mark.parametrize("args", [[], ["--seed", "7"], ["--logits", "2,1,0.1", "--label", "0"],
                                  ["--logits", "1000,-1000,0", "--label", "1"],
                                  ["--logits", "1000,-1000,0", "--label", "0"],
                                  ["--logits", "-1000,-1000,-1000", "--label", "2"],
                                  ["--logits", "0,-705,0", "--label", "1"], ["--classes", "5", "--seed", "2"]])
def test_explain_numbers_equal_independent_computations(runner, args):
    """s against scipy's softmax, J against a Jacobian built entry by entry in a loop, L against
    scipy's logsumexp, s - y and the batch step against the formulas written here with numpy."""
    from scipy.special import logsumexp, softmax as scipy_softmax

    result, document = _explained(runner, *args)
    assert result.exit_code == 0, result.output
    assert document["passed"] is True and len(document["steps"]) == 5
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout  # strict JSON, finite numbers
    one, two, three, four, five = (step["numbers"] for step in document["steps"])
    z = np.array(one["z"])
    s = scipy_softmax(z)
    np.testing.assert_allclose(one["s"], s, rtol=0, atol=1e-12)
    assert abs(one["sum"] - np.exp(z - z.max()).sum()) < 1e-12
    loop = np.zeros((len(z), len(z)))
    for n in range(len(z)):
        for m in range(len(z)):
            loop[n, m] = s[n] * ((1.0 if n == m else 0.0) - s[m])
    np.testing.assert_allclose(two["J"], loop, rtol=0, atol=1e-12)
    np.testing.assert_allclose(two["J_numeric"], loop, rtol=0, atol=1e-8)  # central differences, O(eps^2)
    np.testing.assert_allclose(two["column_sums"], 0.0, atol=1e-12)
    label = three["label"]
    assert abs(three["loss"] - (logsumexp(z) - z[label])) < 1e-12 * max(1.0, abs(three["loss"]))
    y = np.eye(len(z))[label]
    if three["dL_ds"][label] is not None:  # -y/s entry by entry (0 where y is 0); null once -1/s would overflow
        np.testing.assert_allclose(three["dL_ds"], np.where(y > 0, -1.0 / s[label], 0.0), rtol=1e-12)
    else:
        assert three["dL_ds_label_exponent"] == pytest.approx(logsumexp(z) - z[label]) and s[label] < 1e-300
    for m, row in four["rows"].items():  # the chain rule multiplied out: s_m - delta_lm
        assert abs(row["product"] - (s[int(m)] - y[int(m)])) < 1e-12
    np.testing.assert_allclose(four["numeric"], s - y, rtol=0, atol=1e-6)
    np.testing.assert_allclose(four["s_minus_y"], s - y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(four["J_transpose_dL_ds"], s - y, rtol=0, atol=1e-12)
    X, W, b, l2 = np.array(five["X"]), np.array(five["W"]), np.array(five["b"]), five["l2"]
    P = scipy_softmax(X @ W + b, axis=1)
    Y = np.eye(W.shape[1])[five["y"]]
    np.testing.assert_allclose(five["dW"], X.T @ (P - Y) / len(X) + l2 * W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(five["db"], (P - Y).mean(axis=0), rtol=0, atol=1e-12)
    # Every number on screen is finite, whatever the logits (an overflowing -1/s is written as -e^(...)).
    shown = runner.invoke(app, ["gradcheck", "--explain", *args])
    assert shown.exit_code == 0 and "nan" not in shown.output.lower() and "inf" not in shown.output.lower()


def test_explain_agrees_with_torch_autograd_when_installed(runner):
    """s, the Jacobian, L, dL/ds, s - y and the batch step's dW, db, each against torch."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    _, document = _explained(runner, "--logits", "2,1,0.1", "--label", "0")
    numbers = [step["numbers"] for step in document["steps"]]
    z = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64, requires_grad=True)
    s = torch.softmax(z, dim=0)
    np.testing.assert_allclose(numbers[0]["s"], s.detach().numpy(), rtol=0, atol=1e-12)
    jacobian = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, dim=0), z.detach())
    np.testing.assert_allclose(numbers[1]["J"], jacobian.numpy(), rtol=0, atol=1e-12)
    s_leaf = s.detach().requires_grad_(True)
    loss = -torch.log(s_leaf[0])
    loss.backward()
    assert numbers[2]["loss"] == pytest.approx(loss.item(), abs=1e-12)
    np.testing.assert_allclose(numbers[2]["dL_ds"], s_leaf.grad.numpy(), rtol=0, atol=1e-12)
    torch.nn.functional.cross_entropy(z[None], torch.tensor([0])).backward()
    np.testing.assert_allclose(numbers[3]["s_minus_y"], z.grad.numpy(), rtol=0, atol=1e-12)
    batch = numbers[4]
    X, y = torch.tensor(batch["X"], dtype=torch.float64), torch.tensor(batch["y"])
    W = torch.tensor(batch["W"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(batch["b"], dtype=torch.float64, requires_grad=True)
    objective = torch.nn.functional.cross_entropy(X @ W + b, y) + batch["l2"] / 2 * (W ** 2).sum()
    objective.backward()
    np.testing.assert_allclose(batch["dW"], W.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(batch["db"], b.grad.numpy(), rtol=0, atol=1e-12)


def _wrong_jacobian(z):
    s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return np.diag(s) + np.outer(s, s)


@pytest.mark.parametrize("name, replacement, step", [
    ("softmax_jacobian", _wrong_jacobian, "2. the softmax Jacobian"),
    ("loss_grad_wrt_softmax", lambda s, y: y / np.asarray(s, dtype=float), "3. the loss and its gradient in s"),
    ("loss_grad_wrt_logits", lambda z, y: y - np.exp(z - z.max()) / np.exp(z - z.max()).sum(), "4. the chain rule"),
])
@pytest.mark.parametrize("sample", [[], ["--logits", "1000,-1000,0", "--label", "1"]])
def test_explain_fails_the_step_whose_formula_is_wrong(runner, monkeypatch, name, replacement, step, sample):
    monkeypatch.setattr(gradcheck_module, name, replacement)
    result, document = _explained(runner, *sample)
    assert result.exit_code == 1
    failed = [s["title"] for s in document["steps"] if not s["passed"]]
    assert failed[0] == step  # the step of the wrong formula (and the chain rule that multiplies it)
    assert "FAIL" in runner.invoke(app, ["gradcheck", "--explain"]).output


def test_explain_fails_step_5_on_a_wrong_training_kernel(runner, monkeypatch):
    import softreg.model.math.linear as linear

    monkeypatch.setattr(linear, "cross_entropy_and_logit_gradient_t",
                        _flipped_sign(linear.cross_entropy_and_logit_gradient_t))
    result, document = _explained(runner)
    assert result.exit_code == 1
    assert [s["title"] for s in document["steps"] if not s["passed"]] == ["5. the batch step"]


@pytest.mark.parametrize("args, needle", [(["--logits", "2,x"], "--logits must be numbers"),
                                          (["--logits", "2"], "at least 2 finite numbers"),
                                          (["--logits", "1,2,inf"], "at least 2 finite numbers"),
                                          (["--logits", "1e308,-1e308"], "too far apart for float64"),
                                          (["--logits", "1,2,3", "--label", "3"], "--label must be a class of the sample, 0..2"),
                                          (["--logits", "1,2,3", "--classes", "4"], "the logits set K"),
                                          (["--eps", "0.1", "--dtype", "float32"], "--eps, --dtype do not apply"),
                                          (["--label", "-1"], "--label"),
                                          (["--seed", "-1"], "seed (--seed) must be an integer from 0"),
                                          (["--l2", "inf"], "l2 (--l2) must be a finite number"),
                                          (["--l2", "nan"], "l2 (--l2) must be a finite number"),
                                          (["--classes", "6"], "do not fit an 80-column terminal beyond K = 5"),
                                          (["--logits", "1,2,3,4,5,6"], "choose at most 5 classes")])
def test_explain_refuses_bad_choices(runner, args, needle):
    result = runner.invoke(app, ["gradcheck", "--explain", *args])
    assert result.exit_code == 2 and needle in " ".join(result.output.split()) and "Traceback" not in result.output


def test_explain_at_the_widest_k_fits_80_columns_and_json_takes_any_k(runner):
    """K = 5 is the most the screen takes (every line within 80 columns, no number cut to an
    ellipsis); --json carries every number at a K the screen refuses."""
    import json

    result = runner.invoke(app, ["gradcheck", "--explain", "--classes", "5"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80 and "…" not in result.output
    result = runner.invoke(app, ["gradcheck", "--explain", "--classes", "7", "--json"])
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["steps"][0]["numbers"]["s"]) == 7


def test_docs_worked_example_is_what_the_command_prints(runner):
    """docs/derivation.md shows the command's own output (regenerate it with the command in the
    block's first line); this test fails when the two drift apart."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "derivation.md").read_text(encoding="utf-8")
    start, end = "<!-- explain:start -->", "<!-- explain:end -->"
    block = text[text.index(start) + len(start):text.index(end)].strip()
    assert block.startswith("```\n$ softreg gradcheck --explain --logits 2,1,0.1 --label 0\n")
    shown = block.removeprefix("```\n$ softreg gradcheck --explain --logits 2,1,0.1 --label 0\n").removesuffix("```")
    result = runner.invoke(app, ["gradcheck", "--explain", "--logits", "2,1,0.1", "--label", "0"],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert [line.rstrip() for line in shown.strip().splitlines()] == \
        [line.rstrip() for line in result.output.strip().splitlines()]
