#!/usr/bin/env python
"""Clips per second: the feature function vs librosa, per clip and batched.

The original computed every window's mel spectrogram with one
``librosa.feature.melspectrogram`` call on a float64 clip (its 8-bit samples
after ``astype('float64')``), then ``np.log(S + 1)``. librosa itself also
takes a ``(batch, n_samples)`` array in one call: the fair peer of ours,
which computes a whole float32 batch in one call (block-sparse mel bank,
multi-threaded FFT). All three run here on the same 64 windows, after a
warm-up call each; the best of --repeats runs is reported, with the two
ratios and their goals (>= 4x the per-clip loop, >= 1.5x librosa batched).

    python benchmarks/bench_features.py [--clips 64] [--repeats 3] [--device -1]
"""

import argparse
import os
import platform
import time

import numpy as np


from music_classification import log_melspectrogram
from music_classification.features import WINDOW_SAMPLES


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

    def librosa_batched():
        return np.log1p(librosa.feature.melspectrogram(
            y=batch32, sr=16000, n_fft=2048, n_mels=256, pad_mode='reflect'))

    def batched():
        return log_melspectrogram(y=batch32)

    original()  # warm-up (numba, FFT plans, filter bank caches)
    librosa_batched()
    batched()
    t_orig = best_of(args.repeats, original)
    t_lib = best_of(args.repeats, librosa_batched)
    t_ours = best_of(args.repeats, batched)
    worst = float(np.abs(batched()[:, 0] - librosa_batched()).max())
    print('machine: {}, {} CPUs, numpy {}, librosa {}'.format(
        platform.processor() or platform.machine(), os.cpu_count(),
        np.__version__, librosa.__version__))
    print('{} windows of {} samples'.format(args.clips, WINDOW_SAMPLES))
    print('librosa per clip (original): {:8.1f} clips/s  ({:.2f} ms/clip)'
          .format(args.clips / t_orig, 1000 * t_orig / args.clips))
    print('librosa batched (float32):   {:8.1f} clips/s  ({:.2f} ms/clip)'
          .format(args.clips / t_lib, 1000 * t_lib / args.clips))
    print('log_melspectrogram:          {:8.1f} clips/s  ({:.2f} ms/clip); '
          'max |difference| to librosa batched {:.2g}'.format(
              args.clips / t_ours, 1000 * t_ours / args.clips, worst))
    print('ratio to the per-clip loop (the original): {:.2f}x  (goal >= 4x)'
          .format(t_orig / t_ours))
    print('ratio to librosa batched:                  {:.2f}x  (goal >= '
          '1.5x)'.format(t_lib / t_ours))
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
