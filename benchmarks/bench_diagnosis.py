"""How well the sanity engine diagnoses broken training setups.

Runs every case of ``benchmarks/mutations/catalog_tasks.py`` through
``tools/train.py`` in its own process, as a user would: a config that
inherits a CPU quick start and adds one bug (a config line, a hook, a
subclass or a transform loaded with ``custom_imports``). Clean runs use
the same bases with realistic variants and no bug.

For each mutant: caught or not, the iteration of the first finding
against the first iteration the bug can show, whether the finding's cause
is one the mutation's category accepts, and the exit code. For clean
runs: any error or warning is a false alarm. Prints the table and::

    detected at the first iteration it can show   D / N
    with the correct cause                        C / N
    false alarms on clean runs                    F / M

Usage::

    python benchmarks/bench_diagnosis.py
        [--set main|heldout|heldout2|heldout3|all] [--only yolo] [--list]
        [--out work_dirs/bench_diagnosis] [--timeout 900]

Results also go to ``<out>/results.json``. Runs one case at a time.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmengine.config import Config  # noqa: E402

from benchmarks.mutations.catalog import Case, all_cases  # noqa: E402


def write_config(case: Case, folder: str) -> str:
    base = osp.join(REPO, case.base or osp.join(
        'benchmarks', 'mutations', 'bases', f'{case.task}.py'))
    lines = [f'_base_ = [{base!r}]']
    if case.imports:
        # custom_imports replaces the base's list: keep its modules.
        inherited = Config.fromfile(base).get('custom_imports', {})
        imports = list(inherited.get('imports', [])) + list(case.imports)
        lines.append(f'custom_imports = dict(imports={imports!r}, '
                     'allow_failed_imports=False)')
    if case.config:
        lines.append(case.config)
    path = osp.join(folder, 'config.py')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def findings(work_dir: str) -> List[Dict]:
    events = []
    for pattern in ('sanity.jsonl', 'sanity.rank*.jsonl'):
        for path in sorted(glob.glob(osp.join(work_dir, '*', pattern))):
            with open(path) as f:
                events += [json.loads(line) for line in f if line.strip()]
    return [e for e in events if e.get('kind') in ('error', 'warning')]


def ensure_audio_demo_data() -> None:
    """Write the audio base's manifest (``data/audio_demo``, the defaults
    of tools/make_audio_demo_data.py) when a fresh clone lacks it; the
    shapes data of the detection bases write themselves."""
    from engine_plugins.datasets.audio.demo_data import make_audio_demo_data
    out_dir = osp.join(REPO, 'data', 'audio_demo')
    if not osp.isfile(osp.join(out_dir, 'train.jsonl')):
        make_audio_demo_data(out_dir)


def run_case(case: Case, out: str, timeout: int) -> Dict:
    if case.task == 'audio':
        ensure_audio_demo_data()
    folder = osp.join(out, case.name.replace('/', '__'))
    os.makedirs(folder, exist_ok=True)
    config = write_config(case, folder)
    work_dir = osp.join(folder, 'work')
    # A reused --out folder holds earlier runs' event logs, which
    # findings() would read first.
    shutil.rmtree(work_dir, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        'OMP_NUM_THREADS', '2'))
    start = time.time()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
                work_dir, '--cfg-options', f'train_cfg.max_iters={case.iters}'
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout)
        code, tail = proc.returncode, (proc.stdout + proc.stderr)[-4000:]
    except subprocess.TimeoutExpired:
        code, tail = 'timeout', ''
    with open(osp.join(folder, 'output.txt'), 'w') as f:
        f.write(tail)
    found = findings(work_dir)
    first = found[0] if found else None
    result = dict(
        name=case.name,
        category=case.category,
        first_visible=case.first,
        exit=code,
        seconds=round(time.time() - start, 1),
        caught=first is not None,
        iteration=first['iter'] if first else None,
        cause=first['cause'] if first else None,
        kind=first['kind'] if first else None,
        message=first['message'][:300] if first else None)
    if case.category == 'clean':
        result['false_alarm'] = first is not None or code != 0
        if code != 0 and first is None:
            result['message'] = tail[-300:]
    else:
        result['at_first'] = (first is not None
                              and first['iter'] <= case.first)
        result['cause_ok'] = first is not None and first['cause'] in \
            case.accepted
    return result


def _rate(part: int, whole: int) -> str:
    return f'{part} / {whole} ({100 * part / max(whole, 1):.1f}%)'


def report(results: List[Dict]) -> str:
    rows = [f'{"case":<44} {"category":<28} {"vis":>3} {"at":>4} '
            f'{"cause":<20} {"ok":<3} {"exit":>5}']
    for r in results:
        ok = ('FA' if r.get('false_alarm') else 'ok') \
            if r['category'] == 'clean' else (
                ('yes' if r['cause_ok'] else 'NO') if r['caught'] else '-')
        at = '-' if r['iteration'] is None else str(r['iteration'])
        rows.append(f'{r["name"]:<44} {r["category"][:28]:<28} '
                    f'{r["first_visible"]:>3} {at:>4} '
                    f'{str(r["cause"])[:20]:<20} {ok:<3} {str(r["exit"]):>5}')
    mutants = [r for r in results if r['category'] != 'clean']
    clean = [r for r in results if r['category'] == 'clean']
    rows += ['', f'{"category":<32} {"mutants":>7} {"at first":>9} '
             f'{"cause":>6}']
    for category in dict.fromkeys(r['category'] for r in mutants):
        part = [r for r in mutants if r['category'] == category]
        rows.append(f'{category:<32} {len(part):>7} '
                    f'{sum(r["at_first"] for r in part):>9} '
                    f'{sum(r["cause_ok"] for r in part):>6}')
    rows += [
        '',
        'detected at the first iteration it can show  ' +
        _rate(sum(r['at_first'] for r in mutants), len(mutants)),
        'detected at all                              ' +
        _rate(sum(r['caught'] for r in mutants), len(mutants)),
        'with the correct cause                       ' +
        _rate(sum(r['cause_ok'] for r in mutants), len(mutants)),
        'stopped with a non-zero exit code            ' +
        _rate(sum(r['exit'] not in (0, 'timeout') for r in mutants),
              len(mutants)),
        'false alarms on clean runs                   ' +
        _rate(sum(r['false_alarm'] for r in clean), len(clean)),
    ]
    return '\n'.join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', default='', help='substring of case names')
    parser.add_argument(
        '--set',
        default='main',
        choices=('main', 'heldout', 'heldout2', 'heldout3', 'all'),
        help='main: mutants written with the checks, and the clean runs; '
        'heldout, heldout2, heldout3: mutants written without reading the '
        'checks, each by a different author')
    parser.add_argument('--list', action='store_true')
    parser.add_argument(
        '--out', default=osp.join(REPO, 'work_dirs', 'bench_diagnosis'))
    parser.add_argument('--timeout', type=int, default=900)
    args = parser.parse_args()
    cases = [c for c in all_cases(args.set) if args.only in c.name]
    if args.list:
        for c in cases:
            print(f'{c.name:<44} {c.category:<30} first={c.first}')
        print(f'{len(cases)} cases, '
              f'{sum(c.category != "clean" for c in cases)} mutants')
        return
    import torch
    print(f'{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "2")}, '
          f'python {platform.python_version()}, torch {torch.__version__}')
    results = []
    for i, case in enumerate(cases, 1):
        result = run_case(case, args.out, args.timeout)
        results.append(result)
        print(f'[{i}/{len(cases)}] {case.name}: exit {result["exit"]}, '
              f'first finding {result["cause"]} at {result["iteration"]} '
              f'({result["seconds"]} s)', flush=True)
        with open(osp.join(args.out, 'results.json'), 'w') as f:
            json.dump(results, f, indent=1)
    print(report(results))


if __name__ == '__main__':
    main()
