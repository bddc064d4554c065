"""Accuracy, calibration, confusion matrices and their plots for a face-emotion model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from emorec_ros.calibration import expected_calibration_error, softmax
from emorec_ros.face import fer2013, ferplus
from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.fer2013 import FaceSet
import numpy as np

#: Splits ``load_labelled`` knows: FER+'s (majority of the votes) and FER-2013's own labels.
ALL_SPLITS: tuple[str, ...] = ferplus.SPLITS + fer2013.SPLITS


@dataclass(frozen=True)
class Evaluation:
    """Results of a model on one labelled split; ``confusion[true, predicted]`` counts faces."""

    split: str
    labels: tuple[str, ...]
    confusion: np.ndarray
    #: Expected calibration error of the published scores (NaN where not measured).
    ece: float = float('nan')

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
            f'{self.split}: {int(self.confusion.sum())} faces, '
            f'accuracy {100 * self.accuracy:.2f}%, expected calibration error {self.ece:.3f}'
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


def load_labelled(data_root: Path, split: str) -> tuple[FaceSet, tuple[str, ...]]:
    """
    Load a split with single labels and the names of its label indices.

    FER+ splits (Train, Valid, Test; ``<data_root>/ferplus/ferplus.npz``) keep the faces the
    protocol scores, labelled with their vote majority; FER-2013 splits (Training, PublicTest,
    PrivateTest; ``<data_root>/fer2013/``) come with their original labels.
    """
    if split in ferplus.SPLITS:
        faces = ferplus.load_split(Path(data_root) / 'ferplus' / 'ferplus.npz', split)
        return faces.as_face_set(), ferplus.FERPLUS_CLASSES
    return fer2013.load_split(Path(data_root) / 'fer2013', split), fer2013.FER_CLASSES


def model_logits(classifier: EmotionClassifier, images: np.ndarray) -> np.ndarray:
    """Return the classifier's logits (N, labels) for N faces."""
    return np.stack([classifier.logits(image) for image in images])


def evaluate(
    classifier: EmotionClassifier,
    faces: FaceSet,
    class_names: Sequence[str],
    logits: np.ndarray | None = None,
) -> Evaluation:
    """
    Run the classifier over every face of a split and count its answers.

    ``class_names`` names the dataset's label indices; the model's labels are matched by name.
    A face's answer is the best of the classes both have (a FER+ model's contempt has no
    FER-2013 label; a FER-2013 model never answers contempt). ``logits`` spares the run when
    they are at hand. The ECE is measured on the model's scores over the shared classes.
    """
    if logits is None:
        logits = model_logits(classifier, faces.images)
    known = [i for i, name in enumerate(class_names) if name in classifier.labels]
    columns = [classifier.labels.index(class_names[i]) for i in known]
    scores = softmax(logits, classifier.card.temperature)[:, columns]
    scores /= scores.sum(axis=1, keepdims=True)
    predicted = np.asarray(known)[np.argmax(scores, axis=1)]
    shared = np.isin(faces.labels, known)
    true_column = np.searchsorted(known, faces.labels[shared])
    ece = expected_calibration_error(scores[shared], true_column)
    return Evaluation(faces.split, tuple(class_names),
                      confusion_matrix(faces.labels, predicted, len(class_names)), ece)


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
    """Loss and accuracy per epoch, training against Valid."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [int(r['epoch']) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, name in (('loss', 'Train (vote distributions)'), ('val_loss', 'Valid (majority)')):
        ax_loss.plot(epochs, [r[key] for r in rows], label=name)
    for key, name in (('accuracy', 'Train (augmented)'), ('val_accuracy', 'Valid')):
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
