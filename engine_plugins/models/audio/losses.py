"""Text and audio losses of the DualFFN audio LM, computed in fp32."""
from typing import Dict

import torch
import torch.nn.functional as F

from engine_plugins.engine.fp32_region import fp32_region
from engine_plugins.engine.sanity.health import HealthStat
from engine_plugins.structures import IGNORE_INDEX, STREAM_BOS

SUPERVISED = HealthStat(
    'health/audio_lm_supervised',
    low=1.0,
    cause='label_mask',
    meaning='the batch has no supervised target at all (every text label '
    'and audio label is ignored): check the label masking and that '
    'label_ids / label_audio_ids reach the model')
TEXT_TOKENS = HealthStat(
    'health/audio_lm_text_tokens', low=0.0, targets_of='loss_text')
AUDIO_FRAMES = HealthStat(
    'health/audio_lm_audio_frames', low=0.0, targets_of='loss_audio')


def _masked_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE over targets != -100, averaged over dim 0: ``logits (N, C, *)``
    and ``target (N, *)`` give ``(*)``. Where there is no valid target the
    result is a zero still connected to ``logits`` (never a fresh
    ``requires_grad`` leaf), with no host sync to find out."""
    ce = F.cross_entropy(
        logits.float(), target, ignore_index=IGNORE_INDEX, reduction='none')
    count = (target != IGNORE_INDEX).sum(0).clamp(min=1)
    return ce.sum(0) / count


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
    text_target = expanded_labels[:, 1:].flatten()
    loss_text = _masked_ce(logits[:, :-1].flatten(0, 1), text_target)
    target = label_audio_ids.t().masked_fill(label_audio_ids.t() == stream_bos,
                                             IGNORE_INDEX)
    text_tokens = (text_target != IGNORE_INDEX).sum()
    frames = (target != IGNORE_INDEX).any(-1).sum()
    TEXT_TOKENS.publish(text_tokens)
    AUDIO_FRAMES.publish(frames)
    SUPERVISED.publish(text_tokens + frames)
    # One CE over all codebooks: (N, C, K) logits against (N, K) targets.
    per_codebook = _masked_ce(audio_logits.transpose(1, 2), target)
    loss_audio = per_codebook.mean()
    losses = dict(loss_text=loss_text, loss_audio=loss_audio)
    for k, value in enumerate(per_codebook.detach().unbind()):
        losses[f'ce_audio_cb{k}'] = value
    return losses
