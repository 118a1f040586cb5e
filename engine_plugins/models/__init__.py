"""Task models: YOLO (PSALM), RT-DETR, audio LM, RIS DoA."""
from .audio import DualFFNAudioLM
from .yolo import (PSALMYOLO, PSALMDualHead, PSALMFusion, YOLOv8CSPDarknet,
                   YOLOv8DetLoss, YOLOv8PAFPN)

__all__ = [
    'DualFFNAudioLM', 'PSALMDualHead', 'PSALMFusion', 'PSALMYOLO',
    'YOLOv8CSPDarknet', 'YOLOv8DetLoss', 'YOLOv8PAFPN'
]
