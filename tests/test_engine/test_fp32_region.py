"""fp32_region: autocast off, inputs and outputs widened, free without
AMP."""
import pytest
import torch
from mmengine.structures import InstanceData

from engine_plugins.engine import cast_floating, fp32_region


def test_region_turns_autocast_off_and_casts_preds_and_labels():
    seen = {}

    @fp32_region
    def loss_fn(pred, labels):
        seen['autocast'] = torch.is_autocast_enabled('cpu')
        seen['pred'] = pred.dtype
        seen['labels'] = labels['cov'].dtype
        seen['inst'] = labels['inst'].bboxes.dtype
        seen['ids'] = labels['ids'].dtype
        return pred.sum() + labels['cov'].sum()

    labels = dict(
        cov=torch.ones(2, 2, dtype=torch.bfloat16),
        inst=InstanceData(bboxes=torch.zeros(1, 4, dtype=torch.bfloat16)),
        ids=torch.tensor([1, 2]))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred = torch.nn.Linear(2, 2)(torch.ones(3, 2))
        assert pred.dtype == torch.bfloat16
        out = loss_fn(pred, labels)
    assert seen == dict(
        autocast=False,
        pred=torch.float32,
        labels=torch.float32,
        inst=torch.float32,
        ids=torch.int64)
    assert out.dtype == torch.float32
    # the caller's containers are not modified.
    assert labels['cov'].dtype == torch.bfloat16


def test_complex32_becomes_complex64_and_float64_widens_further():
    half = torch.zeros(2, dtype=torch.complex32)
    assert cast_floating(half).dtype == torch.complex64
    assert cast_floating([half], torch.float64)[0].dtype == torch.complex128
    # never narrowed
    wide = torch.zeros(2, dtype=torch.float64)
    assert cast_floating(wide) is wide

    @fp32_region(dtype=torch.float64)
    def f(x):
        return x * 1j

    assert f(torch.ones(2, dtype=torch.float16)).dtype == torch.complex128


def test_region_is_free_without_amp():
    x = torch.ones(2, dtype=torch.float16)

    @fp32_region
    def identity(t):
        return t

    # No autocast: nothing is cast, the very same tensor comes back.
    assert identity(x) is x


def test_region_as_context_manager_and_on_methods():

    class Head(torch.nn.Module):

        @fp32_region
        def loss(self, x):
            return x.dtype

    with torch.autocast('cpu', dtype=torch.bfloat16):
        with fp32_region():
            assert not torch.is_autocast_enabled('cpu')
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == \
                torch.float32
        assert torch.is_autocast_enabled('cpu')
        assert Head().loss(torch.ones(1, dtype=torch.bfloat16)) == \
            torch.float32


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match='float32 or float64'):
        fp32_region(dtype=torch.float16)
