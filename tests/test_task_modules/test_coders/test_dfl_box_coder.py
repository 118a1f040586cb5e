import torch

from engine_plugins.task_modules import DFLBoxCoder


def test_seed001_example_in_stride_units():
    stride = 8
    point = torch.tensor([[200., 200.]]) / stride
    box = torch.tensor([[100., 100., 300., 300.]]) / stride
    target = DFLBoxCoder(reg_max=16).encode(point, box)
    torch.testing.assert_close(target, torch.full((1, 4), 12.5))


def test_targets_clamp_below_the_last_bin():
    # Distances 20 (left) and -3 (outside: top) clamp to 14.99 and 0.
    point = torch.tensor([[25., 5.]])
    box = torch.tensor([[5., 8., 30., 10.]])
    target = DFLBoxCoder(reg_max=16).encode(point, box)
    torch.testing.assert_close(target, torch.tensor([[14.99, 0.0, 5.0,
                                                      5.0]]))


def test_decode_known_distributions():
    coder = DFLBoxCoder(reg_max=16)
    logits = torch.full((1, 4, 16), -1e4)
    logits[0, 0, 3] = 0  # left: all mass on bin 3 -> 3
    logits[0, 1, [2, 4]] = 0  # top: half on 2, half on 4 -> 3
    logits[0, 2, 0] = 0  # right: bin 0 -> 0
    logits[0, 3, 15] = 0  # bottom: last bin -> 15
    boxes = coder.decode(torch.tensor([[10., 20.]]), logits.flatten(1))
    torch.testing.assert_close(boxes, torch.tensor([[7., 17., 10., 35.]]))
    # Uniform logits: expectation is the mean bin, 7.5, on every side.
    uniform = coder.expectation(torch.zeros(2, 3, 64))
    torch.testing.assert_close(uniform, torch.full((2, 3, 4), 7.5))
