"""Task models: YOLO (PSALM), RT-DETR, audio LM, RIS DoA."""
from .audio import DualFFNAudioLM
from .ris import RISCovarianceNet
from .rtdetr import (RTDETR, HybridEncoder, RTDETRCriterion,
                     RTDETRDataPreprocessor, RTDETRDecoder,
                     RTDETRVarifocalLoss)
from .yolo import (PSALMYOLO, PSALMDualHead, PSALMFusion, YOLOv8CSPDarknet,
                   YOLOv8DetLoss, YOLOv8PAFPN)

__all__ = [
    'DualFFNAudioLM', 'HybridEncoder', 'PSALMDualHead', 'PSALMFusion',
    'PSALMYOLO', 'RISCovarianceNet', 'RTDETR', 'RTDETRCriterion',
    'RTDETRDataPreprocessor', 'RTDETRDecoder', 'RTDETRVarifocalLoss',
    'YOLOv8CSPDarknet', 'YOLOv8DetLoss', 'YOLOv8PAFPN'
]
