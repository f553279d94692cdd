"""A synthetic music collection for demos, tests and notebooks.

:func:`make_demo_dataset` writes, deterministically from a seed, a small data
set in the training layout::

    ROOT/music/<artist>/<song>.wav   one folder per artist (labels 1..N in
                                      sorted name order)
    ROOT/other/<sound>.wav           short non-music sounds (label 0)
    ROOT/noise.npy                   room noise, signed 8-bit like the
                                      original's noise/noise.npy

Each synthetic "artist" has a style of its own: instrument timbre, key and
scale, tempo, rhythm pattern, register and drums. Every song of an artist
draws a new melody, bass line and arrangement from that style, so telling
artists apart means recognising the style, not memorising a waveform. The
"Other" sounds are knocks, footsteps, mains hum, clicks, a washing-machine
rumble and a door creak; READ_DATASET2 adds the silent clip itself.
"""

import dataclasses
import json
import os

import numpy as np

from music_classification.errors import ParameterError
from music_classification.serialization import (atomic_write, save_json,
                                                save_wav)

SAMPLE_RATE = 16000
#: Semitones of the scales the artists use.
SCALES = {
    'major_pentatonic': (0, 2, 4, 7, 9),
    'natural_minor': (0, 2, 3, 5, 7, 8, 10),
    'dorian': (0, 2, 3, 5, 7, 9, 10),
    'whole_tone': (0, 2, 4, 6, 8, 10),
    'blues': (0, 3, 5, 6, 7, 10),
}


@dataclasses.dataclass(frozen=True)
class ArtistStyle:
    """What makes a synthetic artist recognisable."""

    name: str
    timbre: str          # 'flute', 'organ', 'pluck', 'bell' or 'brass'
    tonic: int           # MIDI note of the key's tonic
    scale: str           # a key of SCALES
    tempo: float         # beats per minute
    rhythm: tuple        # note lengths in beats, cycled with variations
    register: tuple      # (lowest, highest) MIDI note of the melody
    drums: str           # 'none', 'kick', 'backbeat' or 'hats'
    bass: bool           # a bass line on the tonic and fifth


ARTISTS = (
    ArtistStyle('aurora_flutes', 'flute', 67, 'major_pentatonic', 72.0,
                (1.0, 0.5, 0.5, 2.0), (72, 88), 'none', False),
    ArtistStyle('basalt_organ', 'organ', 57, 'natural_minor', 100.0,
                (1.0, 1.0, 1.0, 1.0), (57, 72), 'kick', True),
    ArtistStyle('cinder_plucks', 'pluck', 52, 'dorian', 140.0,
                (0.5, 0.5, 0.5, 0.25, 0.25), (48, 64), 'hats', True),
    ArtistStyle('delta_bells', 'bell', 60, 'whole_tone', 60.0,
                (1.5, 0.5, 1.0, 1.0), (76, 91), 'none', False),
    ArtistStyle('ember_brass', 'brass', 53, 'blues', 120.0,
                (0.75, 0.25, 0.5, 0.5, 1.0), (53, 70), 'backbeat', True),
)

#: Non-music sounds of the "Other" class.
OTHER_KINDS = ('knock', 'steps', 'hum', 'clicks', 'washer', 'creak')


def midi_to_hz(note):
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69) / 12.0)


def _tone(timbre, freq, n, sr, rng):
    """One note of ``n`` samples at ``freq`` Hz, peak about 1."""
    t = np.arange(n) / sr
    if timbre == 'flute':
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * freq * np.cumsum(vibrato) / sr
        wave = (np.sin(phase) + 0.2 * np.sin(2 * phase)
                + 0.05 * np.sin(3 * phase))
        env = np.minimum(1, t / 0.08) * np.exp(-t * 0.8)
        wave += 0.02 * rng.standard_normal(n) * env  # breath
    elif timbre == 'organ':
        wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in (1, 3, 5, 7)
                   if k * freq < sr / 2)
        env = np.minimum(1, t / 0.01) * np.minimum(1, (n / sr - t) / 0.02)
    elif timbre == 'pluck':
        wave = sum(np.sin(2 * np.pi * k * freq * t) * np.exp(-t * 3 * k)
                   / k ** 1.2 for k in range(1, 9) if k * freq < sr / 2)
        env = np.exp(-t * 4.0)
    elif timbre == 'bell':
        mod = 2.0 * np.exp(-t * 2) * np.sin(2 * np.pi * 1.4 * freq * t)
        wave = np.sin(2 * np.pi * freq * t + mod)
        env = np.exp(-t * 1.5)
    elif timbre == 'brass':
        bright = np.minimum(1, t / 0.12)
        wave = sum(np.sin(2 * np.pi * k * freq * t) / k * bright ** (k - 1)
                   for k in range(1, 12) if k * freq < sr / 2)
        env = np.minimum(1, t / 0.05) * np.minimum(1, (n / sr - t) / 0.05)
    else:
        raise ParameterError('unknown timbre {!r}'.format(timbre))
    return wave * env / max(1e-9, np.max(np.abs(wave * env)))


