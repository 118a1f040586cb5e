"""Explaining a non-finite step: which batch entry, which module, which
backward op."""
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from engine_plugins.engine.sanity.rerun import (input_scale,
                                                nonfinite_batch_entry)


def test_the_first_nonfinite_entry_is_named_by_key_and_file():
    sample = DetDataSample(metainfo=dict(img_path='a.png', img_id=4))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[1.0, 2.0, float('inf'), 4.0]]),
        labels=torch.tensor([0]))
    batch = dict(
        inputs=[torch.zeros(3, 2, 2, dtype=torch.uint8)],
        data_samples=[sample])
    assert nonfinite_batch_entry(batch) == 'data_samples of a.png (img_id 4)'
    batch = dict(inputs=torch.zeros(3, 2), targets=torch.tensor(
        [1.0, float('nan'), 2.0]))
    assert nonfinite_batch_entry(batch) == 'targets of batch item 1'
    assert nonfinite_batch_entry(dict(inputs=torch.ones(2))) is None


def test_input_scale_flags_features_far_from_unit_scale():
    assert input_scale(dict(inputs=torch.randn(8, 4))) is None
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    assert input_scale(dict(inputs=[image])) is None
    found = input_scale(dict(inputs=torch.full((2, 3), 500.0)))
    assert found.startswith('the float inputs are far from unit scale '
                            '(mean |x| 500, std 0)')
