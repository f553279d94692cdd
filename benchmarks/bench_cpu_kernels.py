#!/usr/bin/env python
"""CPU training steps with Chainer's own functions vs :mod:`fast_cpu`.

The networks convolve, batch-normalise and max-pool through
:mod:`music_classification.fast_cpu` on NumPy arrays;
``chainer.using_config('fast_cpu', False)`` runs Chainer's own functions
instead. This times the same training steps (the same model, batch and
weights, freed memory kept as ``music-classification train`` does) both
ways in one process, alternating, and prints seconds per step and the
ratio, for the improved recipe's small CNN (Wesnoth's batch of 5 composers
+ "Other" and the second set's of 7 + "Other"), MUSIC_NET with pooling and
batch norm, and the article's MUSIC_NET.

    python -m benchmarks.bench_cpu_kernels [--steps 6] [--rounds 2]
"""

import argparse
import time

import chainer
import numpy as np

from music_classification import training
from music_classification.net import build_model

#: model, options, input shape, windows per step.
CASES = [('small_cnn', {}, (128, 97), 48),
         ('small_cnn', {}, (128, 97), 64),
         ('music_net_pool', {'batchnorm': True}, (256, 321), 30),
         ('music_net', {}, (256, 321), 30)]


def seconds_per_step(optimizer, loss, x, t, steps, fast):
    with chainer.using_config('fast_cpu', fast):
        optimizer.update(loss, x, t)  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.update(loss, x, t)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', '-n', type=int, default=6,
                        help='timed training steps per measurement')
    parser.add_argument('--rounds', '-r', type=int, default=2,
                        help='measurements each way, alternating (the '
                        'fastest counts)')
    args = parser.parse_args()
    training.keep_freed_memory()
    for name, options, shape, batch in CASES:
        np.random.seed(0)
        model = build_model(name, n_classes=8, input_shape=shape, **options)
        optimizer = training.make_optimizer(model, alpha=1e-4)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, 1) + shape).astype(np.float32)
        t = rng.integers(0, 8, batch).astype(np.int32)
        loss = training.loss_with_report(model)
        best = {False: np.inf, True: np.inf}
        for _ in range(args.rounds):
            for fast in (False, True):
                best[fast] = min(best[fast], seconds_per_step(
                    optimizer, loss, x, t, args.steps, fast))
        label = '{} {}'.format(name, ' '.join(sorted(options)))
        print('{:<26} {:>3} x {}x{}  Chainer {:6.3f} s/step  fast_cpu '
              '{:6.3f} s/step  speed-up {:.2f}x'.format(
                  label, batch, shape[0], shape[1], best[False], best[True],
                  best[False] / best[True]), flush=True)


if __name__ == '__main__':
    main()
