"""Training-step throughput and peak memory of the DualFFN audio LM:
LoRA vs full fine-tuning, for the tiny and the mid-size preset.

A step is forward, loss, backward and an AdamW step over the trainable
parameters; tokens are the real positions of the expanded sequence (text
+ audio frames). Timing: the LoRA and the full model of a size are built
in this process and stepped alternately, so machine noise hits both alike
(median of ``--iters`` steps after 2 warm-up steps). Memory: each
(size, mode) runs 3 steps in its own child process, whose peak resident
memory (``resource.getrusage`` ``ru_maxrss``; on CUDA the peak
allocation) belongs to that configuration alone. Prints one row per
configuration and the LoRA / full ratios. Usage::

    python benchmarks/bench_audio_lora.py [--sizes tiny mid] [--iters 10]
        [--batch 4] [--device cpu|cuda]
"""
import argparse
import multiprocessing as mp
import os.path as osp
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

LORA = dict(
    r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    target_modules=dict(
        attention=r'layers\.\d+\.self_attn\.(q|k|v|o)_proj',
        text_ffn=r'layers\.\d+\.mlp\.(gate|up|down)_proj',
        audio_ffn=r'layers\.\d+\.audio_mlp\.(gate|up|down)_proj'))


def _rss_mib() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    """Resident memory now (Linux); the peak where /proc is missing."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return _rss_mib()


def _setup(size: str, mode: str, batch_size: int, device: str):
    import torch

    from engine_plugins.datasets.audio import (AudioChatDataset,
                                               audio_lm_collate,
                                               make_audio_demo_data)
    from engine_plugins.models.audio import DualFFNAudioLM
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = AudioChatDataset(
            make_audio_demo_data(tmp, num_samples=batch_size, min_len=6,
                                 max_len=8))
        batch = audio_lm_collate([dataset[i] for i in range(batch_size)])
    batch = {k: v.to(device) for k, v in batch.items()}
    model = DualFFNAudioLM(
        260, 259, size=size, lora=LORA if mode == 'lora' else None)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4)
    with torch.no_grad():
        tokens = int(model(**batch)['attention_mask'].sum())
    info = dict(
        size=size,
        mode=mode,
        params=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in params),
        tokens=tokens)
    return model, optim, batch, info


def _step(model, optim, batch, device: str) -> float:
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    losses = model(**batch, mode='loss')
    optim.zero_grad()
    (losses['loss_text'] + losses['loss_audio']).backward()
    optim.step()
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory(size: str, mode: str, batch_size: int, device: str,
                queue) -> None:
    """Child process: peak memory over 3 steps, and the peak minus the
    memory held after building the model and the batch."""
    import torch
    model, optim, batch, _ = _setup(size, mode, batch_size, device)
    built = _current_rss_mib()
    if device == 'cuda':
        built = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        _step(model, optim, batch, device)
    peak = (torch.cuda.max_memory_allocated() / 2**20
            if device == 'cuda' else _rss_mib())
    queue.put((peak, peak - built))


def timed(size: str, iters: int, batch_size: int, device: str) -> list:
    """Median step time of the full and the LoRA model, interleaved."""
    runs = [_setup(size, m, batch_size, device) for m in ('full', 'lora')]
    times = [[], []]
    for step in range(iters + 2):
        for i, (model, optim, batch, _) in enumerate(runs):
            t = _step(model, optim, batch, device)
            if step >= 2:
                times[i].append(t)
    rows = []
    for (_, _, _, info), t in zip(runs, times):
        rows.append(dict(info, step_s=statistics.median(t)))
    return rows


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', nargs='+', default=['tiny', 'mid'])
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    ctx = mp.get_context('spawn')
    # Memory first: Linux keeps a parent's peak RSS in a child spawned
    # after it (ru_maxrss survives fork + exec), so no model may exist in
    # this process yet.
    memory = {}
    for size in args.sizes:
        for mode in ('full', 'lora'):
            queue = ctx.Queue()
            proc = ctx.Process(
                target=peak_memory,
                args=(size, mode, args.batch, args.device, queue))
            proc.start()
            memory[size, mode] = queue.get()
            proc.join()
    rows = []
    for size in args.sizes:
        for row in timed(size, args.iters, args.batch, args.device):
            row['peak_mib'], row['extra_mib'] = memory[size, row['mode']]
            rows.append(row)
    from benchmarks.machine import describe
    print(describe(args.device, ('torch', 'transformers', 'peft')))
    print(f'{"size":<6}{"mode":<6}{"params":>12}{"trainable":>12}'
          f'{"tokens":>8}{"step s":>9}{"tokens/s":>10}{"peak MiB":>10}'
          f'{"+steps MiB":>11}')
    for r in rows:
        extra = r['extra_mib']
        print(f'{r["size"]:<6}{r["mode"]:<6}{r["params"]:>12,}'
              f'{r["trainable"]:>12,}{r["tokens"]:>8}{r["step_s"]:>9.3f}'
              f'{r["tokens"] / r["step_s"]:>10.0f}{r["peak_mib"]:>10.0f}'
              f'{extra:>11.0f}')
    for size in args.sizes:
        full, lora = (next(r for r in rows
                           if r['size'] == size and r['mode'] == m)
                      for m in ('full', 'lora'))
        print(f'{size}: LoRA/full tokens/s = '
              f'{full["step_s"] / lora["step_s"]:.2f}x, peak memory = '
              f'{lora["peak_mib"] / full["peak_mib"]:.2f}x, trainable '
              f'params = {lora["trainable"] / full["trainable"]:.4f}x')
    return rows


if __name__ == '__main__':
    main()
