from .psalm_dual_head import PSALMDualHead
from .psalm_fusion import PSALMFusion
from .psalm_yolo import PSALMYOLO
from .yolov8_csp_darknet import YOLOv8CSPDarknet
from .yolov8_det_loss import YOLOv8DetLoss
from .yolov8_pafpn import YOLOv8PAFPN

__all__ = [
    'PSALMDualHead', 'PSALMFusion', 'PSALMYOLO', 'YOLOv8CSPDarknet',
    'YOLOv8DetLoss', 'YOLOv8PAFPN'
]
