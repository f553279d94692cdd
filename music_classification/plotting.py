"""Figures from arrays: no file reading, no ``plt.show()``, no global state.

Each function takes an optional ``ax`` and returns the artist it drew (or
the figure), as ``librosa.display.specshow`` does.
"""

import numpy as np


def _axes(ax, figsize):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure
    return Figure(figsize=figsize).subplots()


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
