"""Frozen-feature probes: how well pooled encoder features separate labelled
classes, without training the encoder.

Two cheap probes on a fixed train / val split of ``(N, C)`` features:

* :func:`knn_predict`: k-nearest neighbours by cosine similarity, majority
  vote (ties go to the smallest label);
* :func:`linear_probe_predict`: multinomial logistic regression
  (scikit-learn, L2, lbfgs) on features standardised with the training
  split's mean and std.

:func:`probe_accuracies` runs both and returns accuracies in [0, 1];
:func:`resplit_accuracies` repeats them on random re-splits to measure how
much the split alone moves an accuracy. :func:`pool_tokens` turns a ViT's
``(B, prefix + L, C)`` tokens into the ``(B, C)`` features. Used by
``tools/analysis_tools/time_to_accuracy.py`` (docs/en/benchmarks.md).
"""
import warnings
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

PROBES = ('knn', 'linear')


def pool_tokens(tokens: Tensor, num_prefix: int = 1,
                mode: str = 'avg') -> Tensor:
    """Pool encoder tokens into one feature vector per image.

    Args:
        tokens (Tensor): ``(B, num_prefix + L, C)``, class token first.
        num_prefix (int): Leading non-patch tokens (1 with a class token).
            Defaults to 1.
        mode (str): ``'avg'``: mean of the ``L`` patch tokens; ``'cls'``:
            the first token. Defaults to 'avg'.

    Returns:
        Tensor: ``(B, C)``.
    """
    if tokens.ndim != 3:
        raise ValueError(f'pool_tokens: expected (B, N, C) tokens, got '
                         f'{tuple(tokens.shape)}.')
    if mode == 'avg':
        if tokens.shape[1] <= num_prefix:
            raise ValueError('pool_tokens: no patch tokens to average.')
        return tokens[:, num_prefix:].mean(dim=1)
    if mode == 'cls':
        if num_prefix < 1:
            raise ValueError("pool_tokens: mode='cls' needs a class token.")
        return tokens[:, 0]
    raise ValueError(f"pool_tokens: mode must be 'avg' or 'cls', got "
                     f'{mode!r}.')


def _as_arrays(features, labels=None):
    x = features.detach().cpu().numpy() if isinstance(
        features, torch.Tensor) else np.asarray(features)
    x = x.astype(np.float64).reshape(len(x), -1)
    if labels is None:
        return x
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f'{len(x)} feature rows but {len(y)} labels.')
    return x, y


def knn_predict(train_features, train_labels, val_features,
                k: int = 20) -> np.ndarray:
    """k-NN classification by cosine similarity.

    The ``k`` training rows most similar to each val row vote, one vote
    each; the label with most votes wins, ties go to the smallest label.
    Among equally similar training rows the one listed first is nearer.
    ``k`` larger than the training set uses the whole set.

    Args:
        train_features (array | Tensor): ``(N, C)``.
        train_labels (array): ``(N,)`` non-negative ints.
        val_features (array | Tensor): ``(M, C)``.
        k (int): Neighbours. Defaults to 20.

    Returns:
        np.ndarray: ``(M,)`` predicted labels.
    """
    if k < 1:
        raise ValueError(f'knn_predict: k must be >= 1, got {k}.')
    x, y = _as_arrays(train_features, train_labels)
    v = _as_arrays(val_features)
    eps = np.finfo(np.float64).tiny
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), eps)
    similarity = v @ x.T  # (M, N)
    k = min(k, len(x))
    nearest = np.argsort(-similarity, axis=1, kind='stable')[:, :k]
    votes = np.zeros((len(v), int(y.max()) + 1), dtype=np.int64)
    np.add.at(votes, (np.arange(len(v))[:, None], y[nearest]), 1)
    return votes.argmax(axis=1)  # argmax: first (smallest) label on ties


