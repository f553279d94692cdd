"""Realtime recognition from a microphone (or any stream of chunks).

* :class:`Recognizer` is the pure part: it takes float chunks, keeps the
  original's rolling window of 160 chunks with :class:`~music_classification.
  features.StreamingLogMel` (a few STFT frames per chunk instead of 321),
  runs the network every ``every`` seconds of audio, smooths the
  probabilities and decides what is heard: an artist, ``unknown`` (below the
  threshold), ``Other`` (the model's non-music class) or ``silence``.
* :class:`Microphone` is the I/O edge: a PyAudio input stream at 16 kHz
  mono, 16-bit (or the original's 8-bit), read in callback mode so that input
  overflows are counted instead of raised; a device that cannot record at
  16 kHz is opened at its own rate and resampled (soxr).
* :func:`render`, :func:`plain_line` and :func:`json_line` format a
  prediction for the terminal, logs and pipes.
"""

import collections
import contextlib
import dataclasses
import datetime
import json
import os
import queue
import threading

import chainer
import numpy as np

from music_classification import augment
from music_classification.errors import AudioFileError, ParameterError
from music_classification.features import FeatureConfig, StreamingLogMel

SILENCE = 'silence'
UNKNOWN = 'unknown'
#: Below this smoothed probability an artist is reported as "unknown", in
#: the library and on the command line alike.
THRESHOLD = 0.5


@dataclasses.dataclass
class Prediction:
    """What the recognizer heard at one moment."""

    time: float          # seconds of audio heard so far
    probs: np.ndarray    # smoothed class probabilities
    label: int           # most probable class
    state: str           # 'music', 'Other', 'unknown' or 'silence'
    name: str            # class name, or 'unknown' / 'silence'

    @property
    def probability(self):
        return float(self.probs[self.label])


class Recognizer(object):
    """Rolling-window recognition over a stream of audio chunks.

    Args:
        model (MUSIC_NET): trained network (on the CPU or a GPU).
        class_names (list of str): ``['Other', artist1, ...]``.
        config (FeatureConfig): the model's feature parameters.
        every (float): seconds of audio between predictions.
        smooth (int): average the last ``smooth`` predictions.
        ema (float or None): instead, an exponential average with this
            weight on the newest prediction (0 < ema <= 1).
        threshold (float): below this probability an artist is "unknown"
            (default :data:`THRESHOLD`, as ``predict_realtime.py``).
        silence_db (float): a window quieter than this RMS (dBFS) is
            reported as "silence", whatever the network says.
    """

    def __init__(self, model, class_names, config=None, *, every=1.0,
                 smooth=1, ema=None, threshold=THRESHOLD,
                 silence_db=-60.0):
        self.model = model
        self.class_names = list(class_names)
        self.config = config or FeatureConfig()
        if len(self.class_names) != model.n_classes:
            raise ParameterError('{} class names for a model with {} outputs'
                                 .format(len(self.class_names),
                                         model.n_classes))
        if every <= 0 or smooth < 1 or (ema is not None
                                         and not 0 < ema <= 1):
            raise ParameterError('need every > 0, smooth >= 1, 0 < ema <= 1')
        self.stream = StreamingLogMel(self.config)
        hop = self.config.hop_length
        self.every_samples = max(hop, int(round(every * self.config.sr
                                                / hop)) * hop)
        self.history = collections.deque(maxlen=int(smooth))
        self.ema = ema
        self.smoothed = None
        self.threshold = threshold
        self.silence_rms = 10.0 ** (silence_db / 20.0)
        self.samples_heard = 0
        self._since = 0
        self._pending = np.zeros(0, np.float32)

    def warm_up(self):
        """One prediction on silence, so that the first real one is fast."""
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            self.model.predict(self.model.xp.asarray(self.stream.features()))

    def push(self, samples):
        """Add samples; return a :class:`Prediction` when one is due."""
        samples = np.concatenate([self._pending,
                                  np.asarray(samples, np.float32)])
        hop = self.config.hop_length
        usable = len(samples) - len(samples) % hop
        self._pending = samples[usable:]
        if not usable:
            return None
        self.stream.push(samples[:usable])
        self.samples_heard += usable
        self._since += usable
        if self._since < self.every_samples:
            return None
        self._since = 0
        return self.predict_now()

    def predict_now(self):
        """Predict from the current window."""
        window = self.stream.window
        rms = augment.rms(window)
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            x = self.model.xp.asarray(self.stream.features())
            probs = chainer.backend.CpuDevice().send(
                self.model.predict(x).array)[0]
        self.history.append(probs)
        if self.ema is not None:
            self.smoothed = probs if self.smoothed is None else \
                self.ema * probs + (1 - self.ema) * self.smoothed
            smoothed = self.smoothed
        else:
            smoothed = np.mean(self.history, axis=0)
        label = int(np.argmax(smoothed))
        if rms < self.silence_rms:
            state, name = SILENCE, SILENCE
        elif label == 0:
            state, name = self.class_names[0], self.class_names[0]
        elif smoothed[label] < self.threshold:
            state, name = UNKNOWN, UNKNOWN
        else:
            state, name = 'music', self.class_names[label]
        return Prediction(self.samples_heard / self.config.sr, smoothed,
                          label, state, name)


