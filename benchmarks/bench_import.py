#!/usr/bin/env python
"""How long ``import music_classification`` takes, against ``import chainer``.

Each import runs in a fresh interpreter (--repeats times; the median is
printed), and the modules it loaded are checked: the package's import must
load no CUDA library, no Chainer, CuPy, librosa, numba or matplotlib (they
load on first use of a name that needs them).

    python benchmarks/bench_import.py [--repeats 7]
"""

import argparse
import json
import statistics
import subprocess
import sys

HEAVY = ('chainer', 'cupy', 'librosa', 'numba', 'matplotlib', 'numpy',
         'scipy')

CODE = '''
import sys, time
t = time.perf_counter()
import {module}
seconds = time.perf_counter() - t
maps = open('/proc/self/maps').read()
print(__import__('json').dumps({{
    'seconds': seconds,
    'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy})),
    'cuda': sorted({{line.split('/')[-1] for line in maps.splitlines()
                     if '/nvidia/' in line or 'libcuda' in line}})}}))
'''


def measure(module, repeats):
    runs = [json.loads(subprocess.run(
        [sys.executable, '-c', CODE.format(module=module, heavy=HEAVY)],
        capture_output=True, text=True, check=True).stdout)
        for _ in range(repeats)]
    return statistics.median(r['seconds'] for r in runs), runs[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', '-r', type=int, default=7,
                        help='fresh interpreters per import')
    args = parser.parse_args()
    package, info = measure('music_classification', args.repeats)
    chainer, _ = measure('chainer', args.repeats)
    print('import music_classification: {:.3f} s (median of {})'.format(
        package, args.repeats))
    print('import chainer:              {:.3f} s'.format(chainer))
    print('ratio: the package imports in {:.1%} of Chainer\'s time'.format(
        package / chainer))
    print('heavy modules loaded by the package: {}'.format(
        ', '.join(info['heavy']) or 'none'))
    print('CUDA libraries loaded by the package: {}'.format(
        ', '.join(info['cuda']) or 'none'))


if __name__ == '__main__':
    main()
