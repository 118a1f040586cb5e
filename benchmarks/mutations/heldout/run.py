"""Run the held-out mutants through ``benchmarks/bench_diagnosis.py``'s
runner, one at a time, and print its table.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/mutations/heldout/run.py [FILTER]
        [--out /tmp/heldout_runs] [--timeout 600] [--list] [--report]

Each case's result is kept in ``<out>/<case>/result.json``; ``--report``
prints the table of the selected cases from those files without running
anything (cases not run yet are left out).
"""
import argparse
import json
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
sys.path.insert(0, REPO)

from benchmarks.bench_diagnosis import report, run_case  # noqa: E402
from benchmarks.mutations.catalog import CATEGORIES  # noqa: E402
from benchmarks.mutations.heldout.cases import cases  # noqa: E402


def result_path(out: str, name: str) -> str:
    return osp.join(out, name.replace('/', '__'), 'result.json')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('filter', nargs='?', default='',
                        help='substring of case names')
    parser.add_argument('--out', default='/tmp/heldout_runs')
    parser.add_argument('--timeout', type=int, default=600)
    parser.add_argument('--list', action='store_true')
    parser.add_argument('--report', action='store_true',
                        help='print the table from saved results only')
    args = parser.parse_args()
    selected = [c for c in cases() if args.filter in c.name]
    names = [c.name for c in cases()]
    assert len(names) == len(set(names)), 'duplicate case names'
    for c in selected:
        assert c.category in CATEGORIES and c.category != 'clean', c.name
    if args.list:
        for c in selected:
            print(f'{c.name:<52} {c.category:<30} first={c.first} '
                  f'iters={c.iters}')
        print(f'{len(selected)} cases')
        return
    if args.report:
        results = []
        for c in selected:
            path = result_path(args.out, c.name)
            if osp.exists(path):
                with open(path) as f:
                    results.append(json.load(f))
        print(report(results))
        return
    os.makedirs(args.out, exist_ok=True)
    results = []
    for i, case in enumerate(selected, 1):
        result = run_case(case, args.out, args.timeout)
        results.append(result)
        print(f'[{i}/{len(selected)}] {case.name}: exit {result["exit"]}, '
              f'first finding {result["cause"]} at {result["iteration"]} '
              f'({result["seconds"]} s)', flush=True)
        with open(result_path(args.out, case.name), 'w') as f:
            json.dump(result, f, indent=1)
    print(report(results))


if __name__ == '__main__':
    main()
