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
