"""Predictions over whole recordings with a trained network."""

import math

import chainer
import numpy as np

from music_classification.errors import ParameterError
from music_classification.features import WINDOW_SAMPLES, FeatureConfig


def window_starts(n_samples, window, hop):
    """Start offsets of windows every ``hop`` samples (at least one)."""
    if n_samples <= window:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def predict_windows(model, y, *, config=None, hop_seconds=5.0,
                    clip_seconds=WINDOW_SAMPLES / 16000.0,
                    batch_size=8):
    """Class probabilities of clips every ``hop_seconds`` over ``y``.

    A clip is ``clip_seconds`` long (the original's 10.24 s window), or the
    model's window if that is longer. A model with shorter windows scores a
    clip by the mean probability of its windows every half window inside
    it (and one ending with the clip), so every model is scored on the
    same clips. A recording shorter
    than a clip is zero-padded at its end.

    Args:
        model: the trained network (on any device).
        y (numpy.ndarray): ``(n_samples,)`` float waveform at ``config.sr``.
        config (FeatureConfig): feature parameters (the model's).
        hop_seconds (float): seconds between clip starts.
        clip_seconds (float): seconds of audio one clip covers.
        batch_size (int): windows per forward pass.

    Returns:
        tuple: ``(starts, probs)``: clip starts in samples ``(n,)`` and
        probabilities ``(n, n_classes)`` as NumPy arrays.
    """
    config = config or FeatureConfig()
    window = config.window_samples
    y, starts, every = clip_windows(y, config=config, hop_seconds=hop_seconds,
                                    clip_seconds=clip_seconds)
    probs = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(0, len(every), batch_size):
            waves = np.stack([y[s:s + window]
                              for s in every[i:i + batch_size]])
            x = config(model.xp.asarray(waves))
            probs.append(chainer.backend.CpuDevice().send(
                model.predict(x).array))
    probs = np.concatenate(probs)  # (n_clips * per_clip, n_classes)
    probs = probs.reshape(len(starts), -1, probs.shape[-1])
    return starts, probs.mean(axis=1)


def check_hop(hop_seconds, config):
    """Refuse a hop between clips that is not finite or is shorter than
    one frame of ``config``'s features (a hop of 0, or of a few samples,
    would lay out clips almost without end).

    Raises:
        ParameterError: naming the shortest hop allowed.
    """
    shortest = config.hop_length / config.sr
    if not (math.isfinite(hop_seconds) and hop_seconds >= shortest):
        raise ParameterError(
            'the hop between clips must be finite and at least one feature '
            'frame ({:g} s), not {:g} s'.format(shortest, hop_seconds))


def clip_windows(y, *, config, hop_seconds=5.0,
                 clip_seconds=WINDOW_SAMPLES / 16000.0):
    """Where the windows that score ``y``'s clips start.

    The layout of :func:`predict_windows`: clips of ``clip_seconds`` (or
    the model's window, if longer) every ``hop_seconds``, and inside each
    the windows every half window and one ending with the clip.

    Args:
        y (numpy.ndarray): ``(n_samples,)`` waveform at ``config.sr``.
        config (FeatureConfig): feature parameters (the model's).
        hop_seconds (float): seconds between clip starts.
        clip_seconds (float): seconds of audio one clip covers.

    Returns:
        tuple: ``(y, starts, every)``: ``y`` zero-padded at its end to at
        least one clip, the clip starts ``(n_clips,)`` and the window
        starts ``(n_clips * per_clip,)``, clip-major, in samples.

    Raises:
        ParameterError: see :func:`check_hop`.
    """
    check_hop(hop_seconds, config)
    window = config.window_samples
    clip = max(window, int(round(clip_seconds * config.sr)))
    if len(y) < clip:
        y = np.concatenate([y, np.zeros(clip - len(y), dtype=y.dtype)])
    starts = window_starts(len(y), clip,
                           max(1, int(round(hop_seconds * config.sr))))
    inside = window_starts(clip, window, max(1, window // 2))
    if inside[-1] != clip - window:  # the clip's end is scored too
        inside = np.append(inside, clip - window)
    return y, starts, (starts[:, None] + inside[None, :]).ravel()


def song_vote(probs, exclude=(0,)):
    """The song's class: the largest mean probability over its windows.

    Args:
        probs (numpy.ndarray): ``(n_windows, n_classes)``.
        exclude (tuple): classes left out of the vote (by default "Other",
            so that quiet passages do not outvote the music; ``()`` lets a
            mostly non-music recording be called "Other").

    Returns:
        tuple: ``(label, probability, mean)``: the winning class, its mean
        probability and the mean probability of every class.
    """
    mean = probs.mean(axis=0)
    vote = mean.copy()
    vote[list(exclude)] = -np.inf
    label = int(np.argmax(vote))
    return label, float(mean[label]), mean
