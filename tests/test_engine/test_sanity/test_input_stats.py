"""Input statistics: the network input is normalized exactly once."""
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmengine.model import BaseDataPreprocessor

from engine_plugins.engine.sanity.errors import InputStatsError
from engine_plugins.engine.sanity.input_stats import check_input_statistics

IMAGENET = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])


def _pixels():
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randint(0, 256, (3, 8, 8), generator=gen, dtype=torch.uint8)
        for _ in range(2)
    ]


def _run(preprocessor, raw):
    out = preprocessor(dict(inputs=raw), True)['inputs']
    check_input_statistics(preprocessor, raw, out)
    return out


def test_pixels_normalized_once_pass():
    _run(DetDataPreprocessor(**IMAGENET), _pixels())
    _run(DetDataPreprocessor(mean=[0, 0, 0], std=[255, 255, 255]), _pixels())


def test_normalized_twice_names_both_places():
    normalized = [(p.float() - torch.tensor(IMAGENET['mean'])[:, None, None]) /
                  torch.tensor(IMAGENET['std'])[:, None, None]
                  for p in _pixels()]
    with pytest.raises(InputStatsError) as err:
        _run(DetDataPreprocessor(**IMAGENET), normalized)
    message = str(err.value)
    assert message.startswith('the images reach the data preprocessor '
                              'already normalized (values in [-2.')
    assert ('a Normalize transform in the pipeline?) and data_preprocessor('
            'mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]) '
            'normalizes them again') in message
    # (x_norm - 123.675) / 58.395 with |x_norm| < 2.7: mean about -2.1.
    assert 'per-channel mean [-2.1' in message
    assert err.value.cause == 'input_normalization'


def test_scaled_by_255_twice():
    unit = [p.float() / 255 for p in _pixels()]
    with pytest.raises(
            InputStatsError,
            match='already scaled to '
            r'\[0, 1\] .* divides by the 255 range again'):
        _run(DetDataPreprocessor(mean=[0, 0, 0], std=[255, 255, 255]), unit)


def test_never_normalized():
    with pytest.raises(
            InputStatsError,
            match='raw pixel values reach the '
            'network: the images are in \\[0, 255\\] and '
            'data_preprocessor without mean/std'):
        _run(DetDataPreprocessor(), _pixels())
    with pytest.raises(InputStatsError, match='raw pixel values reach'):
        _run(DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1]), _pixels())


def test_unit_range_inputs_without_normalization_are_fine():
    # A pipeline that scales to [0, 1] and a preprocessor that does not:
    # normalized once.
    _run(DetDataPreprocessor(), [p.float() / 255 for p in _pixels()])


def test_non_image_preprocessors_are_not_checked():
    check_input_statistics(BaseDataPreprocessor(),
                           torch.ones(2, 5) * 300,
                           torch.ones(2, 5) * 300)


def test_integer_images_divided_by_255_are_named():
    binary = [(p // 255).to(torch.uint8) for p in _pixels()]  # 0 or 1
    with pytest.raises(InputStatsError, match='the images are integers '
                       'holding only 0..1 before the data preprocessor'):
        _run(DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1]), binary)
