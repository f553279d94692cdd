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
``--doc`` brings docs/mutation_survivors.md up to date: each survivor stays
in the group of reasons it was listed under (same mutant, same change);
killed mutants leave it; new survivors go to its last group, the ones
still to kill or to explain.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python -m benchmarks.mutation [--report] [--survivors] [--doc]
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


#: The last group of the survivors' list: neither killed nor explained.
OPEN = 'Not yet killed or shown equivalent: the next tests to write'
DOC = os.path.join('docs', 'mutation_survivors.md')


def change_of(name):
    """The mutant's changed line, as the survivors' list shows it."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    added = [line[1:].strip() for line in
             get_diff_for_mutant(name).splitlines()
             if line.startswith('+') and not line.startswith('+++')]
    if not added:
        return '(a line removed)'
    if added[0].startswith('def '):
        return '(a change of the signature or defaults)'
    return added[0]


def read_doc(path):
    """``(preamble, [(reason, {mutant: change})])`` of the survivors' list."""
    with open(path) as f:
        text = f.read()
    preamble, *sections = re.split(r'^## ', text, flags=re.M)
    groups = []
    for section in sections:
        title, _, body = section.partition('\n')
        rows = re.findall(r'^\| `([^`]+)` \| `(.*)` \|$', body, flags=re.M)
        groups.append((re.sub(r' \(\d+\)$', '', title.strip()),
                       dict(rows)))
    return preamble, groups


#: The survivors' list's closing line of its preamble, kept up to date.
STATE = re.compile(r'\n\*\*Now:\*\*.*\Z', re.S)


def update_doc(path, survivors, unchecked=()):
    """Rewrite the survivors' list for ``survivors`` (mutant -> change).

    A listed mutant that ``unchecked`` names (not tested again since) keeps
    its place. Returns ``(explained, open)``: how many are in a group of
    reasons, and how many in the last group.
    """
    preamble, groups = read_doc(path)
    placed, out = set(), []
    for reason, rows in groups:
        if reason == OPEN:
            continue
        kept = {m: c for m, c in rows.items()
                if survivors.get(m) == c or m in unchecked}
        placed.update(kept)
        if kept:
            out.append((reason, kept))
    explained = len(placed)
    rest = {m: c for m, c in survivors.items() if m not in placed}
    if rest:
        out.append((OPEN, rest))
    preamble = STATE.sub('', preamble.rstrip('\n')) + (
        '\n\n**Now:** {} survivors, {} of them not yet explained.'.format(
            explained + len(rest), len(rest)))
    lines = [preamble, '']
    for reason, rows in out:
        lines += ['## {} ({})'.format(reason, len(rows)), '',
                  '| mutant | the change |', '| --- | --- |']
        lines += ['| `{}` | `{}` |'.format(m, rows[m]) for m in sorted(rows)]
        lines.append('')
    from music_classification.serialization import atomic_write

    def write(tmp):
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines))
    atomic_write(path, write)
    return explained, len(rest)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('--report', action='store_true',
                        help='print the last run\'s results; run nothing')
    parser.add_argument('--survivors', action='store_true',
                        help='list the mutants no test killed')
    parser.add_argument('--doc', action='store_true',
                        help='bring {} up to date with the survivors'.format(
                            DOC))
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
    if args.doc:
        survivors = {name.split('.', 1)[1]: change_of(name)
                     for name, verdict in verdicts.items()
                     if verdict == 'survived'}
        unchecked = {name.split('.', 1)[1] for name, verdict in
                     verdicts.items() if verdict == 'not checked'}
        explained, still_open = update_doc(DOC, survivors, unchecked)
        print('{}: {} survivors explained, {} still open'.format(
            DOC, explained, still_open))


if __name__ == '__main__':
    main()
