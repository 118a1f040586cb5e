"""The report: one self-contained HTML file (PNGs embedded) and the same in
Markdown (PNGs saved beside it), verdict first."""
import base64
import html
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from .analysis import Diagnosis

Figure = Tuple[str, bytes]


def _sentence(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith(('.', '!', '?')) else text + '.'


def _sections(diag: Diagnosis,
              checkpoint: Optional[Dict[str, Any]]) -> List[Tuple[str, Any]]:
    """``(heading, body)`` pairs; a body is a string, a list of bullet
    strings, or a list of ``(key, value)`` rows."""
    sections: List[Tuple[str, Any]] = []
    if diag.healthy:
        verdict = ['Healthy: no sanity check fired and the records show no '
                   'anomaly.']
    else:
        verdict = []
        for rank, cause in enumerate(diag.causes, 1):
            at = (f' at iteration {cause.first_iter}'
                  if cause.first_iter is not None else '')
            seen = f' ({cause.count}x)' if cause.count > 1 else ''
            verdict.append(
                f'**{rank}. {cause.title}** [{cause.cause}, {cause.severity}'
                f'{at}{seen}]. Evidence: ' +
                _sentence(' / '.join(cause.evidence)) +
                f' Look at: {_sentence(cause.where)} Fix: '
                f'{_sentence(cause.fix)}')
    sections.append(('Verdict', verdict))
    summary = diag.summary
    sections.append(('Run', [
        ('iterations completed', summary.get('iterations')),
        ('stopped by', summary.get('stopped_by') or 'nothing (finished or '
         'killed from outside)'),
        ('skipped steps', summary.get('skipped_steps')),
        ('checkpoints', summary.get('checkpoints')),
    ]))
    if diag.missing:
        sections.append(('Missing files', list(diag.missing)))
    sections.append(('Timeline', [f'iteration {it}: {text}'
                                  for it, text in diag.timeline] or
                     ['no anomaly recorded']))
    contract = [(k, v if isinstance(v, str) else json.dumps(v))
                for k, v in diag.contract.items()]
    sections.append(('Contract', contract or ['no contract recorded']))
    if checkpoint is not None:
        rows = [('checkpoint iteration', checkpoint.get('iter')),
                ('non-finite weights by module',
                 json.dumps(checkpoint.get('nonfinite')) or 'none')]
        if 'dead' in checkpoint:
            dead = checkpoint['dead']
            rows.append(
                (f"never updated since iteration "
                 f"{checkpoint.get('reference_iter')}",
                 '; '.join(f'{m} ({len(n)} tensors)'
                           for m, n in dead.items()) or 'none'))
        if 'ema' in checkpoint:
            rows.append(('EMA vs live weights (relative distance)',
                         ', '.join(f'{m} {d:.3g}'
                                   for m, d in checkpoint['ema'].items())))
        sections.append(('Checkpoint', rows))
    if diag.log_tail:
        sections.append(('Log (last lines)', diag.log_tail))
    return sections


def _html_inline(text: str) -> str:
    out = html.escape(str(text))
    # **bold** from the verdict lines
    while out.count('**') >= 2:
        out = out.replace('**', '<b>', 1).replace('**', '</b>', 1)
    return out


def write_markdown(path: str, title: str, diag: Diagnosis,
                   figures: List[Figure],
                   checkpoint: Optional[Dict[str, Any]] = None) -> str:
    """Write the Markdown report and its PNGs (``<stem>_files/``)."""
    stem = osp.splitext(path)[0]
    folder = f'{stem}_files'
    os.makedirs(folder, exist_ok=True)
    lines = [f'# {title}', '']
    for heading, body in _sections(diag, checkpoint):
        lines += [f'## {heading}', '']
        if isinstance(body, str):
            lines += [body, '']
            continue
        for item in body:
            if isinstance(item, tuple):
                lines.append(f'- **{item[0]}**: {item[1]}')
            else:
                lines.append(f'- {item}')
        lines.append('')
    if figures:
        lines += ['## Plots', '']
    for i, (caption, png) in enumerate(figures):
        name = f'figure_{i}.png'
        with open(osp.join(folder, name), 'wb') as f:
            f.write(png)
        lines += [f'### {caption}', '',
                  f'![{caption}]({osp.basename(folder)}/{name})', '']
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    return path


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;
color:#222;line-height:1.4}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.healthy{background:#e7f6e7;padding:.6em;border-left:5px solid #3a3}
.sick{background:#fdecea;padding:.6em;border-left:5px solid #c33}
td{padding:.15em .6em;vertical-align:top}td:first-child{font-weight:600}
img{max-width:100%;border:1px solid #eee}
"""


def write_html(path: str, title: str, diag: Diagnosis,
               figures: List[Figure],
               checkpoint: Optional[Dict[str, Any]] = None) -> str:
    """Write the self-contained HTML report."""
    parts = [f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>'
             f'{html.escape(title)}</title><style>{_STYLE}</style></head>'
             f'<body><h1>{html.escape(title)}</h1>']
    for heading, body in _sections(diag, checkpoint):
        parts.append(f'<h2>{html.escape(heading)}</h2>')
        if heading == 'Verdict':
            css = 'healthy' if diag.healthy else 'sick'
            parts.append(f'<div class="{css}">' + ''.join(
                f'<p>{_html_inline(item)}</p>' for item in body) + '</div>')
            continue
        if body and isinstance(body[0], tuple):
            parts.append('<table>' + ''.join(
                f'<tr><td>{_html_inline(k)}</td><td>{_html_inline(v)}</td>'
                '</tr>' for k, v in body) + '</table>')
        else:
            parts.append('<ul>' + ''.join(
                f'<li>{_html_inline(item)}</li>' for item in body) + '</ul>')
    if figures:
        parts.append('<h2>Plots</h2>')
    for caption, png in figures:
        data = base64.b64encode(png).decode('ascii')
        parts.append(f'<h3>{html.escape(caption)}</h3><img alt="'
                     f'{html.escape(caption)}" src="data:image/png;base64,'
                     f'{data}">')
    parts.append('</body></html>')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(''.join(parts))
    return path
