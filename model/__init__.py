"""softreg's math and training: pure functions over arrays, no printing.

Rooms: ``math`` (the derivation as functions), ``engines`` (where row sums are computed),
``solve`` (gradient descent over an engine), ``estimator`` (SoftmaxRegression), ``assess``
(metrics, calibration, comparison), ``gradcheck``, and ``run`` (the application layer: config,
training to a model file, evaluating, predicting, persisting).

``SoftmaxRegression`` is imported on first use: it brings in scikit-learn, which commands
that only read a model file do not need.
"""

from softreg.model.math.linear import logits, loss_and_gradient, objective
from softreg.model.math.lipschitz import lipschitz_constant
from softreg.model.math.softmax import (
    cross_entropy,
    cross_entropy_and_logit_gradient,
    log_softmax,
    logsumexp,
    loss_grad_wrt_logits,
    loss_grad_wrt_softmax,
    softmax,
    softmax_jacobian,
)

__all__ = [
    "SoftmaxRegression",
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
    if name == "SoftmaxRegression":
        from softreg.model.estimator import SoftmaxRegression

        return SoftmaxRegression
    raise AttributeError(f"module 'softreg.model' has no attribute {name!r}")
