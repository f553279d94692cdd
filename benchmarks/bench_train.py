#!/usr/bin/env python
"""Training samples per second: per-clip librosa features vs the batched path.

The original computed each window's mel spectrogram with its own librosa
call (float64) on the CPU, then moved the batch to the device. Ours stacks
the waveforms on the device and computes all features in one call there.
Both train the same MUSIC_NET (the original's 256 x 321 input) on the same
class-balanced batches of the synthetic demo data, in one run; the share of
each step spent on features is printed too.

    python benchmarks/bench_train.py [--steps 5] [--batch-per-class 10] [--device -1]
"""

import argparse
import tempfile
import time

import chainer
import numpy as np

from music_classification import (
    MUSIC_NET, READ_DATASET, READ_DATASET2, FeatureConfig, synthetic)
from music_classification import training


class PerClipConverter(object):
    """The original's way: librosa once per clip, float64, on the CPU."""

    def __init__(self, config):
        self.config = config

    def __call__(self, batch, device=None):
        import librosa
        xs = [np.log(librosa.feature.melspectrogram(
            y=wave.astype(np.float64), sr=self.config.sr,
            n_fft=self.config.n_fft, n_mels=self.config.n_mels,
            pad_mode=self.config.pad_mode) + 1.0)
            for wave, _ in batch]
        x = np.asarray(xs, dtype=np.float32)[:, None]
        t = np.asarray([label for _, label in batch], dtype=np.int32)
        return chainer.dataset.to_device(device, x), \
            chainer.dataset.to_device(device, t)


class Timed(object):
    def __init__(self, converter, device):
        self.converter, self.device, self.seconds = converter, device, 0.0

    def __call__(self, batch, device=None):
        start = time.perf_counter()
        out = self.converter(batch, device)
        if self.device.xp is not np:
            self.device.device.synchronize()
        self.seconds += time.perf_counter() - start
        return out


def measure(name, converter, classes, args, device):
    np.random.seed(0)
    model = MUSIC_NET(n_classes=len(classes))
    model.to_device(device)
    device.use()
    it = training.balanced_iterator(classes, args.batch_per_class, seed=0)
    timed = Timed(converter, device)
    updater = chainer.training.updaters.StandardUpdater(
        it, training.make_optimizer(model), converter=timed, device=device,
        loss_func=training.loss_with_report(model))
    updater.update()  # warm-up
    timed.seconds = 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        updater.update()
    if device.xp is not np:
        device.device.synchronize()
    total = time.perf_counter() - start
    samples = args.steps * it.batch_size
    print('{:<28} {:8.2f} samples/s  {:6.3f} s/step  features {:5.1f}% of '
          'the step'.format(name, samples / total, total / args.steps,
                            100 * timed.seconds / total))
    return samples / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', '-n', type=int, default=5,
                        help='timed training steps per method')
    parser.add_argument('--batch-per-class', '-b', type=int, default=10,
                        help='windows per class per step (original: 10)')
    parser.add_argument('--device', '-d', default='-1',
                        help='-1: CPU; 0 or @cupy:0: GPU 0')
    args = parser.parse_args()
    device = chainer.get_device(args.device)
    with tempfile.TemporaryDirectory() as root:
        data = synthetic.make_demo_dataset(root, n_artists=4,
                                           songs_per_artist=1,
                                           song_seconds=20.0)
        rng = np.random.default_rng(0)
        classes = [[READ_DATASET2(data.other_dir, rng=rng, label=0)]] + [
            [READ_DATASET(data.songs[a][0], rng=rng, label=k)]
            for k, a in enumerate(data.artists, start=1)]
        print('device {}; batch of {} windows; {} timed steps'.format(
            device, args.batch_per_class * len(classes), args.steps))
        orig = measure('per-clip librosa (original)',
                       PerClipConverter(FeatureConfig()), classes, args,
                       device)
        ours = measure('batched on the device',
                       training.FeatureConverter(), classes, args, device)
    print('speed-up (batched / per clip): {:.2f}x'.format(ours / orig))


if __name__ == '__main__':
    main()
