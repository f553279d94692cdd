"""The realtime path on a real (virtual) audio device: PulseAudio.

A null sink's monitor is the default input; ``paplay`` plays a WAV into the
sink and PyAudio records it, as a microphone would hear a loudspeaker.
PulseAudio is started here (and installed with apt-get when missing and the
tests run as root, as in CI); the tests skip only where it cannot run.
"""

import json
import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import cli

from music_classification import load_audio, log_melspectrogram

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINK = 'mc_test_sink'
PACKAGES = ['pulseaudio', 'pulseaudio-utils', 'libasound2-plugins']


def _install_pulseaudio():
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        return 'PulseAudio is not installed and this is not root to apt-get it'
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    cmd = ['apt-get', 'install', '-y', '-qq'] + PACKAGES
    if subprocess.run(cmd, env=env, capture_output=True).returncode:
        subprocess.run(['apt-get', 'update', '-qq'], env=env,
                       capture_output=True)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode:
            return 'apt-get install {} failed: {}'.format(
                ' '.join(PACKAGES), result.stderr[-300:])
    return None


@pytest.fixture(scope='module')
def pulse():
    pytest.importorskip('pyaudio', reason='the [audio] extra (PyAudio) is '
                        'not installed')
    if not (shutil.which('pulseaudio') and shutil.which('paplay')):
        problem = _install_pulseaudio()
        if problem:
            pytest.skip(problem)
    started = subprocess.run(['pulseaudio', '--check']).returncode != 0
    module = None
    if started:
        result = subprocess.run(
            ['pulseaudio', '-D', '--exit-idle-time=-1', '-n',
             '--load=module-null-sink sink_name=' + SINK,
             '--load=module-native-protocol-unix'],
            capture_output=True, text=True)
        if result.returncode:
            pytest.skip('PulseAudio cannot run here: ' + result.stderr[-300:])
    else:
        module = subprocess.run(
            ['pactl', 'load-module', 'module-null-sink',
             'sink_name=' + SINK], capture_output=True, text=True,
            check=True).stdout.strip()
    subprocess.run(['pactl', 'set-default-sink', SINK], check=True)
    subprocess.run(['pactl', 'set-default-source', SINK + '.monitor'],
                   check=True)
    yield SINK
    if started:
        subprocess.run(['pulseaudio', '-k'])
    elif module:
        subprocess.run(['pactl', 'unload-module', module])


def play(path, delay=0.5):
    """Play ``path`` into the sink after ``delay`` seconds, in the
    background."""
    def run():
        time.sleep(delay)
        subprocess.run(['paplay', '--device', SINK, str(path)], check=True)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def record_while_playing(path, seconds, **kwargs):
    """Open the default input, then play ``path``; record ``seconds``."""
    from music_classification.realtime import Microphone
    chunks = []
    with Microphone(rate=16000, chunk=1024, **kwargs) as mic:
        player = play(path)
        for _ in range(int(seconds * 16000 / 1024)):
            chunks.append(mic.read())
        overflows = mic.overflows
    player.join()
    return np.concatenate(chunks), overflows


def align(recorded, reference):
    """The overlapping parts of two recordings of the same sound.

    The lag comes from the cross-correlation peak over all lags: the
    recording may start before the playback, or (when the input stream
    starts slowly) after it.
    """
    import scipy.signal
    corr = scipy.signal.correlate(recorded, reference, method='fft')
    lag = int(scipy.signal.correlation_lags(len(recorded), len(reference))[
        np.argmax(corr)])
    if lag >= 0:
        recorded = recorded[lag:]
    else:
        reference = reference[-lag:]
    n = min(len(recorded), len(reference))
    return recorded[:n], reference[:n]


