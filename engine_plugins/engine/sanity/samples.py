"""How the sanity engine names a data sample in its messages."""
from typing import Any


def describe_sample(sample: Any, index: int) -> str:
    """The image file of a data sample (with its id), else its index."""
    meta = getattr(sample, 'metainfo', None) or {}
    path = meta.get('img_path')
    if not path:
        return f'batch item {index}'
    img_id = meta.get('img_id')
    return path if img_id is None else f'{path} (img_id {img_id})'
