import json

import numpy as np
from numpy.testing import assert_allclose
import pytest

from conftest import cli

from music_classification import MUSIC_NET, realtime
from music_classification.errors import ParameterError
from music_classification.features import FeatureConfig

CONFIG = FeatureConfig(length=40)  # (256, 81) inputs: a small fc4


class FixedModel(MUSIC_NET):
    """MUSIC_NET whose predictions are scripted, to test the decisions."""

    def __init__(self, outputs):
        super().__init__(n_classes=3, input_shape=CONFIG.input_shape)
        self.outputs = list(outputs)
        self.inputs = []

    def predict(self, x):
        self.inputs.append(np.array(x))
        import chainer
        return chainer.Variable(np.array([self.outputs.pop(0)],
                                         dtype=np.float32))


NAMES = ['Other', 'alpha', 'beta']


def loud(n):
    return np.full(n, 0.2, np.float32)


def test_predicts_every_n_seconds_from_the_stream():
    model = FixedModel([[0.1, 0.8, 0.1]] * 3)
    rec = realtime.Recognizer(model, NAMES, CONFIG, every=0.128)
    out = [rec.push(loud(1024)) for _ in range(6)]  # 0.064 s each
    assert [o is not None for o in out] == [False, True] * 3
    assert out[1].name == 'alpha' and out[1].state == 'music'
    assert out[-1].time == pytest.approx(6 * 1024 / 16000)
    assert_allclose(model.inputs[-1], rec.stream.features())


def test_odd_chunk_sizes_are_buffered():
    rec = realtime.Recognizer(FixedModel([[0.2, 0.3, 0.5]]), NAMES, CONFIG,
                              every=0.064)
    assert rec.push(loud(700)) is None
    prediction = rec.push(loud(700))  # 1400 samples: 1024 usable
    assert prediction is not None and prediction.name == 'beta'
    assert rec.samples_heard == 1024 and len(rec._pending) == 376


def test_smoothing_threshold_other_and_silence():
    outputs = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0],
               [0.0, 0.0, 1.0]]
    rec = realtime.Recognizer(FixedModel(outputs), NAMES, CONFIG,
                              every=0.032, smooth=2, threshold=0.7)
    got = [rec.push(loud(512)) for _ in range(4)]
    assert [g.name for g in got] == ['alpha', 'unknown', 'beta', 'beta']
    assert_allclose(got[1].probs, [0, 0.5, 0.5])
    assert got[3].state == 'music'
    quiet = realtime.Recognizer(FixedModel([[0.1, 0.8, 0.1]]), NAMES, CONFIG,
                                every=0.032)
    assert quiet.push(np.zeros(512, np.float32)).state == 'silence'
    other = realtime.Recognizer(FixedModel([[0.9, 0.05, 0.05]]), NAMES,
                                CONFIG, every=0.032)
    assert other.push(loud(512)).name == 'Other'


def test_exponential_average():
    rec = realtime.Recognizer(
        FixedModel([[0, 1, 0], [0, 0, 1]]), NAMES, CONFIG, every=0.032,
        ema=0.25)
    rec.push(loud(512))
    assert_allclose(rec.push(loud(512)).probs, [0, 0.75, 0.25])


def test_bad_arguments():
    with pytest.raises(ParameterError, match='class names'):
        realtime.Recognizer(FixedModel([]), NAMES[:2], CONFIG)
    with pytest.raises(ParameterError):
        realtime.Recognizer(FixedModel([]), NAMES, CONFIG, ema=2.0)


def test_output_formats():
    p = realtime.Prediction(3.5, np.array([0.1, 0.7, 0.2]), 1, 'music',
                            'alpha')
    lines = realtime.render(p, NAMES, width=10)
    assert lines[0].startswith('heard    3.5 s   now: alpha (70%)')
    assert lines[2] == '  alpha                70.0% |#######   |'
    assert realtime.plain_line(p).endswith(' alpha 0.700')
    record = json.loads(realtime.json_line(p, NAMES))
    assert record['name'] == 'alpha' and record['probs']['beta'] == 0.2


class Devices(object):
    """A PyAudio-shaped list of devices, to test the device choice."""

    def __init__(self, devices, default=None):
        self.devices = devices
        self.default = default

    def get_device_count(self):
        return len(self.devices)

    def get_device_info_by_index(self, i):
        name, inputs = self.devices[i]
        return {'index': i, 'name': name, 'maxInputChannels': inputs,
                'defaultSampleRate': 44100.0}

    def get_default_input_device_info(self):
        if self.default is None:
            raise IOError('no default input')
        return self.get_device_info_by_index(self.default)


def test_input_device_choice():
    from music_classification.errors import AudioFileError
    pa = Devices([('hdmi', 0), ('USB mic', 1), ('pulse', 32)], default=2)
    assert realtime.find_input_device(pa) == 2
    assert realtime.find_input_device(pa, 'usb') == 1
    assert realtime.find_input_device(pa, '1') == 1
    assert realtime.list_input_devices(pa) == [(1, 'USB mic', 1, 44100),
                                               (2, 'pulse', 32, 44100)]
    assert realtime.find_input_device(Devices(pa.devices)) == 1
    with pytest.raises(AudioFileError, match="no input device 'hdmi'.*USB"):
        realtime.find_input_device(pa, 'hdmi')
    with pytest.raises(AudioFileError, match="no input device '0'"):
        realtime.find_input_device(pa, '0')
    with pytest.raises(AudioFileError, match='no audio input device found'):
        realtime.find_input_device(Devices([('hdmi', 0)]))


