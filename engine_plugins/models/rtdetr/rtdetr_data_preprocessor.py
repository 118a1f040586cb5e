"""mmdet's detection preprocessor plus RT-DETR's one box conversion."""
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures.bbox import get_box_tensor

from engine_plugins.registry import MODELS
from engine_plugins.structures.box_frames import \
    pixel_xyxy_to_normalized_cxcywh

#: ``metainfo`` key recording that ``gt_instances.bboxes`` were converted.
BOX_FORMAT_KEY = 'gt_box_format'


@MODELS.register_module()
class RTDETRDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that, in training, converts the gt boxes once
    from pixel xyxy to cxcywh normalized by the padded batch tensor.

    The conversion runs after padding and batch augments (e.g.
    ``BatchSyncRandomResize``), so it uses the frame the network sees.
    Each converted sample gets ``metainfo['gt_box_format'] =
    'cxcywh_normalized'``; converting twice is refused. Validation and test
    batches are left in pixel xyxy: predictions are mapped back to pixels
    by the detector.

    Args:
        **kwargs: ``DetDataPreprocessor`` arguments.

    Example:
        >>> data_preprocessor = dict(
        ...     type='RTDETRDataPreprocessor',
        ...     mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=True,
        ...     pad_size_divisor=32)
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data=data, training=training)
        samples = data.get('data_samples')
        if training and samples is not None:
            hw = tuple(data['inputs'].shape[-2:])
            for sample in samples:
                self._convert(sample, hw)
        return data

    @staticmethod
    def _convert(sample, hw) -> None:
        gt = getattr(sample, 'gt_instances', None)
        if gt is None or 'bboxes' not in gt:
            return
        if sample.metainfo.get(BOX_FORMAT_KEY) == 'cxcywh_normalized':
            raise RuntimeError(
                f'{sample.metainfo.get("img_path", "a sample")}: gt boxes '
                'were already converted to normalized cxcywh; the batch '
                'went through RTDETRDataPreprocessor twice')
        boxes = get_box_tensor(gt.bboxes)
        gt.bboxes = pixel_xyxy_to_normalized_cxcywh(boxes.float(), hw)
        sample.set_metainfo({BOX_FORMAT_KEY: 'cxcywh_normalized'})