def _drum(kind, n, sr, rng):
    t = np.arange(n) / sr
    if kind == 'kick':
        return np.sin(2 * np.pi * 50 * t * (1 + 2 * np.exp(-t * 30))) \
            * np.exp(-t * 12)
    if kind == 'snare':
        return rng.standard_normal(n) * np.exp(-t * 25) * 0.7
    # hi-hat: bright noise, very short
    hat = np.diff(rng.standard_normal(n + 1))
    return hat * np.exp(-t * 80) * 0.3


def _add(out, start, sound):
    end = min(len(out), start + len(sound))
    if start < end:
        out[start:end] += sound[:end - start]


def synthesize_song(style, *, seed, seconds=40.0, sr=SAMPLE_RATE):
    """One song in an artist's style.

    Returns:
        numpy.ndarray: ``(seconds * sr,)`` float32 with peak 0.8.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n)
    beat = 60.0 / style.tempo
    scale = np.array(SCALES[style.scale])
    low, high = style.register
    notes = np.array([style.tonic + 12 * o + s for o in range(-4, 5)
                      for s in scale])
    notes = notes[(notes >= low) & (notes <= high)]
    # The melody: a random walk over the scale, in the artist's rhythm.
    pos, time_s, step = rng.integers(len(notes)), 0.0, 0
    while time_s < seconds:
        length = style.rhythm[step % len(style.rhythm)] * beat
        if rng.random() < 0.15:
            length *= 2
        step += 1
        pos = int(np.clip(pos + rng.integers(-2, 3), 0, len(notes) - 1))
        if rng.random() < 0.1:  # a rest
            time_s += length
            continue
        m = int(length * sr * (1.4 if style.timbre in ('pluck', 'bell')
                               else 0.95))
        _add(out, int(time_s * sr),
             0.5 * _tone(style.timbre, midi_to_hz(notes[pos]), m, sr, rng))
        time_s += length
    if style.bass:
        bar = 4 * beat
        for k, time_s in enumerate(np.arange(0, seconds, bar / 2)):
            root = style.tonic - 24 + (7 if k % 4 == 2 else 0)
            m = int(bar / 2 * sr * 0.9)
            _add(out, int(time_s * sr),
                 0.35 * _tone('organ' if style.timbre != 'organ' else 'pluck',
                              midi_to_hz(root), m, sr, rng))
    beats = np.arange(0, seconds, beat)
    for k, time_s in enumerate(beats):
        start = int(time_s * sr)
        if style.drums in ('kick', 'backbeat') and k % 2 == 0:
            _add(out, start, 0.6 * _drum('kick', int(0.3 * sr), sr, rng))
        if style.drums == 'backbeat' and k % 2 == 1:
            _add(out, start, 0.4 * _drum('snare', int(0.2 * sr), sr, rng))
        if style.drums == 'hats':
            for half in (0, 1):
                _add(out, start + int(half * beat / 2 * sr),
                     _drum('hat', int(0.05 * sr), sr, rng))
            if k % 4 == 0:
                _add(out, start, 0.5 * _drum('kick', int(0.3 * sr), sr, rng))
    out *= 0.8 / max(1e-9, np.max(np.abs(out)))
    return out.astype(np.float32)


def synthesize_other(kind, *, seed, sr=SAMPLE_RATE):
    """One non-music sound of the "Other" class (1 to 12 seconds).

    Args:
        kind (str): one of :data:`OTHER_KINDS`.
    """
    rng = np.random.default_rng(seed)
    if kind == 'knock':
        out = np.zeros(int(rng.uniform(1.0, 2.5) * sr))
        pos = int(0.1 * sr)
        for _ in range(rng.integers(2, 5)):
            m = int(0.08 * sr)
            t = np.arange(m) / sr
            f = rng.uniform(150, 400)
            _add(out, pos, np.sin(2 * np.pi * f * t) * np.exp(-t * 60)
                 + 0.3 * rng.standard_normal(m) * np.exp(-t * 120))
            pos += int(rng.uniform(0.15, 0.3) * sr)
    elif kind == 'steps':
        out = np.zeros(int(rng.uniform(3.0, 6.0) * sr))
        pos = int(0.2 * sr)
        while pos < len(out):
            m = int(0.12 * sr)
            t = np.arange(m) / sr
            thud = np.convolve(rng.standard_normal(m), np.ones(40) / 40,
                               'same') * np.exp(-t * 40)
            _add(out, pos, thud * rng.uniform(0.5, 1.0))
            pos += int(rng.uniform(0.45, 0.6) * sr)
    elif kind == 'hum':
        n = int(rng.uniform(2.0, 4.0) * sr)
        t = np.arange(n) / sr
        f0 = rng.choice([50.0, 60.0])
        out = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3, 4)) \
            + 0.05 * rng.standard_normal(n)
    elif kind == 'clicks':
        out = np.zeros(int(rng.uniform(1.5, 3.0) * sr))
        for pos in rng.integers(0, len(out) - 100, rng.integers(5, 20)):
            out[pos:pos + 30] += rng.standard_normal(30) * np.exp(
                -np.arange(30) / 5)
    elif kind == 'washer':
        n = int(rng.uniform(10.0, 12.0) * sr)
        t = np.arange(n) / sr
        rumble = np.convolve(rng.standard_normal(n), np.ones(200) / 200,
                             'same')
        out = rumble * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.7, 1.3)
                                         * t)) \
            + 0.2 * np.sin(2 * np.pi * 25 * t)
    elif kind == 'creak':
        n = int(rng.uniform(1.0, 2.0) * sr)
        t = np.arange(n) / sr
        pitch = 80 + 60 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t) ** 2
        phase = 2 * np.pi * np.cumsum(pitch) / sr
        out = ((phase / (2 * np.pi)) % 1.0 - 0.5) * np.minimum(1, t / 0.1) \
            * np.minimum(1, (n / sr - t) / 0.2)
    else:
        raise ParameterError('unknown sound kind {!r}; one of {}'.format(
            kind, OTHER_KINDS))
    out *= rng.uniform(0.3, 0.9) / max(1e-9, np.max(np.abs(out)))
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class DemoDataset:
    """Where :func:`make_demo_dataset` put things."""

    root: str
    music_dir: str
    other_dir: str
    noise_path: str
    artists: tuple
    songs: dict  # artist name -> list of song paths

    @property
    def class_names(self):
        """``['Other', artist1, artist2, ...]``, index = label."""
        return ['Other'] + list(self.artists)


def make_demo_dataset(root, *, seed=0, n_artists=4, songs_per_artist=3,
                      song_seconds=40.0, sr=SAMPLE_RATE, subtype='PCM_16'):
    """Write the synthetic data set under ``root`` (idempotent).

    Files are written under temporary names and renamed. A ``manifest.json``
    records the arguments; calling again with the same arguments reuses the
    files, with other arguments rewrites them.

    Args:
        root (str): folder to write to (created).
        seed (int): everything follows from it.
        n_artists (int): 2 to 5 artists, from :data:`ARTISTS`.
        songs_per_artist (int): songs per artist.
        song_seconds (float): length of each song.
        sr (int): sample rate of the files in Hz.
        subtype (str): soundfile subtype: ``'PCM_16'`` or ``'PCM_U8'`` (the
            original's 8-bit unsigned).

    Returns:
        DemoDataset: the paths and artist names.
    """
    if not 2 <= n_artists <= len(ARTISTS):
        raise ParameterError('n_artists must be 2..{}, got {}'.format(
            len(ARTISTS), n_artists))
    if songs_per_artist < 1 or song_seconds <= 0:
        raise ParameterError('need songs_per_artist >= 1 and song_seconds > 0')
    root = os.fspath(root)
    music_dir = os.path.join(root, 'music')
    other_dir = os.path.join(root, 'other')
    noise_path = os.path.join(root, 'noise.npy')
    styles = ARTISTS[:n_artists]
    songs = {s.name: [os.path.join(music_dir, s.name,
                                   'song_{:02d}.wav'.format(k))
                      for k in range(songs_per_artist)] for s in styles}
    result = DemoDataset(root, music_dir, other_dir, noise_path,
                         tuple(s.name for s in styles), songs)
    params = dict(seed=seed, n_artists=n_artists,
                  songs_per_artist=songs_per_artist,
                  song_seconds=song_seconds, sr=sr, subtype=subtype, version=1)
    manifest = os.path.join(root, 'manifest.json')
    if os.path.exists(manifest):
        with open(manifest) as f:
            if json.load(f) == params:
                return result
        os.remove(manifest)
    for a, style in enumerate(styles):
        for k, path in enumerate(songs[style.name]):
            y = synthesize_song(style, seed=(seed, a, k), seconds=song_seconds,
                                sr=sr)
            save_wav(path, y, sr, subtype)
    for i, kind in enumerate(OTHER_KINDS):
        for v in range(2):
            y = synthesize_other(kind, seed=(seed, 1000 + i, v), sr=sr)
            save_wav(os.path.join(other_dir, '{}_{}.wav'.format(kind, v)),
                       y, sr, subtype)
    # Room noise in the original's format: signed 8-bit samples.
    from music_classification.augment import default_noise
    noise = np.clip(np.round(default_noise(sr=sr, seed=seed) * 128),
                    -128, 127).astype(np.int8)
    atomic_write(noise_path, lambda tmp: _write_npy(tmp, noise))
    save_json(manifest, params)
    return result


def _write_npy(path, array):
    with open(path, 'wb') as f:  # np.save(path) would append '.npy'
        np.save(f, array)