def linear_probe_predict(train_features, train_labels, val_features,
                         C: float = 1.0, max_iter: int = 1000,
                         seed: int = 0) -> np.ndarray:
    """Logistic-regression probe (multinomial, L2, lbfgs).

    Features are standardised with the training rows' mean and std (a
    constant feature stays 0), so the regularisation ``C`` means the same
    for encoders whose features have different scales.

    Args:
        train_features (array | Tensor): ``(N, C)``.
        train_labels (array): ``(N,)`` ints, at least two classes.
        val_features (array | Tensor): ``(M, C)``.
        C (float): Inverse L2 strength of scikit-learn's
            ``LogisticRegression``. Defaults to 1.0.
        max_iter (int): lbfgs iterations (not converging only warns).
            Defaults to 1000.
        seed (int): ``random_state``. Defaults to 0.

    Returns:
        np.ndarray: ``(M,)`` predicted labels.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    x, y = _as_arrays(train_features, train_labels)
    v = _as_arrays(val_features)
    if len(np.unique(y)) < 2:
        raise ValueError('linear_probe_predict: the training split holds one '
                         'class only.')
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    # One BLAS thread: these matrices are small, and beside torch's OpenMP
    # threads more BLAS threads only contend (7x slower on 2 cores).
    with warnings.catch_warnings(), threadpool_limits(1, user_api='blas'):
        warnings.simplefilter('ignore', ConvergenceWarning)
        model.fit((x - mean) / std, y)
    return model.predict((v - mean) / std)


def accuracy(predictions, labels) -> float:
    """Fraction of ``predictions`` equal to ``labels``, in [0, 1]."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or not len(labels):
        raise ValueError(f'accuracy: {predictions.shape} predictions for '
                         f'{labels.shape} labels.')
    return float((predictions == labels).mean())


def probe_accuracies(train_features,
                     train_labels,
                     val_features,
                     val_labels,
                     probes: Sequence[str] = PROBES,
                     k: int = 20,
                     C: float = 1.0,
                     seed: int = 0) -> Dict[str, float]:
    """Val accuracy of each probe fitted on the training split.

    Args:
        train_features, val_features (array | Tensor): ``(N, C)``, ``(M, C)``.
        train_labels, val_labels (array): ``(N,)``, ``(M,)``.
        probes (Sequence[str]): Any of ``'knn'``, ``'linear'``.
            Defaults to both.
        k (int): Neighbours of the k-NN probe. Defaults to 20.
        C (float): Inverse L2 strength of the linear probe. Defaults to 1.0.
        seed (int): Seed of the linear probe. Defaults to 0.

    Returns:
        dict[str, float]: probe name -> accuracy in [0, 1].
    """
    unknown = set(probes) - set(PROBES)
    if unknown:
        raise ValueError(f'Unknown probes {sorted(unknown)}; choose from '
                         f'{PROBES}.')
    out = {}
    for name in probes:
        if name == 'knn':
            pred = knn_predict(train_features, train_labels, val_features, k)
        else:
            pred = linear_probe_predict(train_features, train_labels,
                                        val_features, C=C, seed=seed)
        out[name] = accuracy(pred, np.asarray(val_labels).reshape(-1))
    return out


def resplit_accuracies(features,
                       labels,
                       val_size: int,
                       num_splits: int = 5,
                       split_seed: int = 0,
                       **probe_kwargs) -> Dict[str, List[float]]:
    """Probe accuracies on ``num_splits`` random re-splits of one labelled
    set into ``len - val_size`` training and ``val_size`` val rows.

    Stratified by class (scikit-learn's ``StratifiedShuffleSplit``) when
    every class has at least two rows, otherwise a plain random split. The
    spread of the results is the noise that the choice of split alone puts
    on a probe accuracy.

    Args:
        features (array | Tensor): ``(N, C)``.
        labels (array): ``(N,)``.
        val_size (int): Val rows per split, ``1 <= val_size < N``.
        num_splits (int): Re-splits. Defaults to 5.
        split_seed (int): Seed of the splits. Defaults to 0.
        **probe_kwargs: Passed to :func:`probe_accuracies`.

    Returns:
        dict[str, list[float]]: probe name -> one accuracy per split.
    """
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
    x, y = _as_arrays(features, labels)
    if not 1 <= val_size < len(x):
        raise ValueError(f'resplit_accuracies: val_size={val_size} must be in '
                         f'[1, {len(x)}).')
    _, counts = np.unique(y, return_counts=True)
    stratify = counts.min() >= 2 and len(counts) <= min(val_size,
                                                        len(x) - val_size)
    splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
        n_splits=num_splits, test_size=val_size, random_state=split_seed)
    out: Dict[str, List[float]] = {}
    for train, val in splitter.split(x, y):
        if len(np.unique(y[train])) < 2:
            continue  # a plain split of a tiny set left one class
        scores = probe_accuracies(x[train], y[train], x[val], y[val],
                                  **probe_kwargs)
        for name, value in scores.items():
            out.setdefault(name, []).append(value)
    return out


def mean_std(values: Sequence[float]) -> tuple:
    """``(mean, sample std)`` of ``values``; std is 0.0 for one value."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        raise ValueError('mean_std: no values.')
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std
