#!/usr/bin/env python
"""Clips per second: the batched feature function vs librosa per clip.

The original computed every window's mel spectrogram with one
``librosa.feature.melspectrogram`` call on a float64 clip (its 8-bit samples
after ``astype('float64')``), then ``np.log(S + 1)``. Ours computes a whole
batch in float32 in one call. Both run here, on the same 64 windows, after a
warm-up call each; the best of --repeats runs is reported.

    python benchmarks/bench_features.py [--clips 64] [--repeats 3] [--device -1]
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

from music_classification import log_melspectrogram  # NOQA: E402
from music_classification.features import WINDOW_SAMPLES  # NOQA: E402


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', '-n', type=int, default=64,
                        help='windows of 10.24 s to transform')
    parser.add_argument('--repeats', '-r', type=int, default=3,
                        help='runs of each method; the best is reported')
    parser.add_argument('--device', '-d', default='-1',
                        help='-1 for NumPy; 0 to also time CuPy on GPU 0')
    args = parser.parse_args()
    import librosa

    rng = np.random.default_rng(0)
    # 8-bit-like music-ish signal: tones plus noise, quantised to 1/128.
    t = np.arange(WINDOW_SAMPLES) / 16000
    clips = np.stack([
        np.round(127 * (0.4 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
                        + 0.1 * rng.standard_normal(WINDOW_SAMPLES))) / 128
        for _ in range(args.clips)])

    def original():
        return [np.log(librosa.feature.melspectrogram(
            y=clip, sr=16000, n_fft=2048, n_mels=256,
            pad_mode='reflect') + 1.0)
            for clip in clips]

    batch32 = clips.astype(np.float32)

    def batched():
        return log_melspectrogram(y=batch32)

    original()  # warm-up (numba, FFT plans, filter bank caches)
    batched()
    t_orig = best_of(args.repeats, original)
    t_ours = best_of(args.repeats, batched)
    print('machine: {}, {} CPUs, numpy {}, librosa {}'.format(
        platform.processor() or platform.machine(), os.cpu_count(),
        np.__version__, librosa.__version__))
    print('{} windows of {} samples'.format(args.clips, WINDOW_SAMPLES))
    print('librosa per clip (original): {:8.1f} clips/s  ({:.2f} ms/clip)'
          .format(args.clips / t_orig, 1000 * t_orig / args.clips))
    print('batched log_melspectrogram:  {:8.1f} clips/s  ({:.2f} ms/clip)'
          .format(args.clips / t_ours, 1000 * t_ours / args.clips))
    print('speed-up (batched / per clip): {:.2f}x  (goal >= 1.5x)'.format(
        t_orig / t_ours))
    if args.device not in ('-1', '@numpy'):
        import cupy
        with cupy.cuda.Device(int(args.device.split(':')[-1])):
            gpu = cupy.asarray(batch32)
            log_melspectrogram(y=gpu)
            cupy.cuda.Stream.null.synchronize()

            def on_gpu():
                log_melspectrogram(y=gpu)
                cupy.cuda.Stream.null.synchronize()
            t_gpu = best_of(args.repeats, on_gpu)
        print('batched on GPU {}:           {:8.1f} clips/s  ({:.2f}x the '
              'per-clip CPU loop)'.format(args.device, args.clips / t_gpu,
                                          t_orig / t_gpu))


if __name__ == '__main__':
    main()
