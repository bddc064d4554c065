"""
Train the face-emotion CNN on FER-2013 and export it as LiteRT (TensorFlow only here).

Training is resumable: every epoch leaves a backup in ``<work_dir>/backup`` (model, optimiser
and schedule state) and the best model so far by PublicTest accuracy in
``<work_dir>/best.keras``. Running the same command again continues where it stopped.
PrivateTest is never looked at here; the export step measures it once on the chosen model.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
import json
from pathlib import Path
import time

from emorec_ros.face.fer2013 import FaceSet, FER_CLASSES
import keras
import numpy as np
import tensorflow as tf

#: Input pixels (0..255 grey) are fed to the network as pixel * SCALE + OFFSET.
SCALE = 1.0 / 255.0
OFFSET = 0.0
INPUT_SIZE = (48, 48)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; chosen on PublicTest, never on PrivateTest."""

    epochs: int = 22
    batch_size: int = 128
    peak_learning_rate: float = 2e-3
    warmup_epochs: int = 1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    dropout: float = 0.5
    seed: int = 7


def build_model(config: TrainConfig) -> keras.Model:
    """
    Build a VGG-style CNN: most of its capacity sits at 12x12 and below, where it is cheap.

    Output: softmax over FER_CLASSES. Input: (48, 48, 1) floats, pixel * SCALE + OFFSET.
    """
    def conv(x, filters: int):
        x = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(x)

    inputs = keras.Input(shape=(*INPUT_SIZE, 1), name='face')
    x = conv(inputs, 32)
    x = keras.layers.MaxPooling2D()(x)                       # 24x24
    x = conv(x, 64)
    x = conv(x, 64)
    x = keras.layers.MaxPooling2D()(x)                       # 12x12
    x = conv(x, 128)
    x = conv(x, 128)
    x = keras.layers.MaxPooling2D()(x)                       # 6x6
    x = conv(x, 256)
    x = conv(x, 256)
    x = keras.layers.MaxPooling2D()(x)                       # 3x3
    x = keras.layers.Flatten()(x)
    # No dropout in front of a batch norm: it would make the variance the norm learns in training
    # differ from the one it meets at inference.
    x = keras.layers.Dense(256, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(len(FER_CLASSES), activation='softmax', name='scores')(x)
    return keras.Model(inputs, outputs, name='face_emotion')


def _augmenter(seed: int) -> keras.Sequential:
    """Label-preserving jitter of position, scale, angle, contrast and mirror side."""
    return keras.Sequential([
        keras.layers.RandomFlip('horizontal', seed=seed),
        keras.layers.RandomRotation(0.04, fill_mode='reflect', seed=seed + 1),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode='reflect', seed=seed + 2),
        keras.layers.RandomZoom(0.15, fill_mode='reflect', seed=seed + 3),
        keras.layers.RandomContrast(0.3, seed=seed + 4),
    ], name='augment')


