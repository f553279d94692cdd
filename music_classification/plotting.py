"""Figures from arrays: no file reading, no ``plt.show()``, no global state.

Each function takes an optional ``ax`` (a new figure is made without one)
and returns the artist it drew, as ``librosa.display.specshow`` does; the
figure is ``artist.axes.figure``.

* :func:`plot_melspectrogram`: the article's picture.
* :func:`plot_network_input`: the 256 x 321 window the network sees.
* :func:`plot_augmentation`: a window before and after noise and volume.
* :func:`plot_training_curves`: loss and accuracy from a training log.
* :func:`plot_confusion`: an evaluation's confusion matrix.
* :func:`plot_timeline`: class probabilities over a recording.
"""

import numpy as np

from music_classification.features import FeatureConfig


def _axes(ax, figsize):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure
    return Figure(figsize=figsize).subplots()


def _colorbar(image, ax, **kwargs):
    return ax.figure.colorbar(image, ax=ax, **kwargs)


def plot_melspectrogram(*, y, sr=16000, n_fft=2048, n_mels=128, ax=None):
    """The article's figure: a mel spectrogram in dB over time.

    As ``music2melspec.py`` drew it: ``librosa.feature.melspectrogram(y,
    sr, n_fft=2048, n_mels=128)``, ``power_to_db(S, ref=np.max)``,
    ``specshow(x_axis='time', y_axis='mel')``, colour bar ``%+2.0f dB``. Two
    slips of the article's listing are fixed: it passed ``fmax=fs`` (the mel
    bands stop at ``fs / 2``, so its frequency axis was stretched) and no
    ``sr`` (so its time axis assumed 22,050 Hz).

    Args:
        y (numpy.ndarray): ``(n_samples,)`` float waveform.
        sr (int): its sample rate in Hz.

    Returns:
        matplotlib.collections.QuadMesh: the image.
    """
    import librosa
    import librosa.display
    S = librosa.feature.melspectrogram(y=np.asarray(y, dtype=np.float32),
                                       sr=sr, n_fft=n_fft, n_mels=n_mels,
                                       pad_mode='reflect')
    ax = _axes(ax, (10, 4))
    image = librosa.display.specshow(
        librosa.power_to_db(S, ref=np.max), x_axis='time', y_axis='mel',
        sr=sr, hop_length=n_fft // 4, fmax=sr / 2, ax=ax)
    _colorbar(image, ax, format='%+2.0f dB')
    ax.set_title('Mel spectrogram ({} bands)'.format(n_mels))
    return image


def plot_network_input(x, *, config=None, ax=None, title=None):
    """One window of features as the network sees it.

    Args:
        x (numpy.ndarray): ``(n_mels, frames)`` (or ``(1, 1, n_mels,
            frames)``) features, e.g. ``log(1 + mel)``.
        config (FeatureConfig): the parameters that made ``x`` (axes in
            seconds and Hz).

    Returns:
        matplotlib.collections.QuadMesh: the image.
    """
    import librosa.display
    config = config or FeatureConfig()
    x = np.asarray(x).reshape(x.shape[-2:])
    ax = _axes(ax, (10, 4))
    image = librosa.display.specshow(
        x, x_axis='time', y_axis='mel', sr=config.sr,
        hop_length=config.hop_length, fmin=config.fmin,
        fmax=config.fmax or config.sr / 2, ax=ax)
    label = {'log1p': 'log(1 + mel power)', 'sqrt': 'sqrt(mel power)',
             'none': 'mel power'}[config.compression]
    _colorbar(image, ax, label=label)
    ax.set_title(title or 'network input {} x {} ({})'.format(
        x.shape[0], x.shape[1], label))
    return image


def plot_augmentation(clean, augmented, *, config=None, fig=None):
    """A window's features before and after augmentation, side by side.

    Args:
        clean, augmented: ``(n_mels, frames)`` features of the same window.

    Returns:
        list of matplotlib.collections.QuadMesh: the two images (same colour
        scale).
    """
    if fig is None:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2, sharey=True)
    images = [plot_network_input(x, config=config, ax=ax, title=t)
              for x, ax, t in ((clean, axes[0], 'clean'),
                               (augmented, axes[1],
                                'noise x U(0.001, 3), volume x U(0.1, 1)'))]
    high = max(float(np.max(clean)), float(np.max(augmented)))
    for image in images:
        image.set_clim(0, high)
    fig.tight_layout()
    return images


