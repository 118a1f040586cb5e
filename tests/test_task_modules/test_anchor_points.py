import torch

from engine_plugins.task_modules import make_anchor_points


def test_cell_centres_in_grid_units_level_by_level():
    points, strides = make_anchor_points([(2, 3), (1, 1)], [8, 16])
    # level 0: 2 rows x 3 columns, row-major; level 1: one cell.
    expected = torch.tensor([[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5],
                             [1.5, 1.5], [2.5, 1.5], [0.5, 0.5]])
    torch.testing.assert_close(points, expected)
    assert strides.flatten().tolist() == [8] * 6 + [16]
    # pixel centres: (x + 0.5) * stride
    torch.testing.assert_close((points * strides)[[0, 5, 6]],
                               torch.tensor([[4., 4.], [20., 12.], [8., 8.]]))


def test_640_input_with_p2_has_34000_anchors():
    sizes = [(640 // s, 640 // s) for s in (4, 8, 16, 32)]
    points, _ = make_anchor_points(sizes, [4, 8, 16, 32])
    assert len(points) == 160**2 + 80**2 + 40**2 + 20**2 == 34000
