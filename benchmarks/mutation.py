#!/usr/bin/env python
"""Mutation score of the pure modules: how many planted bugs the tests catch.

Runs mutmut 3 (the ``mutation`` extra) with the ``[mutmut]`` section of
``setup.cfg``: every mutant of ``features``, ``augment``, ``dataset``,
``predict``, ``evaluation``, ``serialization``, ``net`` and ``training``
(an operator, a constant, an argument or a string changed; a line
removed), each against the fast tests of its own module that reach its
function (``OWN_TESTS`` in ``tests/conftest.py``). Then it
prints, per module, the mutants, how many the tests killed, and the score.
A rerun only retests what changed; ``--report`` prints the last results.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python -m benchmarks.mutation [--report] [--survivors]
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time

#: mutmut's verdicts that mean a test caught the mutant.
CAUGHT = ('killed', 'timeout', 'segfault', 'caught by type check')


def mutmut():
    """The mutmut program next to this Python."""
    path = os.path.join(os.path.dirname(sys.executable), 'mutmut')
    if not os.path.exists(path):
        sys.exit("mutation: no {} (pip install -e '.[mutation]')".format(
            path))
    return path


def run(log):
    """``mutmut run``, its spinner and progress into ``log``."""
    start = time.perf_counter()
    with open(log, 'w') as f:
        result = subprocess.run([mutmut(), 'run'], stdout=f,
                                stderr=subprocess.STDOUT)
    return result.returncode, time.perf_counter() - start


def results():
    """mutant name -> mutmut's verdict, for every mutant."""
    out = subprocess.run([mutmut(), 'results', '--all', 'true'],
                         capture_output=True, text=True, check=True).stdout
    verdicts = {}
    for line in out.splitlines():
        match = re.match(r'\s*(\S+): (.+)$', line)
        if match:
            verdicts[match.group(1)] = match.group(2).strip()
    return verdicts


def module_of(name):
    # music_classification.features.x_power__mutmut_3 -> features
    return name.split('.')[1]


def table(verdicts):
    """Markdown table: per module and in all.

    The score is the share of the tested mutants that a test killed; a
    pass stopped early leaves mutants "not checked" (a rerun goes on).
    """
    by_module = collections.defaultdict(collections.Counter)
    for name, verdict in verdicts.items():
        by_module[module_of(name)][verdict] += 1
        by_module['all'][verdict] += 1
    rows = ['| module | mutants | tested | killed | survived | no test '
            'reaches it | killed of tested |',
            '| --- | --- | --- | --- | --- | --- | --- |']
    for module in sorted(by_module, key=lambda m: (m == 'all', m)):
        counts = by_module[module]
        total = sum(counts.values())
        tested = total - counts['not checked']
        caught = sum(counts[v] for v in CAUGHT)
        rows.append('| {} | {} | {} | {} | {} | {} | {} |'.format(
            module, total, tested, caught, counts['survived'],
            counts['no tests'],
            '{:.1%}'.format(caught / tested) if tested else '-'))
    return '\n'.join(rows)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('--report', action='store_true',
                        help='print the last run\'s results; run nothing')
    parser.add_argument('--survivors', action='store_true',
                        help='list the mutants no test killed')
    parser.add_argument('--fresh', action='store_true',
                        help='remove mutants/ first: test every mutant again')
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    if args.fresh:
        shutil.rmtree('mutants', ignore_errors=True)
    if not args.report:
        code, seconds = run('mutants.log')
        print('mutmut run: exit {} in {:.0f} s on {} CPUs (log: mutants.log)'
              .format(code, seconds, os.cpu_count()))
    verdicts = results()
    if not verdicts:
        sys.exit('mutation: no results; run without --report first')
    print(table(verdicts))
    if args.survivors:
        for name, verdict in sorted(verdicts.items()):
            if verdict not in CAUGHT:
                print('{}: {}'.format(name, verdict))


if __name__ == '__main__':
    main()
