"""Data-parallel training with ChainerMN: two CPU ranks under mpiexec.

Open MPI and mpi4py come with the README's setup (scripts/bootstrap.sh
installs them as root); the tests skip, saying why, only where they are
missing.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import cli, read_log


@pytest.fixture(scope='module')
def mpiexec():
    pytest.importorskip('mpi4py', reason='mpi4py (the [mpi] extra) is not '
                        'installed')
    path = shutil.which('mpiexec')
    if path is None:
        pytest.skip('no mpiexec: apt-get install openmpi-bin libopenmpi-dev')
    return [path, '--allow-run-as-root', '--oversubscribe', '-n', '2']


def command(mpiexec, demo_data, out, *extra,
            batch=('--batch-per-class', '2')):
    return mpiexec + [
        *cli('train'),
        '--distributed', '--music', demo_data.music_dir,
        '--other', demo_data.other_dir, '--noise', demo_data.noise_path,
        '--out', str(out), '--length', '40', *batch,
        '--other-per-batch', '2', '--log-every', '1', '--no-progress',
        *extra]


def environment():
    # One BLAS thread per rank: two ranks share this machine's cores.
    return dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')


def checksums(stdout):
    return dict(re.findall(r'rank (\d) of 2: parameter checksum (\w+)',
                           stdout))


def test_two_ranks_stay_identical_and_learn(mpiexec, demo_data, tmp_path):
    out = tmp_path / 'run'
    result = subprocess.run(
        command(mpiexec, demo_data, out, '--iterations', '12',
                '--eval-every', '6', '--snapshot-every', '0'),
        capture_output=True, text=True, timeout=600, env=environment())
    assert result.returncode == 0, result.stderr[-3000:]
    sums = checksums(result.stdout)
    assert set(sums) == {'0', '1'} and sums['0'] == sums['1']
    assert '2 ranks, 12 windows per step in all' in result.stdout
    log = read_log(out)  # written by rank 0 only
    assert [e['iteration'] for e in log] == list(range(1, 13))
    first = sum(e['main/loss'] for e in log[:3]) / 3
    last = sum(e['main/loss'] for e in log[-3:]) / 3
    assert last < first
    assert 'validation/main/accuracy' in log[5]
    assert sorted(f for f in os.listdir(out) if not f.endswith('.png')) == \
        ['labels.json', 'log', 'model.npz']


RANK_FAILS = """
from music_classification.cli import fail  # first: see stand_in.py
import chainermn
from music_classification.errors import (
    MusicClassificationError, ParameterError)
from music_classification.training import on_every_rank
comm = chainermn.create_communicator('naive')

def check(rank):
    if rank == 1:
        raise ParameterError('only rank 1 fails')
    return 'ok'

try:
    print('rank', comm.rank, on_every_rank(comm, check, comm.rank), flush=True)
except MusicClassificationError as e:  # as music-classification train does
    fail("music-classification train", e)
comm.mpi_comm.allreduce(1)  # rank 0 would wait here for ever
"""


def test_a_check_failing_on_one_rank_stops_every_rank(mpiexec, tmp_path):
    # Rank 1 finding another run's labels.json (written by a faster rank 0)
    # once left rank 0 waiting for it for ever.
    script = tmp_path / 'rank_fails.py'
    script.write_text(RANK_FAILS)
    result = subprocess.run(mpiexec + [sys.executable, str(script)],
                            capture_output=True, text=True, timeout=120,
                            env=environment())
    assert result.returncode != 0
    assert 'rank 0 ok' not in result.stdout
    assert result.stderr.count(
        'music-classification train: only rank 1 fails') == 2


def test_killed_run_resumes(mpiexec, demo_data, tmp_path):
    out = tmp_path / 'run'
    # with the original's per-song batches
    cmd = command(mpiexec, demo_data, out, '--iterations', '10',
                  '--snapshot-every', '2', '--eval-every', '100',
                  batch=('--batch-per-song', '2'))
    with open(tmp_path / 'first.txt', 'w') as output:
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT,
                                env=environment(), start_new_session=True)
    deadline = time.time() + 300
    # Rank 0 writes the multi-node snapshot (a temporary name, then moved).
    while not (out / 'snapshot_iter_4.0').exists():
        assert time.time() < deadline and proc.poll() is None, \
            (tmp_path / 'first.txt').read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / 'model.npz').exists()
    result = subprocess.run(cmd + ['--resume'], capture_output=True,
                            text=True, timeout=600, env=environment())
    assert result.returncode == 0, result.stderr[-3000:]
    sums = checksums(result.stdout)
    assert sums['0'] == sums['1']
    iterations = [e['iteration'] for e in read_log(out)]
    assert iterations == list(range(1, 11))  # nothing lost, nothing twice
