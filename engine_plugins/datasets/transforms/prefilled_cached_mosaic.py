"""Mosaic from a cache of recent images that always returns a mosaic."""
import copy

from mmdet.datasets.transforms import CachedMosaic

from engine_plugins.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PrefilledCachedMosaic(CachedMosaic):
    """mmdet's ``CachedMosaic`` whose output is always a ``2 x img_scale``
    mosaic.

    mmdet's version returns the input image unchanged until its cache holds
    five images, i.e. for the first four images each data worker sees. A
    YOLO pipeline follows the mosaic with ``RandomAffine(border=-img_scale
    / 2)``, which expects the 2x canvas: on a raw image it computes a
    negative output size, OpenCV silently keeps the input size, and those
    samples reach the model at the wrong size with shifted content. Here
    the cache is filled with copies of the first image instead, so every
    output has the same size (the first mosaics repeat that image).

    Args:
        **kwargs: ``CachedMosaic`` arguments (``img_scale``, ``pad_val``,
            ``max_cached_images``, ``random_pop``); ``prob`` must be 1.

    Example:
        >>> dict(type='PrefilledCachedMosaic', img_scale=(640, 640),
        ...      pad_val=114.0, max_cached_images=40)
    """

    def __init__(self, **kwargs) -> None:
        if kwargs.get('prob', 1.0) != 1.0:
            raise ValueError(
                'PrefilledCachedMosaic: prob must be 1.0 (every output is a '
                'mosaic, so the output size is fixed); got '
                f"{kwargs['prob']}")
        super().__init__(**kwargs)

    def transform(self, results: dict) -> dict:
        while len(self.results_cache) < 4:
            self.results_cache.append(copy.deepcopy(results))
        return super().transform(results)