def render(prediction, class_names, width=40):
    """Lines for a live terminal display: the verdict and a bar per class."""
    lines = ['heard {:6.1f} s   now: {} ({:.0%})'.format(
        prediction.time, prediction.name, prediction.probability)]
    for name, p in zip(class_names, prediction.probs):
        bar = '#' * int(round(p * width))
        lines.append('  {:<20.20} {:5.1%} |{:<{w}}|'.format(name, p, bar,
                                                            w=width))
    return lines


def plain_line(prediction, now=None):
    """One line with a timestamp, for logs."""
    now = now or datetime.datetime.now()
    return '{} {} {:.3f}'.format(now.isoformat(timespec='seconds'),
                                 prediction.name, prediction.probability)


def json_line(prediction, class_names, now=None):
    """One JSON object per prediction (JSON lines)."""
    now = now or datetime.datetime.now()
    return json.dumps({
        'time': now.isoformat(timespec='milliseconds'),
        'audio_seconds': round(prediction.time, 3),
        'state': prediction.state, 'name': prediction.name,
        'probability': round(prediction.probability, 4),
        'probs': {n: round(float(p), 4)
                  for n, p in zip(class_names, prediction.probs)}})


def list_input_devices(pa):
    """``(index, name, channels, default rate)`` of every input device."""
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if info.get('maxInputChannels', 0) > 0:
            devices.append((i, info['name'], int(info['maxInputChannels']),
                            int(info['defaultSampleRate'])))
    return devices


def find_input_device(pa, spec=None):
    """The input device index for ``spec`` (an index, a name part, or None).

    Raises:
        AudioFileError: no input device, or none matches ``spec``.
    """
    devices = list_input_devices(pa)
    if not devices:
        raise AudioFileError('no audio input device found (is a microphone '
                             'connected, or PulseAudio running?)')
    if spec is None:
        try:
            return int(pa.get_default_input_device_info()['index'])
        except (IOError, OSError):
            return devices[0][0]
    if str(spec).isdigit():
        if int(spec) in [d[0] for d in devices]:
            return int(spec)
    else:
        matches = [d[0] for d in devices if str(spec).lower() in d[1].lower()]
        if matches:
            return matches[0]
    raise AudioFileError('no input device {!r}; inputs are: {}'.format(
        spec, '; '.join('{} {}'.format(d[0], d[1]) for d in devices)))


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (ALSA and JACK print probing noise there
    while PortAudio looks for devices)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class AudioQueue(object):
    """A bounded queue of audio buffers that drops the oldest when full.

    The audio callback puts; the recognizer gets. When the recognizer lags,
    the oldest audio goes (counted in ``dropped_frames``), so that what it
    hears stays at most ``max_buffers`` buffers behind the microphone.
    """

    def __init__(self, max_buffers):
        if max_buffers < 1:
            raise ParameterError('max_buffers must be at least 1')
        self.max_buffers = int(max_buffers)
        self.dropped_frames = 0
        self._items = collections.deque()
        self._ready = threading.Condition()

    def put(self, data, frames):
        with self._ready:
            if len(self._items) >= self.max_buffers:
                _, old = self._items.popleft()
                self.dropped_frames += old
            self._items.append((data, frames))
            self._ready.notify()

    def get(self, timeout=None):
        """The oldest buffer; ``queue.Empty`` after ``timeout`` seconds."""
        with self._ready:
            if not self._items and not self._ready.wait_for(
                    lambda: self._items, timeout):
                raise queue.Empty
            return self._items.popleft()[0]

    def __len__(self):
        return len(self._items)