def plot_training_curves(log, *, keys=('main/loss', 'validation/main/loss',
                                       'main/accuracy',
                                       'validation/main/accuracy'),
                         fig=None):
    """Loss and accuracy against iterations from a training run's log.

    Args:
        log (list of dict): the entries of Chainer's ``LogReport`` file
            (``json.load`` of ``OUT/log``).

    Returns:
        list of matplotlib.lines.Line2D: the curves drawn.
    """
    if fig is None:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(10, 3.5))
    loss_ax, acc_ax = fig.subplots(1, 2)
    lines = []
    for key in keys:
        points = [(e['iteration'], e[key]) for e in log if key in e]
        if not points:
            continue
        ax = loss_ax if key.endswith('loss') else acc_ax
        it, value = zip(*points)
        lines += ax.plot(it, value, marker='.' if len(it) < 30 else None,
                         label=key)
    for ax, name in ((loss_ax, 'loss'), (acc_ax, 'accuracy')):
        ax.set_xlabel('iteration')
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    acc_ax.set_ylim(0, 1)
    fig.tight_layout()
    return lines


def plot_confusion(confusion, class_names, *, ax=None, normalize=True):
    """A confusion matrix (rows: true class, columns: predicted).

    Args:
        confusion (array-like): ``(n, n)`` counts.
        class_names (list of str): the ``n`` class names.
        normalize (bool): colour by the share of each true class's clips.

    Returns:
        matplotlib.image.AxesImage: the image (its ``axes.figure`` is the
        figure to save).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    ax = _axes(ax, (1.2 + 0.8 * len(class_names),) * 2)
    rows = confusion.sum(axis=1, keepdims=True)
    shown = np.divide(confusion, rows, out=np.zeros_like(confusion),
                      where=rows > 0) if normalize else confusion
    image = ax.imshow(shown, cmap='Blues', vmin=0,
                      vmax=1 if normalize else None)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks)
    ax.set_xticklabels(class_names, rotation=45, ha='right')
    ax.set_yticks(ticks)
    ax.set_yticklabels(class_names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    for i in ticks:
        for j in ticks:
            ax.text(j, i, '{:d}'.format(int(confusion[i, j])), ha='center',
                    va='center', color='white' if shown[i, j] > 0.5 * (
                        shown.max() or 1) else 'black', fontsize=8)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                       label='share of true class' if normalize else 'clips')
    ax.figure.tight_layout()
    return image


def plot_timeline(times, probs, class_names, *, ax=None, title=None):
    """Class probabilities over a recording (an "artistgram").

    Args:
        times (array-like): ``(n,)`` times in seconds (window centres).
        probs (array-like): ``(n, n_classes)`` probabilities.
        class_names (list of str): the class names.

    Returns:
        list of matplotlib.collections.PolyCollection: the stacked areas.
    """
    times = np.asarray(times, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    ax = _axes(ax, (8, 3))
    if len(times) == 1:  # one window: show it as a step of its length
        times = np.array([times[0], times[0] + 1.0])
        probs = np.repeat(probs, 2, axis=0)
    areas = ax.stackplot(times, probs.T, labels=class_names)
    ax.set_xlim(times[0], times[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel('time (s)')
    ax.set_ylabel('probability')
    if title:
        ax.set_title(title)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.figure.tight_layout()
    return areas
