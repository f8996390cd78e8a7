"""softreg's math and training: pure functions over arrays, no printing."""

from softreg.model.estimator import SoftmaxRegression
from softreg.model.objective import lipschitz_constant, logits, loss_and_gradient, objective, parameter_gradient
from softreg.model.softmax import (
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
    "parameter_gradient",
    "softmax",
    "softmax_jacobian",
]