def _dataset(faces: FaceSet, config: TrainConfig, training: bool) -> tf.data.Dataset:
    x = faces.images[..., None].astype(np.float32) * SCALE + OFFSET
    y = keras.utils.to_categorical(faces.labels, len(FER_CLASSES)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        augment = _augmenter(config.seed)
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
        ds = ds.batch(config.batch_size, drop_remainder=True)
        ds = ds.map(
            lambda a, b: (
                tf.clip_by_value(augment(a, training=True), OFFSET, 255 * SCALE + OFFSET),
                b,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.batch(512)
    return ds.prefetch(tf.data.AUTOTUNE)


class _KeepBest(keras.callbacks.Callback):
    """Saves the model whenever PublicTest accuracy beats the best so far, across restarts."""

    def __init__(self, work_dir: Path) -> None:
        super().__init__()
        self.model_path = work_dir / 'best.keras'
        self.state_path = work_dir / 'best.json'
        self.best = (
            json.loads(self.state_path.read_text())['val_accuracy']
            if self.state_path.exists()
            else -1.0
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        accuracy = float((logs or {}).get('val_accuracy', -1.0))
        if accuracy > self.best:
            self.best = accuracy
            tmp = self.model_path.with_suffix('.tmp.keras')
            self.model.save(tmp)
            tmp.replace(self.model_path)
            _write_json(self.state_path, {'epoch': epoch + 1, 'val_accuracy': accuracy})
            print(f'epoch {epoch + 1}: new best PublicTest accuracy {accuracy:.4f}', flush=True)


class _Progress(keras.callbacks.Callback):
    """One line every ``every`` steps with throughput, for logs that are not a terminal."""

    def __init__(self, every: int, steps_per_epoch: int) -> None:
        super().__init__()
        self.every, self.steps = every, steps_per_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.start = epoch + 1, time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (batch + 1) % self.every == 0:
            rate = (batch + 1) / (time.monotonic() - self.start)
            logs = logs or {}
            print(
                f'epoch {self.epoch} step {batch + 1}/{self.steps} loss {logs.get("loss", 0):.4f} '
                f'acc {logs.get("accuracy", 0):.4f} ({rate:.2f} steps/s)',
                flush=True,
            )


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(data, indent=2) + '\n')
    tmp.replace(path)


def train(train_set: FaceSet, val_set: FaceSet, work_dir: Path, config: TrainConfig) -> Path:
    """Train (or resume) and return the path of the best model by PublicTest accuracy."""
    work_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = len(train_set.images) // config.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate / 10,
        decay_steps=(config.epochs - config.warmup_epochs) * steps_per_epoch,
        warmup_target=config.peak_learning_rate,
        warmup_steps=config.warmup_epochs * steps_per_epoch,
        alpha=0.01,
    )
    model = build_model(config)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=['accuracy'],
    )
    # Build the optimiser's variables now, so that BackupAndRestore restores them (step count,
    # moments) on resume instead of skipping them and restarting the schedule.
    model.optimizer.build(model.trainable_variables)
    model.summary(print_fn=lambda line, **_: print(line, flush=True))
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work_dir / 'backup')),
        keras.callbacks.CSVLogger(str(work_dir / 'history.csv'), append=True),
        _KeepBest(work_dir),
        _Progress(every=50, steps_per_epoch=steps_per_epoch),
    ]
    model.fit(_dataset(train_set, config, training=True), epochs=config.epochs,
              validation_data=_dataset(val_set, config, training=False),
              callbacks=callbacks, verbose=2)
    return work_dir / 'best.keras'


def export_tflite(
    model_path: Path, tflite_path: Path, calibration: np.ndarray | None = None
) -> None:
    """
    Write the model as LiteRT, averaging the scores of the face and its mirror image.

    The mirror average is built into the graph, so every user of the file gets it. The model
    goes through Keras' SavedModel export, which tracks the Keras 3 variables so that the
    converter freezes the weights into the file. With ``calibration`` (uint8 faces (N, 48, 48)
    from the Training split), weights and activations are quantised to int8 (input and output
    stay float32): about 4x smaller and 2-3x faster on a CPU.
    """
    import tempfile

    net = keras.models.load_model(model_path)
    face = keras.Input(shape=(*INPUT_SIZE, 1), batch_size=1, name='face')
    mirrored = keras.layers.Lambda(lambda t: keras.ops.flip(t, axis=2), name='mirror')(face)
    scores = keras.layers.Average(name='scores')([net(face), net(mirrored)])
    with tempfile.TemporaryDirectory() as saved:
        keras.Model(face, scores).export(saved, format='tf_saved_model', verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                [face[None, :, :, None].astype(np.float32) * SCALE + OFFSET]
                for face in calibration
            )
        tflite = converter.convert()
    tflite_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tflite_path.with_suffix('.tmp')
    tmp.write_bytes(tflite)
    tmp.replace(tflite_path)


def history_rows(work_dir: Path) -> list[dict[str, float]]:
    """Read the per-epoch log of a training run (epoch, accuracy, loss, val_accuracy, ...)."""
    with open(work_dir / 'history.csv', newline='') as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
