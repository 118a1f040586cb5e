"""FP32LossRegionHook wraps methods and modules named in the config."""
from unittest.mock import Mock

import pytest
import torch
import torch.nn as nn

from engine_plugins.engine import FP32LossRegionHook


class _Criterion(nn.Module):

    def forward(self, pred, target):
        return dict(
            dtype=pred.dtype,
            target=target.dtype,
            autocast=torch.is_autocast_enabled('cpu'))


class _Head(nn.Module):

    def loss_by_feat(self, feats):
        return feats.dtype


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.bbox_head = _Head()
        self.criterion = _Criterion()


def test_hook_wraps_methods_and_modules():
    model = _Model()
    hook = FP32LossRegionHook(targets=['bbox_head.loss_by_feat', 'criterion'])
    hook.before_run(Mock(model=model))
    half = torch.ones(2, dtype=torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert model.bbox_head.loss_by_feat(half) == torch.float32
        out = model.criterion(half, half)
    assert out == dict(
        dtype=torch.float32, target=torch.float32, autocast=False)
    # idempotent: a second before_run does not double-wrap.
    hook.before_run(Mock(model=model))
    assert not hasattr(model.bbox_head.loss_by_feat.__wrapped__, '__wrapped__')


def test_unknown_target_lists_submodules():
    hook = FP32LossRegionHook(targets=['bbox_head.los_by_feat'])
    with pytest.raises(AttributeError, match="has no attribute 'los_by_feat'"):
        hook.before_run(Mock(model=_Model()))
    hook = FP32LossRegionHook(targets=['head.loss'])
    with pytest.raises(AttributeError, match=r"\['bbox_head', 'criterion'\]"):
        hook.before_run(Mock(model=_Model()))
