"""softreg's math and training: pure functions over arrays, no printing.

Rooms: ``math`` (the derivation as functions), ``engines`` (where row sums are computed),
``solve`` (gradient descent over an engine), ``estimator`` (SoftmaxRegression), ``assess``
(metrics, calibration, comparison), ``gradcheck``, and ``run`` (the application layer: config,
training to a model file, evaluating, predicting, persisting).

Every name here is imported on first use: ``SoftmaxRegression`` brings in scikit-learn, which
commands that only read a model file do not need, and the math brings numpy, which
``softreg --help`` does not need.
"""

_EXPORTS = {
    "logits": "linear", "loss_and_gradient": "linear", "objective": "linear", "lipschitz_constant": "lipschitz",
    **{name: "softmax" for name in ("cross_entropy", "cross_entropy_and_logit_gradient", "log_softmax", "logsumexp",
                                    "loss_grad_wrt_logits", "loss_grad_wrt_softmax", "softmax", "softmax_jacobian")},
}

__all__ = [
    "SoftmaxRegression",
    "SoftmaxRegressionCV",
    "cross_entropy",
    "cross_entropy_and_logit_gradient",
    "lipschitz_constant",
    "log_softmax",
    "logits",
    "logsumexp",
    "loss_and_gradient",
    "loss_grad_wrt_logits",
    "loss_grad_wrt_softmax",
    "objective",
    "softmax",
    "softmax_jacobian",
]


def __getattr__(name: str):
    from importlib import import_module

    if name in ("SoftmaxRegression", "SoftmaxRegressionCV"):
        return getattr(import_module("softreg.model.estimator"), name)
    if name in _EXPORTS:
        return getattr(import_module(f"softreg.model.math.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'softreg.model' has no attribute {name!r}")
