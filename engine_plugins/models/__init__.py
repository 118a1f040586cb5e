"""Task models: YOLO (PSALM), RT-DETR, audio LM, RIS DoA."""
from .audio import DualFFNAudioLM
from .ris import RISCovarianceNet
from .yolo import (PSALMYOLO, PSALMDualHead, PSALMFusion, YOLOv8CSPDarknet,
                   YOLOv8DetLoss, YOLOv8PAFPN)

__all__ = [
    'DualFFNAudioLM', 'PSALMDualHead', 'PSALMFusion', 'PSALMYOLO',
    'RISCovarianceNet', 'YOLOv8CSPDarknet', 'YOLOv8DetLoss', 'YOLOv8PAFPN'
]