@pytest.mark.parametrize('bits, raw, expected', [
    (16, np.array([0, 1, -1, 32767, -32768, 16384], '<i2'),
     [0, 1 / 32768, -1 / 32768, 32767 / 32768, -1.0, 0.5]),
    (8, np.array([0, 1, -1, 127, -128, 64], np.int8),
     [0, 1 / 128, -1 / 128, 127 / 128, -1.0, 0.5]),
])
def test_pcm_to_float(bits, raw, expected):
    got = realtime.pcm_to_float(raw.tobytes(), bits)
    assert got.dtype == np.float32
    assert_allclose(got, expected, rtol=0, atol=1e-9)
    with pytest.raises(ParameterError, match='bits must be 8 or 16'):
        realtime.pcm_to_float(raw.tobytes(), 24)


@pytest.mark.parametrize('pad_mode', ['reflect', 'constant'])
def test_random_audio_in_odd_chunks_gives_the_full_features(rng, pad_mode):
    # The recognizer's network input after odd-sized chunks of random audio
    # is log_melspectrogram of the last window heard.
    from music_classification import log_melspectrogram
    config = FeatureConfig(length=40, pad_mode=pad_mode)
    model = FixedModel([[0.2, 0.3, 0.5]] * 50)
    model.input_shape = config.input_shape
    rec = realtime.Recognizer(model, NAMES, config, every=0.2)
    y = (0.3 * rng.standard_normal(5 * 16000)).astype(np.float32)
    heard = []
    start = 0
    for size in [700, 1500, 333, 2048, 999, 4100] * 20:
        piece = y[start:start + size]
        start += size
        heard.append(piece)
        if rec.push(piece) is not None:
            # a window that is not full yet starts with silence
            usable = np.concatenate([np.zeros(config.window_samples)]
                                    + heard)
            usable = usable[:config.window_samples + rec.samples_heard]
            window = usable[-config.window_samples:].astype(np.float32)
            assert_allclose(model.inputs[-1], log_melspectrogram(
                y=window, n_mels=256, pad_mode=pad_mode), rtol=1e-4,
                atol=2e-5)
        if start >= len(y):
            break
    assert len(model.inputs) >= 10


@pytest.mark.parametrize('db, state', [(-59.5, 'music'), (-60.5, 'silence')])
def test_silence_threshold_is_minus_60_dbfs(db, state):
    rms = 10 ** (db / 20)
    rec = realtime.Recognizer(FixedModel([[0.1, 0.8, 0.1]]), NAMES, CONFIG,
                              every=CONFIG.window_samples / 16000)
    sign = np.where(np.arange(CONFIG.window_samples) % 2, 1.0, -1.0)
    prediction = rec.push((rms * sign).astype(np.float32))
    assert prediction.state == state


def test_one_threshold_default_for_library_and_command_line():
    import inspect
    import subprocess
    assert realtime.THRESHOLD == 0.5
    signature = inspect.signature(realtime.Recognizer)
    assert signature.parameters['threshold'].default == realtime.THRESHOLD
    rec = realtime.Recognizer(FixedModel([[0.0, 0.45, 0.55]]), NAMES,
                              CONFIG, every=0.032)
    assert rec.push(loud(512)).name == 'beta'
    rec = realtime.Recognizer(FixedModel([[0.1, 0.45, 0.45]]), NAMES,
                              CONFIG, every=0.032)
    assert rec.push(loud(512)).name == 'unknown'
    help_text = subprocess.run(cli('listen') + ['--help'],
                               capture_output=True, text=True).stdout
    assert '(default 0.5)' in ' '.join(help_text.split())


def test_list_devices_says_when_there_is_none(monkeypatch, capsys):
    # A PyAudio-shaped object with no input (as on a machine without a
    # sound card or PulseAudio): one line on stderr, a non-zero exit.
    class NoInputs(Devices):
        def terminate(self):
            self.terminated = True
    pa = NoInputs([('hdmi', 0)])
    monkeypatch.setattr(realtime, 'open_pyaudio', lambda: pa)
    from music_classification.cli import listen
    with pytest.raises(SystemExit) as exit_:
        listen.main(['--list-devices'])
    assert exit_.value.code == (
        'music-classification listen: no audio input device found (is a '
        'microphone connected, or PulseAudio running?)')
    assert pa.terminated and capsys.readouterr().out == ''


def test_audio_queue_drops_the_oldest_and_counts_it():
    import queue as queue_module
    buffers = realtime.AudioQueue(max_buffers=3)
    for k in range(5):
        buffers.put(bytes([k]), frames=100)
    assert len(buffers) == 3 and buffers.dropped_frames == 200
    assert [buffers.get(timeout=0.1) for _ in range(3)] == [
        b'\x02', b'\x03', b'\x04']
    with pytest.raises(queue_module.Empty):
        buffers.get(timeout=0.05)
    with pytest.raises(ParameterError):
        realtime.AudioQueue(0)
