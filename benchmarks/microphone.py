#!/usr/bin/env python
"""The microphone condition: held-out songs played and recorded back.

The article's noise claim is about a microphone in a room. Each held-out
song of the first of --models' runs (its labels.json; every model must share
that split, as the study's runs of one seed do) is played, --seconds from
its middle, into a PulseAudio null sink with ``paplay`` and recorded back
from the sink's monitor through PyAudio, the device path of
``music-classification listen`` (``realtime.Microphone``, 16 kHz, 1024-sample
chunks). The recording is aligned with the file by cross-correlation. Then
every model scores, on the same clips (10.24 s every 5 s):

* ``file``: the excerpt read from the file (no device);
* ``device``: the recording;
* ``snr20``, ``snr10``, ``snr0``: the recording plus room noise (by
  default the package's built-in recorded-style noise, ``audio.load_noise()``;
  ``--noise`` another recording) at 20, 10 and 0 dB signal-to-noise ratio
  over the excerpt;
* ``quiet``: the recording 12 dB quieter (a far loudspeaker).

PulseAudio is started with a null sink if none runs (root on Debian:
``apt-get install pulseaudio pulseaudio-utils``). Recording takes real
time: about --seconds per song.

    python -m benchmarks.microphone --models benchmarks/wesnoth/work/\\
study-20min/article-seed0 benchmarks/wesnoth/work/study-20min/improved-seed0
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
import soundfile

from music_classification import (
    collection, load_audio, log_melspectrogram, predict)
from music_classification.audio import load_noise
from music_classification.augment import rms
from music_classification.errors import AudioFileError, ModelFileError

SINK = 'mc_microphone_benchmark'
CONDITIONS = ('file', 'device', 'snr20', 'snr10', 'snr0', 'quiet')


def start_pulseaudio():
    """A null sink as default sink, its monitor as default source."""
    if not (shutil.which('pulseaudio') and shutil.which('paplay')):
        raise SystemExit('needs PulseAudio: apt-get install pulseaudio '
                         'pulseaudio-utils libasound2-plugins')
    if subprocess.run(['pulseaudio', '--check']).returncode != 0:
        subprocess.run(['pulseaudio', '-D', '--exit-idle-time=-1', '-n',
                        '--load=module-null-sink sink_name=' + SINK,
                        '--load=module-native-protocol-unix'], check=True)
    else:
        subprocess.run(['pactl', 'load-module', 'module-null-sink',
                        'sink_name=' + SINK], check=True,
                       capture_output=True)
    subprocess.run(['pactl', 'set-default-sink', SINK], check=True)
    subprocess.run(['pactl', 'set-default-source', SINK + '.monitor'],
                   check=True)


def record(y, sr=16000):
    """Play ``y`` into the sink and record it back; aligned with ``y``."""
    from music_classification.realtime import Microphone
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'excerpt.wav')
        soundfile.write(path, y, sr, subtype='PCM_16')
        chunks = []
        with Microphone(rate=sr, chunk=1024) as mic:
            player = threading.Thread(target=lambda: (
                time.sleep(0.5),
                subprocess.run(['paplay', '--device', SINK, path],
                               check=True)))
            player.start()
            for _ in range(int((len(y) / sr + 1.5) * sr / 1024)):
                chunks.append(mic.read())
        player.join()
    return align(np.concatenate(chunks), y)


def align(recorded, reference, max_lag=24000):
    """``recorded`` shifted to line up with ``reference`` (same length).

    The lag is the cross-correlation peak among the first ``max_lag``
    samples (1.5 s: the playback starts 0.5 s after the recording, plus the
    device's latency); over all lags, a repeating passage can win.
    """
    import scipy.signal
    corr = scipy.signal.correlate(recorded, reference, method='fft')
    lags = scipy.signal.correlation_lags(len(recorded), len(reference))
    allowed = (lags >= 0) & (lags < max_lag)
    lag = int(lags[allowed][np.argmax(corr[allowed])])
    out = recorded[lag:lag + len(reference)]
    return np.pad(out, (0, len(reference) - len(out))).astype(np.float32)


def conditions(excerpt, recording, noise, rng):
    """Condition name -> waveform."""
    level = rms(recording) + 1e-12
    start = rng.integers(0, max(1, len(noise) - len(recording)))
    room = np.resize(noise[start:], len(recording)).astype(np.float64)
    room /= rms(room) + 1e-12
    out = {'file': excerpt, 'device': recording}
    for snr in (20, 10, 0):
        noisy = recording + room * level / 10 ** (snr / 20)
        out['snr{}'.format(snr)] = np.clip(noisy, -1, 1).astype(np.float32)
    out['quiet'] = (recording * 10 ** (-12 / 20)).astype(np.float32)
    return out


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('--models', nargs='+', required=True,
                        help='training output folders (same song split)')
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='seconds played from the middle of each song')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the noise offsets')
    parser.add_argument('--noise', default=None,
                        help='room noise to mix in: an audio file or .npy '
                        '(default: the built-in room noise)')
    args = parser.parse_args()
    try:
        noise = load_noise(args.noise)
    except AudioFileError as e:
        parser.exit(2, 'error: {}\n'.format(e))
    try:
        info, _ = collection.load_labels(os.path.join(args.models[0],
                                                      'labels.json'))
        models = [(folder, *collection.load_trained(folder))
                  for folder in args.models]
    except ModelFileError as e:
        parser.exit(2, 'error: {}\n'.format(e))
    songs = [(artist, path) for artist, paths in
             sorted(info['val_songs'].items()) for path in paths]
    start_pulseaudio()
    rng = np.random.default_rng(args.seed)
    scores = {(m, c): {'clips': [], 'songs': []}
              for m in args.models for c in CONDITIONS}
    t0 = time.perf_counter()
    for n, (artist, path) in enumerate(songs, 1):
        y, sr = load_audio(path)
        n_samples = int(args.seconds * sr)
        middle = max(0, (len(y) - n_samples) // 2)
        excerpt = y[middle:middle + n_samples].astype(np.float32)
        recording = record(excerpt, sr)
        # PulseAudio resamples to the sink's rate and back: the waveforms
        # differ in phase, the spectrograms hardly.
        same = np.corrcoef(log_melspectrogram(y=recording).ravel(),
                           log_melspectrogram(y=excerpt).ravel())[0, 1]
        print('[{}/{}] {} ({}): recorded {:.1f} s, log-mel correlation '
              'with the file {:.3f}'.format(n, len(songs),
                                            os.path.basename(path), artist,
                                            len(recording) / sr, same),
              flush=True)
        waves = conditions(excerpt, recording, noise, rng)
        for folder, model, names, config in models:
            label = names.index(artist)
            for condition, wave in waves.items():
                _, probs = predict.predict_windows(model, wave,
                                                   config=config)
                s = scores[folder, condition]
                s['clips'].extend(np.argmax(probs, axis=1) == label)
                s['songs'].append(predict.song_vote(probs)[0] == label)
    print('\n{} held-out songs, {:g} s each, {:.0f} s in all'.format(
        len(songs), args.seconds, time.perf_counter() - t0))
    print('| model | ' + ' | '.join(CONDITIONS) + ' |')
    print('| --- |' + ' --- |' * len(CONDITIONS))
    for folder in args.models:
        print('| {} | '.format(os.path.basename(folder.rstrip('/'))) +
              ' | '.join('{:.2f} / {:.2f}'.format(
                  np.mean(scores[folder, c]['clips']),
                  np.mean(scores[folder, c]['songs'])) for c in CONDITIONS)
              + ' |')
    print('(clip / song accuracy)')


if __name__ == '__main__':
    main()