@pytest.mark.parametrize('device_rate', [None, 44100])
def test_microphone_hears_the_file(pulse, demo_data, device_rate):
    # At 16 kHz directly, and at 44.1 kHz resampled to 16 kHz (as for a
    # device that cannot record at 16 kHz).
    path = demo_data.songs[demo_data.artists[1]][0]
    y, _ = load_audio(path)
    recorded, overflows = record_while_playing(path, len(y) / 16000 + 2.0,
                                               device_rate=device_rate)
    assert overflows == 0
    heard, played = align(recorded, y)
    n = 163840  # one 10.24 s window
    assert len(heard) >= n
    heard, played = heard[:n], played[:n]
    # PulseAudio resamples 16 kHz to the sink's 44.1 kHz and back (speex),
    # which band-limits the signal near 8 kHz and delays it by a fraction of
    # a sample: the waveforms are highly, not perfectly, correlated...
    assert np.corrcoef(heard, played)[0, 1] > 0.98
    assert 0.9 < heard.std() / played.std() < 1.1
    # ... and the features the network sees agree: below about 7 kHz (mel
    # bands 0..239, outside the resamplers' transition band) the log-mel
    # values differ by under 0.005 on average (measured here) on a
    # scale of 0..9; the bound leaves room for other resampler settings.
    ours = log_melspectrogram(y=heard)[0, 0, :240]
    ref = log_melspectrogram(y=played)[0, 0, :240]
    assert np.abs(ours - ref).mean() < 0.03
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.99


@pytest.fixture(scope='module')
def small_model(demo_data, tmp_path_factory):
    from music_classification.cli import train
    out = str(tmp_path_factory.mktemp('live-model'))
    train.main(['--music', demo_data.music_dir, '--other',
                demo_data.other_dir, '--noise', demo_data.noise_path,
                '--out', out, '--length', '40', '--iterations', '60',
                '--batch-per-class', '4', '--other-per-batch', '4',
                '--val-songs', '1', '--snapshot-every', '0',
                '--eval-every', '1000', '--log-every', '5', '--no-progress'])
    return out


def test_recognizer_names_the_artist_live(pulse, small_model):
    from music_classification import collection, predict
    with open(os.path.join(small_model, 'labels.json')) as f:
        labels = json.load(f)
    artist, (song,) = sorted(labels['val_songs'].items())[0]
    y = load_audio(song)[0]
    window = 2.56  # --length 40
    proc = subprocess.Popen(
        [*cli('listen'),
         '--model', small_model, '--jsonl', '--every', '0.5',
         '--threshold', '0', '--duration', str(len(y) / 16000 + 8)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Play once audio flows: after the first prediction (of silence).
    assert 'listening on' in proc.stderr.readline()
    first = proc.stdout.readline()
    player = play(song, delay=0.3)
    out, err = proc.communicate(timeout=120)
    player.join()
    assert proc.returncode == 0, err
    assert 'input overflows: 0' in err
    records = [json.loads(line) for line in [first] + out.splitlines()]
    assert records[0]['state'] == 'silence'
    assert records[-1]['state'] == 'silence'
    # Windows that hold only music: from a window's length after the sound
    # starts until the sound stops (half a second of margin either side for
    # the prediction interval).
    heard = [r['audio_seconds'] for r in records if r['state'] != 'silence']
    begin, end = heard[0] + window + 0.5, heard[-1] - window - 0.5
    live = [r['name'] for r in records if begin <= r['audio_seconds'] <= end]
    assert len(live) >= 10
    # The live verdict is the file's: most windows name the artist, about
    # as many as when the same model reads the file directly.
    model, names, config = collection.load_trained(small_model)
    _, probs = predict.predict_windows(model, y, config=config,
                                       hop_seconds=0.5)
    offline = np.mean([names[k] == artist for k in probs.argmax(1)])
    right = live.count(artist) / len(live)
    assert right > 0.5 and offline > 0.5
    assert right >= offline - 0.15, (right, offline, live)


def test_ctrl_c_stops_cleanly(pulse, small_model):
    import signal
    proc = subprocess.Popen(
        [*cli('listen'),
         '--model', small_model, '--plain', '--every', '0.25'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert 'listening on' in proc.stderr.readline()
    proc.stdout.readline()  # a first prediction: audio flows
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert 'Traceback' not in err
    assert 'stopped after' in err and 'input overflows: 0' in err


def test_a_lagging_reader_drops_the_oldest_audio(pulse, demo_data):
    # A reader that stalls for 2 s with at most 0.5 s buffered: the
    # microphone drops the oldest ~1.5 s, counts it, and what is read next
    # is recent audio, not 2 s old.
    from music_classification.realtime import Microphone
    with Microphone(rate=16000, chunk=1024, max_lag=0.5) as mic:
        mic.read()  # the stream runs
        time.sleep(2.0)
        waiting = len(mic._queue)
        dropped = mic.dropped_seconds
    assert waiting <= 8  # 0.5 s of 1024-sample chunks
    assert 1.0 < dropped < 2.0
