#!/usr/bin/env python
"""CPU training steps with glibc's default allocator vs freed memory kept.

``music-classification train`` on the CPU calls
:func:`music_classification.training.keep_freed_memory` before its first
step. This times the same training steps (the same model, batch and
weights) in two fresh processes, one with glibc's defaults and one with
that setting, and prints seconds per step, the kernel's (system) share of
the CPU time and the ratio, for the improved recipe's small CNN and for
MUSIC_NET.

    python -m benchmarks.bench_allocator [--steps 8]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

#: model, input shape, windows per step (the improved recipe's batch of
#: 7 artists + "Other"; the article's recipe's batch on the demo data).
CASES = [('small_cnn', (128, 97), 64), ('music_net', (256, 321), 30)]


def child(model_name, shape, batch, steps, keep):
    """One process: time ``steps`` training steps; print JSON."""
    import numpy as np
    from music_classification import training
    from music_classification.net import build_model
    if keep:
        training.keep_freed_memory()
    np.random.seed(0)
    model = build_model(model_name, n_classes=8, input_shape=shape)
    optimizer = training.make_optimizer(model, alpha=1e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1) + shape).astype(np.float32)
    t = rng.integers(0, 8, batch).astype(np.int32)
    loss = training.loss_with_report(model)
    optimizer.update(loss, x, t)  # warm-up
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.update(loss, x, t)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - usage.ru_utime, \
        after.ru_stime - usage.ru_stime
    print(json.dumps({'step': seconds / steps,
                      'system': system / max(user + system, 1e-9)}))


def measure(model_name, shape, batch, steps, keep):
    out = subprocess.run(
        [sys.executable, '-m', 'benchmarks.bench_allocator', '--child',
         model_name, json.dumps([list(shape), batch, steps, int(keep)])],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', '-n', type=int, default=8,
                        help='timed training steps per process')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape, batch, steps, keep = json.loads(args.child[1])
        return child(args.child[0], tuple(shape), batch, steps, keep)
    for model_name, shape, batch in CASES:
        default = measure(model_name, shape, batch, args.steps, False)
        kept = measure(model_name, shape, batch, args.steps, True)
        for name, r in (('glibc defaults', default), ('freed memory kept',
                                                      kept)):
            print('{:<10} {:>3} x {}x{}  {:<18} {:6.3f} s/step  system '
                  '{:4.1f}% of the CPU time'.format(
                      model_name, batch, shape[0], shape[1], name,
                      r['step'], 100 * r['system']))
        print('{:<10} speed-up (kept / defaults): {:.2f}x'.format(
            model_name, default['step'] / kept['step']), flush=True)


if __name__ == '__main__':
    main()
