#!/usr/bin/env python
"""Data-parallel training speed: 1 rank vs 2 ranks under mpiexec.

Runs itself under ``mpiexec -n 1`` and ``mpiexec -n 2`` (CPU, ChainerMN's
``naive`` communicator, one BLAS thread per rank), training MUSIC_NET (the
original's 256 x 321 input, ~70 M parameters) on the synthetic demo data with
the original recipe, and measures samples per second over all ranks and the
time each step spends all-reducing the gradients.

    python benchmarks/bench_distributed.py [--steps 4] [--batch-per-class 4]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(args):
    import chainer
    import chainermn
    import numpy as np
    from music_classification import (MUSIC_NET, READ_DATASET, READ_DATASET2,
                                      synthetic, training)
    comm = chainermn.create_communicator('naive')
    data = synthetic.make_demo_dataset(args.data, n_artists=4,
                                       songs_per_artist=1, song_seconds=20.0)
    rng = np.random.default_rng(comm.rank)
    classes = [[READ_DATASET2(data.other_dir, rng=rng, label=0)]] + [
        [READ_DATASET(data.songs[a][0], rng=rng, label=k)]
        for k, a in enumerate(data.artists, start=1)]
    np.random.seed(0)
    model = MUSIC_NET(n_classes=len(classes))
    optimizer = training.make_optimizer(model, comm=comm)
    it = training.balanced_iterator(classes, args.batch_per_class,
                                    seed=(0, comm.rank))
    updater = chainer.training.updaters.StandardUpdater(
        it, optimizer, converter=training.FeatureConverter(),
        loss_func=training.loss_with_report(model))
    spent = []
    allreduce = comm.multi_node_mean_grad

    def timed(*a, **k):
        start = time.perf_counter()
        out = allreduce(*a, **k)
        spent.append(time.perf_counter() - start)
        return out
    comm.multi_node_mean_grad = timed
    updater.update()  # warm-up (and the initial broadcast)
    del spent[:]
    comm.mpi_comm.Barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        updater.update()
    comm.mpi_comm.Barrier()
    total = time.perf_counter() - start
    if comm.rank == 0:
        samples = args.steps * it.batch_size * comm.size
        print('RESULT ranks={} samples_per_s={:.3f} step_s={:.3f} '
              'allreduce_s={:.3f}'.format(comm.size, samples / total,
                                          total / args.steps,
                                          float(np.mean(spent))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=4,
                        help='timed steps per rank count')
    parser.add_argument('--batch-per-class', type=int, default=4,
                        help='windows per class per rank per step')
    parser.add_argument('--worker', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--data', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')
    results = {}
    with tempfile.TemporaryDirectory() as data:
        for n in (1, 2):
            out = subprocess.run(
                ['mpiexec', '--allow-run-as-root', '--oversubscribe', '-n',
                 str(n), sys.executable, os.path.abspath(__file__),
                 '--worker', '--data', data, '--steps', str(args.steps),
                 '--batch-per-class', str(args.batch_per_class)],
                capture_output=True, text=True, env=env, check=True).stdout
            line = [x for x in out.splitlines() if x.startswith('RESULT')][0]
            results[n] = dict(kv.split('=') for kv in line.split()[1:])
            print(line)
    one, two = (float(results[n]['samples_per_s']) for n in (1, 2))
    print('{} CPUs; 2 ranks / 1 rank: {:.2f}x the samples per second; '
          'all-reduce {:.3f} s of a {:.3f} s step with 2 ranks'.format(
              os.cpu_count(), two / one, float(results[2]['allreduce_s']),
              float(results[2]['step_s'])))


if __name__ == '__main__':
    main()
