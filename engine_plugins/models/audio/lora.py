"""PEFT LoRA injection by full-name regex, checked against the request.

``target_modules`` is a mapping from a group name to a regex over full
module names (PEFT ``re.fullmatch``-es a string ``target_modules``), so
attention, the text FFN and the audio FFN are chosen separately.
``task_type=None`` gives a plain ``PeftModel`` whose ``forward`` passes
keyword arguments through untouched (a causal-LM ``task_type`` would add
``labels=`` and ``inputs_embeds=`` to every call).

Example:
    >>> lora = dict(r=16, lora_alpha=32, lora_dropout=0.05,
    ...             target_modules=dict(audio_ffn=AUDIO_FFN))
"""
import logging
import re
from typing import Dict, List, Mapping, Optional, Union

import torch.nn as nn
from mmengine.logging import print_log
from peft import LoraConfig, PeftModel, get_peft_model

ATTENTION = r'layers\.\d+\.self_attn\.(q|k|v|o)_proj'
TEXT_FFN = r'layers\.\d+\.mlp\.(gate|up|down)_proj'
AUDIO_FFN = r'layers\.\d+\.audio_mlp\.(gate|up|down)_proj'


def injected_modules(model: nn.Module) -> List[str]:
    """Names (relative to the wrapped model) of modules holding LoRA."""
    prefix = 'base_model.model.'
    return sorted(
        name[len(prefix):] if name.startswith(prefix) else name
        for name, module in model.named_modules()
        if hasattr(module, 'lora_A') and len(module.lora_A))


def inject_lora(model: nn.Module,
                target_modules: Union[Mapping[str, str], str],
                r: int = 16,
                lora_alpha: int = 32,
                lora_dropout: float = 0.05,
                modules_to_save: Optional[List[str]] = None) -> PeftModel:
    """Wrap ``model`` with LoRA adapters; only adapters stay trainable.

    Args:
        model: The network (before the optimizer is built).
        target_modules: ``{group: regex}`` (or one regex) over full module
            names, e.g. ``{'attention': ATTENTION}``; each group selects
            the ``nn.Linear`` modules whose name the regex fully matches.
        r, lora_alpha, lora_dropout: LoRA hyper-parameters.
        modules_to_save: Base modules that stay fully trainable (PEFT's
            ``modules_to_save``, matched by name suffix), e.g. the heads
            of a model trained from scratch. Default: none.

    Returns:
        The ``PeftModel``.

    Raises:
        ValueError: a group's regex matched no module (the message lists
            what the model has), or no group was given.
    """
    if isinstance(target_modules, str):
        target_modules = dict(target_modules=target_modules)
    if not target_modules:
        raise ValueError('lora.target_modules is empty')
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    groups: Dict[str, List[str]] = {
        group: [n for n in names if re.fullmatch(pattern, n)]
        for group, pattern in target_modules.items()
    }
    empty = [g for g, hits in groups.items() if not hits]
    if empty:
        raise ValueError(
            f'LoRA target group(s) {empty} '
            f'({[target_modules[g] for g in empty]}) match no Linear module '
            f'of {type(model).__name__}; its Linear modules are e.g. '
            f'{names[:12]}')
    wanted = sorted({n for hits in groups.values() for n in hits})
    # PEFT gets the exact Linear names the groups selected: a loose regex
    # (``mlp\..*``) would otherwise also hit activations and fail there.
    pattern = '|'.join(re.escape(n) for n in wanted)
    config = LoraConfig(
        task_type=None,
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=pattern,
        modules_to_save=list(modules_to_save) if modules_to_save else None)
    peft_model = get_peft_model(model, config)
    injected = injected_modules(peft_model)
    if injected != wanted:
        raise RuntimeError(
            f'PEFT injected LoRA into {len(injected)} modules, but the '
            f'regexes select {len(wanted)}: '
            f'{sorted(set(injected) ^ set(wanted))[:10]}')
    for group, hits in groups.items():
        print_log(
            f'LoRA r={r} alpha={lora_alpha} dropout={lora_dropout} '
            f'group {group!r} ({target_modules[group]}): {len(hits)} '
            f'modules: {hits}',
            logger='current',
            level=logging.INFO)
    return peft_model
