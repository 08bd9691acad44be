"""Frozen-feature probes against hand-computed values."""
import numpy as np
import pytest
import torch

from lmd_toolkit.evaluation.probe import (accuracy, knn_predict,
                                          linear_probe_predict, mean_std,
                                          pool_tokens, probe_accuracies,
                                          resplit_accuracies)


def test_pool_tokens_avg_and_cls():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    # image 0: cls (0, 1), patches (2, 3) and (4, 5) -> mean (3, 4)
    assert pool_tokens(tokens).tolist() == [[3.0, 4.0], [9.0, 10.0]]
    assert pool_tokens(tokens, mode='cls').tolist() == [[0.0, 1.0],
                                                        [6.0, 7.0]]
    # no class token: every token is a patch
    assert pool_tokens(tokens, num_prefix=0)[0].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match='class token'):
        pool_tokens(tokens, num_prefix=0, mode='cls')
    with pytest.raises(ValueError, match="'avg' or 'cls'"):
        pool_tokens(tokens, mode='max')


def test_knn_cosine_majority_vote_by_hand():
    # Unit vectors at angles (degrees): class 0 at 0, 10, 20; class 1 at
    # 80, 90; class 2 at 180.
    angles = np.radians([0, 10, 20, 80, 90, 180])
    train = np.stack([np.cos(angles), np.sin(angles)], 1)
    labels = np.array([0, 0, 0, 1, 1, 2])
    # 5 degrees: nearest 0, 10, 20 (k=3 -> class 0); 85 degrees: 80, 90,
    # then 20 (65 away) -> class 1; 170 degrees: 180, then 90 (80 away)
    # and 80 (90 away) -> votes 2:1, 1:2 -> class 1.
    val = np.stack([np.cos(np.radians([5, 85, 170])),
                    np.sin(np.radians([5, 85, 170]))], 1)
    assert knn_predict(train, labels, val, k=1).tolist() == [0, 1, 2]
    assert knn_predict(train, labels, val, k=3).tolist() == [0, 1, 1]
    # cosine: lengths do not matter
    assert knn_predict(7 * train, labels, 0.1 * val, k=3).tolist() == \
        [0, 1, 1]
    # k = 2 at 47 degrees: neighbours 20 (class 0) and 80 (class 1), one
    # vote each: the tie goes to the smaller label
    tie = np.array([[np.cos(np.radians(47)), np.sin(np.radians(47))]])
    assert knn_predict(train, labels, tie, k=2).tolist() == [0]
    # k beyond the set: all six vote, class 0 has most
    assert knn_predict(train, labels, val, k=50).tolist() == [0, 0, 0]


def test_linear_probe_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 5]], dtype=float)
    labels = np.repeat(np.arange(3), 30)
    x = centres[labels] + rng.normal(0, 0.5, (90, 3))
    val_labels = np.repeat(np.arange(3), 10)
    val = centres[val_labels] + rng.normal(0, 0.5, (30, 3))
    pred = linear_probe_predict(x, labels, val)
    assert accuracy(pred, val_labels) == 1.0
    # a constant feature column is harmless (std 0 -> not divided by 0)
    x1 = np.concatenate([x, np.ones((90, 1))], 1)
    val1 = np.concatenate([val, np.ones((30, 1))], 1)
    assert accuracy(linear_probe_predict(x1, labels, val1),
                    val_labels) == 1.0
    with pytest.raises(ValueError, match='one class'):
        linear_probe_predict(x, np.zeros(90), val)


def test_probe_accuracies_and_accuracy():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = [0, 0, 1, 1]
    val = torch.tensor([[1.0, 0.2], [0.2, 1.0], [1.0, 0.1]])
    # the last val row is labelled 1 but sits with class 0: 2 of 3 right
    scores = probe_accuracies(train, labels, val, [0, 1, 1], k=1)
    assert scores == {'knn': pytest.approx(2 / 3),
                      'linear': pytest.approx(2 / 3)}
    assert probe_accuracies(train, labels, val, [0, 1, 0], k=1,
                            probes=('knn', )) == {'knn': 1.0}
    with pytest.raises(ValueError, match='Unknown probes'):
        probe_accuracies(train, labels, val, [0, 1, 0], probes=('svm', ))
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])


def test_resplit_accuracies_are_seeded_and_stratified():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 10)
    x = np.eye(4)[labels] * 3 + rng.normal(0, 1.0, (40, 4))
    a = resplit_accuracies(x, labels, val_size=8, num_splits=3,
                           split_seed=0, k=3)
    b = resplit_accuracies(x, labels, val_size=8, num_splits=3,
                           split_seed=0, k=3)
    assert a == b and set(a) == {'knn', 'linear'}
    assert all(len(v) == 3 for v in a.values())
    # accuracies on 8 val rows are multiples of 1/8 in [0, 1]
    for v in a['knn'] + a['linear']:
        assert 0.0 <= v <= 1.0 and (v * 8) == pytest.approx(round(v * 8))
    with pytest.raises(ValueError, match='val_size'):
        resplit_accuracies(x, labels, val_size=40)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
