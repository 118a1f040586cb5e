"""Bugs in a user's subclass of the toy regressor."""
import torch
import torch.nn as nn

from engine_plugins.registry import MODELS
from tests.toy_task import ToyRegressor


@MODELS.register_module()
class MutToyRegressor(ToyRegressor):
    """The toy regressor with one of these edits (``bug``):

    * ``'detached'``: the loss is returned ``.detach()``-ed (logged twice);
    * ``'leaf'``: the loss re-wrapped as ``torch.tensor(loss.item(),
      requires_grad=True)``;
    * ``'float'``: the loss returned as a Python float;
    * ``'misnamed'``: the term is called ``mse``;
    * ``'aux_misnamed'``: an L2 penalty returned as ``l2_penalty``;
    * ``'aux_detached'``: the L2 penalty term is detached;
    * ``'unused_layer'``: a refinement layer built but never called;
    * ``'zero_weight'`` / ``'aux_zero_weight'``: a loss weight of 0 on
      the main term / on the penalty.
    """

    def __init__(self, bug: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bug = bug
        if bug == 'unused_layer':
            self.refine = nn.Linear(1, 1)

    def forward(self, inputs, targets=None, mode='loss'):
        out = super().forward(inputs, targets, mode)
        if mode != 'loss':
            return out
        loss = out['loss_mse']
        penalty = 1e-3 * sum(p.pow(2).sum() for p in self.net.parameters())
        bug = self.bug
        if bug == 'detached':
            return dict(loss_mse=loss.detach())
        if bug == 'leaf':
            return dict(loss_mse=torch.tensor(loss.item(),
                                              requires_grad=True))
        if bug == 'float':
            return dict(loss_mse=float(loss))
        if bug == 'misnamed':
            return dict(mse=loss)
        if bug == 'aux_misnamed':
            return dict(loss_mse=loss, l2_penalty=penalty)
        if bug == 'aux_detached':
            return dict(loss_mse=loss, loss_l2=penalty.detach())
        if bug == 'zero_weight':
            return dict(loss_mse=0.0 * loss)
        if bug == 'aux_zero_weight':
            return dict(loss_mse=loss, loss_l2=0.0 * penalty)
        return out
