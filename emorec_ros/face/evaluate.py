"""Accuracy, confusion matrices and their plots for a face-emotion model (no TensorFlow)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.fer2013 import FaceSet
import numpy as np


@dataclass(frozen=True)
class Evaluation:
    """Results of a model on one labelled split; ``confusion[true, predicted]`` counts faces."""

    split: str
    labels: tuple[str, ...]
    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.confusion.sum()))

    @property
    def per_class_accuracy(self) -> dict[str, float]:
        totals = self.confusion.sum(axis=1)
        return {label: float(self.confusion[i, i] / totals[i]) if totals[i] else float('nan')
                for i, label in enumerate(self.labels)}

    def report(self) -> str:
        lines = [
            f'{self.split}: {int(self.confusion.sum())} faces, accuracy {100 * self.accuracy:.2f}%'
        ]
        totals = self.confusion.sum(axis=1)
        for (label, acc), n in zip(self.per_class_accuracy.items(), totals):
            lines.append(f'  {label:<10} {100 * acc:6.2f}%  ({int(n)} faces)')
        return '\n'.join(lines)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Count (n_classes, n_classes) true labels (rows) against predicted labels (columns)."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


def evaluate(
    classifier: EmotionClassifier, faces: FaceSet, class_names: Sequence[str]
) -> Evaluation:
    """
    Run the classifier over every face of a split and count its answers.

    ``class_names`` names the dataset's label indices; the model's labels are matched by name.
    """
    order = [classifier.labels.index(name) for name in class_names]
    predicted = np.array(
        [order.index(int(np.argmax(classifier.scores(img)))) for img in faces.images]
    )
    return Evaluation(faces.split, tuple(class_names),
                      confusion_matrix(faces.labels, predicted, len(class_names)))


def plot_confusion(evaluation: Evaluation, path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    norm = evaluation.confusion / np.maximum(1, evaluation.confusion.sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    n = len(evaluation.labels)
    ax.set_xticks(range(n), evaluation.labels, rotation=45, ha='right')
    ax.set_yticks(range(n), evaluation.labels)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f'{norm[i, j]:.2f}', ha='center', va='center',
                    color='white' if norm[i, j] > 0.5 else 'black', fontsize=8)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(f'{title}\n{evaluation.split}: accuracy {100 * evaluation.accuracy:.2f}%')
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(rows: list[dict[str, float]], path: Path) -> None:
    """Loss and accuracy per epoch, training against PublicTest."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [int(r['epoch']) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, name in (('loss', 'Training'), ('val_loss', 'PublicTest')):
        ax_loss.plot(epochs, [r[key] for r in rows], label=name)
    for key, name in (('accuracy', 'Training (augmented)'), ('val_accuracy', 'PublicTest')):
        ax_acc.plot(epochs, [r[key] for r in rows], label=name)
    ax_loss.set_title('loss')
    ax_acc.set_title('accuracy')
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
