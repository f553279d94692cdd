"""Predictions over whole recordings with a trained MUSIC_NET."""

import chainer
import numpy as np

from music_classification import features as _features


def window_starts(n_samples, window, hop):
    """Start offsets of windows every ``hop`` samples (at least one)."""
    if n_samples <= window:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def predict_windows(model, y, *, config=None, hop_seconds=5.0, batch_size=8):
    """Class probabilities of windows every ``hop_seconds`` over ``y``.

    A recording shorter than one window is zero-padded at its end.

    Args:
        model (MUSIC_NET): the trained network (on any device).
        y (numpy.ndarray): ``(n_samples,)`` float waveform at ``config.sr``.
        config (FeatureConfig): feature parameters (the model's).
        hop_seconds (float): seconds between window starts.
        batch_size (int): windows per forward pass.

    Returns:
        tuple: ``(starts, probs)``: window starts in samples ``(n,)`` and
        probabilities ``(n, n_classes)`` as NumPy arrays.
    """
    config = config or _features.FeatureConfig()
    window = config.window_samples
    if len(y) < window:
        y = np.concatenate([y, np.zeros(window - len(y), dtype=y.dtype)])
    starts = window_starts(len(y), window,
                           max(1, int(round(hop_seconds * config.sr))))
    probs = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(0, len(starts), batch_size):
            waves = np.stack([y[s:s + window]
                              for s in starts[i:i + batch_size]])
            x = config(model.xp.asarray(waves))
            probs.append(chainer.backend.CpuDevice().send(
                model.predict(x).array))
    return starts, np.concatenate(probs)


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
