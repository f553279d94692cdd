#!/usr/bin/env python
"""CPU cost of the realtime recognizer: the original's loop vs ours.

The original, for every 1024-sample chunk (64 ms), recomputed the mel
spectrogram of the whole 10.24 s window with librosa and ran MUSIC_NET.
Ours updates the window's features incrementally (StreamingLogMel: 6 STFT
frames per chunk instead of 321) and runs the network every --every seconds.
Both process the same --seconds of synthetic music as fast as they can, in
one run, on the CPU; CPU time is process time (all threads: the full
recomputation's FFT uses every core). Latency is the time from the
last sample of a chunk to the printed prediction (the audio device's own
buffering comes on top).

    python benchmarks/bench_realtime.py [--seconds 20] [--every 1.0]
"""

import argparse
import io
import os
import time

import chainer
import numpy as np


from music_classification import MUSIC_NET, synthetic, realtime
from music_classification.features import (
    FeatureConfig, StreamingLogMel, log_melspectrogram)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0,
                        help='seconds of audio to process')
    parser.add_argument('--every', type=float, default=1.0,
                        help='seconds between predictions (ours)')
    args = parser.parse_args()
    import librosa

    config = FeatureConfig()
    sr, chunk = config.sr, config.chunk
    y = synthetic.synthesize_song(synthetic.ARTISTS[2], seed=0,
                             seconds=args.seconds + 10.24)
    chunks = [y[i:i + chunk] for i in range(0, int(args.seconds * sr), chunk)]
    n = len(chunks)
    np.random.seed(0)
    model = MUSIC_NET()
    window = np.zeros(config.window_samples, np.float32)

    # Features alone: full recomputation vs incremental, per chunk.
    start = time.process_time()
    for c in chunks:
        window = np.concatenate([window[chunk:], c])
        log_melspectrogram(y=window)
    full = (time.process_time() - start) / n
    stream = StreamingLogMel(config)
    start = time.process_time()
    for c in chunks:
        stream.push(c)
    incremental = (time.process_time() - start) / n
    start = time.process_time()
    for _ in range(50):
        stream.features()
    assemble = (time.process_time() - start) / 50

    # The original's whole loop: librosa mel of the window + forward, every
    # chunk (float64 input, as its 8-bit samples after astype('float64')).
    window = np.zeros(config.window_samples, np.float64)
    librosa.feature.melspectrogram(y=window, sr=sr, n_fft=2048, n_mels=256,
                                   pad_mode='reflect')
    start = time.process_time()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for c in chunks:
            window = np.concatenate([window[chunk:], c])
            S = librosa.feature.melspectrogram(y=window, sr=sr, n_fft=2048,
                                               n_mels=256, pad_mode='reflect')
            model.predict(np.log(S + 1.0).astype(np.float32)[None, None])
    original = (time.process_time() - start) / n

    # Ours: Recognizer with the terminal display written to a buffer.
    rec = realtime.Recognizer(model, ['Other'] + ['artist'] * 6, config,
                              every=args.every)
    rec.warm_up()
    names = rec.class_names
    latencies = []
    sink = io.StringIO()
    start = time.process_time()
    for c in chunks:
        t0 = time.perf_counter()
        prediction = rec.push(c)
        if prediction is not None:
            sink.write('\n'.join(realtime.render(prediction, names)))
            latencies.append(time.perf_counter() - t0)
    ours = (time.process_time() - start) / n
    chunk_s = chunk / sr

    print('{} chunks of {} samples ({:.0f} ms of audio each), MUSIC_NET '
          '(256 x 321), CPU, {} CPUs'.format(n, chunk, 1000 * chunk_s,
                                             os.cpu_count()))
    print('features per chunk: full recomputation {:.2f} ms, incremental '
          '{:.3f} ms: {:.0f}x less (goal >= 40x); assembling the window for '
          'a prediction: {:.2f} ms'.format(1000 * full, 1000 * incremental,
                                           full / incremental,
                                           1000 * assemble))
    print('whole recognizer per chunk: original (librosa + forward every '
          'chunk) {:.1f} ms = {:.0f}% of one core; ours (forward every '
          '{:g} s) {:.2f} ms = {:.1f}% of one core (goal < 10%)'.format(
              1000 * original, 100 * original / chunk_s, args.every,
              1000 * ours, 100 * ours / chunk_s))
    print('latency from a chunk\'s last sample to the printed prediction: '
          'median {:.0f} ms, max {:.0f} ms ({} predictions)'.format(
              1000 * np.median(latencies), 1000 * max(latencies),
              len(latencies)))


if __name__ == '__main__':
    main()
