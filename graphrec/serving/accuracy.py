"""Where the variants' accuracy figures come from: small MLPs trained on sklearn's digits.

The zoo's models carry random weights (latency does not depend on weight values), so
they have no accuracy of their own, and no labelled data set or model hub is reachable
from graphrec's machines. The example workloads therefore give each variant the
held-out accuracy of a one-hidden-layer MLP trained on scikit-learn's ``load_digits``
(1,797 8x8 images, half for training, half for testing, stratified, seed 0) whose
hidden width grows with the variant's size: a real, reproducible accuracy-versus-size
ladder, paired with the measured latency of a zoo model of matching size rank. The
pairing is a stand-in: the figures are what a small and a large model really score on
one real task, not the accuracy of the zoo model itself.

Example:
    >>> from graphrec.serving.accuracy import digits_mlp_accuracy
    >>> round(digits_mlp_accuracy(8), 4)  # doctest: +SKIP
    0.9355
"""

from __future__ import annotations

__all__ = ["digits_mlp_accuracy"]


def digits_mlp_accuracy(hidden_units: int, seed: int = 0) -> float:
    """Test accuracy of an MLP with ``hidden_units`` hidden units trained on digits.

    Args:
        hidden_units: Width of the single hidden layer.
        seed: Seed of the split and of the weights' initialisation.
    """
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, random_state=seed, stratify=y
    )
    model = MLPClassifier(hidden_layer_sizes=(hidden_units,), max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float(model.score(x_test, y_test))