def pcm_to_float(data, bits):
    """PyAudio's signed PCM bytes (``paInt16`` or ``paInt8``) to [-1, 1).

    16-bit samples are divided by 32768, 8-bit ones by 128: the same scale
    as :func:`~music_classification.audio.load_audio` gives files.
    """
    if bits == 16:
        return np.frombuffer(data, '<i2').astype(np.float32) / 32768.0
    if bits == 8:
        return np.frombuffer(data, np.int8).astype(np.float32) / 128.0
    raise ParameterError('bits must be 8 or 16, got {}'.format(bits))


def open_pyaudio():
    """``pyaudio.PyAudio()`` without the ALSA/JACK probing messages."""
    import pyaudio
    with quiet_stderr():
        return pyaudio.PyAudio()


class Microphone(object):
    """Float chunks of ``chunk`` samples at ``rate`` Hz from PyAudio.

    Args:
        device (int, str or None): input device index or name part.
        rate (int): sample rate wanted (16000).
        chunk (int): samples per chunk delivered (1024).
        bits (int): 16 (``paInt16``) or 8 (``paInt8``, the original's PyAudio
            predictor); both become floats in [-1, 1].
        device_rate (int or None): record at this rate and resample to
            ``rate``; ``None`` uses ``rate`` where the device supports it and
            the device's default rate otherwise.

    ``overflows`` counts the callbacks PyAudio flagged with an input
    overflow (audio was lost); ``resampled`` tells whether the device runs
    at another rate. At most ``max_lag`` seconds of audio wait to be read:
    when the reader falls further behind, the oldest audio is dropped and
    counted (``dropped_seconds``), so the recognizer stays close to live.
    """

    def __init__(self, device=None, rate=16000, chunk=1024, bits=16,
                 device_rate=None, max_lag=2.0):
        import pyaudio
        if bits not in (8, 16):
            raise ParameterError('bits must be 8 or 16, got {}'.format(bits))
        self.rate, self.chunk, self.bits = rate, chunk, bits
        self.format = pyaudio.paInt16 if bits == 16 else pyaudio.paInt8
        self._pa = open_pyaudio()
        self.overflows = 0
        # At most max_lag seconds of audio wait for the recognizer.
        self._queue = AudioQueue(max(1, int(round(max_lag * rate / chunk))))
        self._pending = np.zeros(0, np.float32)
        try:
            self.device = find_input_device(self._pa, device)
            self.device_rate = int(device_rate or rate)
            try:
                self._pa.is_format_supported(
                    self.device_rate, input_device=self.device,
                    input_channels=1, input_format=self.format)
            except ValueError:
                if device_rate:
                    raise AudioFileError(
                        'input device {} cannot record at {} Hz'.format(
                            self.device, device_rate)) from None
                info = self._pa.get_device_info_by_index(self.device)
                self.device_rate = int(info['defaultSampleRate'])
            self.resampled = self.device_rate != rate
            self._resampler = None
            if self.resampled:
                import soxr
                self._resampler = soxr.ResampleStream(
                    self.device_rate, rate, 1, dtype='float32')
            frames = max(1, int(round(chunk * self.device_rate / rate)))
            with quiet_stderr():
                self._stream = self._pa.open(
                    format=self.format, channels=1, rate=self.device_rate,
                    input=True, input_device_index=self.device,
                    frames_per_buffer=frames, stream_callback=self._callback)
        except BaseException:
            self._pa.terminate()
            raise
        self.device_name = self._pa.get_device_info_by_index(
            self.device)['name']

    def _callback(self, data, frame_count, time_info, status):
        import pyaudio
        if status & pyaudio.paInputOverflow:
            self.overflows += 1
        self._queue.put(data, frame_count)
        return None, pyaudio.paContinue

    @property
    def dropped_seconds(self):
        """Audio dropped because the recognizer fell behind, in seconds."""
        return self._queue.dropped_frames / float(self.device_rate)

    def _to_float(self, data):
        return pcm_to_float(data, self.bits)

    def read(self, timeout=5.0):
        """The next chunk of ``chunk`` float32 samples.

        Raises:
            AudioFileError: no audio arrived within ``timeout`` seconds.
        """
        while len(self._pending) < self.chunk:
            try:
                data = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AudioFileError(
                    'no audio from input device {} ({}) for {} s'.format(
                        self.device, self.device_name, timeout)) from None
            y = self._to_float(data)
            if self._resampler is not None:
                y = self._resampler.resample_chunk(y)
            self._pending = np.concatenate([self._pending, y])
        out, self._pending = (self._pending[:self.chunk],
                              self._pending[self.chunk:])
        return out

    def close(self):
        """Stop and close the stream and PyAudio."""
        if self._stream is not None:
            try:
                self._stream.stop_stream()
            finally:
                self._stream.close()
                self._stream = None
                self._pa.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
