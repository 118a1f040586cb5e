"""Text and audio losses of the DualFFN audio LM, computed in fp32."""
from typing import Dict

import torch
import torch.nn.functional as F

from engine_plugins.engine.fp32_region import fp32_region
from .delay_pattern import STREAM_BOS
from .merge import IGNORE_INDEX


def _masked_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CE over targets != -100; a connected zero when there are none.

    ``logits.sum() * 0`` keeps the loss in the graph (a fresh
    ``torch.tensor(0., requires_grad=True)`` would be a disconnected leaf).
    """
    valid = target != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0
    return F.cross_entropy(logits[valid].float(), target[valid])


@fp32_region
def audio_lm_losses(logits: torch.Tensor, expanded_labels: torch.Tensor,
                    audio_logits: torch.Tensor,
                    label_audio_ids: torch.Tensor,
                    stream_bos: int = STREAM_BOS) -> Dict[str, torch.Tensor]:
    """Text CE on shifted logits and the mean of per-codebook audio CEs.

    Args:
        logits: ``(B, L, V)`` text logits on the expanded sequence.
        expanded_labels: ``(B, L)`` from the model; position ``t`` is
            predicted by the logits at ``t - 1``.
        audio_logits: ``(N, K, C)`` at audio-out positions.
        label_audio_ids: ``(K, N)`` next-frame targets; stream-BOS targets
            (the delay pattern's deterministic fill) are ignored. The
            tensor is not modified.

    Returns:
        ``loss_text``, ``loss_audio`` and, log only (no ``loss`` in the
        name, so mmengine's ``parse_losses`` does not add them),
        ``ce_audio_cb{k}`` per codebook (detached).
    """
    if label_audio_ids.shape[::-1] != audio_logits.shape[:2]:
        raise ValueError(
            f'label_audio_ids {tuple(label_audio_ids.shape)} does not '
            f'match audio_logits {tuple(audio_logits.shape)}: expected '
            '(K, N) against (N, K, C)')
    loss_text = _masked_ce(logits[:, :-1].flatten(0, 1),
                           expanded_labels[:, 1:].flatten())
    target = label_audio_ids.t().masked_fill(label_audio_ids.t() == stream_bos,
                                             IGNORE_INDEX)
    per_codebook = [
        _masked_ce(audio_logits[:, k], target[:, k])
        for k in range(audio_logits.shape[1])
    ]
    if per_codebook:
        loss_audio = torch.stack(per_codebook).mean()
    else:
        loss_audio = audio_logits.sum() * 0
    losses = dict(loss_text=loss_text, loss_audio=loss_audio)
    for k, value in enumerate(per_codebook):
        losses[f'ce_audio_cb{k}'] = value.detach()
    return losses
