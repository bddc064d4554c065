"""
Train the face-emotion CNN on FER+ votes and export it as LiteRT.

Training runs on any Keras backend: TensorFlow on a CPU, JAX (``KERAS_BACKEND=jax``) on a GPU
machine without TensorFlow; the faces are jittered in NumPy and OpenCV, not in ``tf.data``.
The LiteRT export needs TensorFlow.

The network learns the taggers' vote distribution (cross-entropy against it: the FER+ paper's
probability-distribution mode, its best). Training is resumable: every epoch leaves a backup in
``<work_dir>/backup`` (model, optimiser and schedule state) and the best model so far by Valid
accuracy in ``<work_dir>/best.keras``. Running the same command again continues where it
stopped. Test is never looked at here; the export step measures it once on the chosen model.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
import json
from pathlib import Path
import sys
import time
from typing import Callable, Sequence

import cv2
import keras
import numpy as np

#: Input pixels (0..255 grey) are fed to the network as pixel * SCALE + OFFSET.
SCALE = 1.0 / 255.0
OFFSET = 0.0
INPUT_SIZE = (48, 48)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; chosen on Valid, never on Test."""

    epochs: int = 36
    batch_size: int = 128
    peak_learning_rate: float = 2e-3
    warmup_epochs: int = 1
    weight_decay: float = 1e-4
    dropout: float = 0.3
    seed: int = 7
    #: Channels of every convolution, times BASE_CHANNELS (rounded to multiples of 8): 1.5
    #: costs about 2.25 times the arithmetic per face and per training step.
    width: float = 1.0
    #: Distillation: a trained model (.tflite) whose scores on the Train faces are mixed into
    #: the targets with ``teacher_weight`` (``distillation_targets``); '' and 0 without.
    teacher: str = ''
    teacher_weight: float = 0.0


#: Channels of the four stages (48x48, 24x24, 12x12, 6x6) at width 1.
BASE_CHANNELS = (32, 64, 128, 256)


def stage_channels(width: float) -> tuple[int, ...]:
    """Channels of the four stages at ``width``, each a multiple of 8 (at least 8)."""
    if not width > 0:
        raise ValueError(f'width must be positive, got {width}')
    return tuple(max(8, 8 * round(c * width / 8)) for c in BASE_CHANNELS)


#: Name of the last convolutional layer, whose maps the class activation maps weigh.
FEATURES = 'features'
#: Name of the dense layer that turns the pooled features into class scores.
CLASSIFIER = 'classifier'


def build_model(config: TrainConfig, n_classes: int) -> keras.Model:
    """
    Build a VGG-style CNN: most of its capacity sits at 12x12 and below, where it is cheap.

    Channels: ``stage_channels(config.width)`` (32, 64, 128, 256 at width 1).

    The last 6x6 feature maps are averaged and weighed by one dense layer, so that the class
    activation map of a class is the same weighing of the maps before the average (Zhou et al.
    2016). Output: softmax over ``n_classes``. Input: (48, 48, 1) floats, pixel * SCALE + OFFSET.
    """
    def conv(x, filters: int, name: str | None = None):
        x = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU(name=name)(x)

    c48, c24, c12, c6 = stage_channels(config.width)
    inputs = keras.Input(shape=(*INPUT_SIZE, 1), name='face')
    x = conv(inputs, c48)
    x = keras.layers.MaxPooling2D()(x)                       # 24x24
    x = conv(x, c24)
    x = conv(x, c24)
    x = keras.layers.MaxPooling2D()(x)                       # 12x12
    x = conv(x, c12)
    x = conv(x, c12)
    x = keras.layers.MaxPooling2D()(x)                       # 6x6
    x = conv(x, c6)
    x = conv(x, c6)
    x = conv(x, c6, name=FEATURES)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(config.dropout)(x)
    x = keras.layers.Dense(n_classes, name=CLASSIFIER)(x)
    outputs = keras.layers.Softmax(name='scores', dtype='float32')(x)
    return keras.Model(inputs, outputs, name='face_emotion')


#: Jitter of the training faces: rotation (degrees), shift (fraction of the side), zoom
#: (fraction), contrast and brightness (fractions of the pixel range), sharpness (amount of
#: detail added: negative blurs).
MAX_ROTATION = 14.4
MAX_SHIFT = 0.1
MAX_ZOOM = 0.15
MAX_CONTRAST = 0.4
MAX_BRIGHTNESS = 0.2
SHARPNESS = (-0.8, 1.0)


def jitter_faces(faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """
    Return grey uint8 faces (N, 48, 48) jittered as the network's float32 input (N, 48, 48, 1).

    Label-preserving jitter of mirror side, angle, position, scale, contrast, light and
    sharpness. Robot cameras see faces tilted and lit unlike FER's: the node levels the eyes,
    and the rotation covers what is left of the tilt and FER's own. FER's faces are small,
    soft JPEGs while a robot's crops are downscaled from sharper faces: adding a random multiple
    of the detail (face minus its 3x3 blur) covers both. Borders are filled by reflection.
    """
    n, height, width = faces.shape
    out = np.empty((n, height, width), np.float32)
    centre = ((width - 1) / 2, (height - 1) / 2)
    for i, face in enumerate(faces):
        if rng.random() < 0.5:
            face = face[:, ::-1]
        warp = cv2.getRotationMatrix2D(centre, rng.uniform(-MAX_ROTATION, MAX_ROTATION),
                                       1 + rng.uniform(-MAX_ZOOM, MAX_ZOOM))
        warp[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * (width, height)
        out[i] = cv2.warpAffine(np.ascontiguousarray(face, np.float32), warp, (width, height),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    x = out / 255.0
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = (x - mean) * rng.uniform(1 - MAX_CONTRAST, 1 + MAX_CONTRAST, (n, 1, 1)) + mean
    x = np.clip(x + rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS, (n, 1, 1)), 0.0, 1.0)
    blurred = np.stack([cv2.blur(face, (3, 3), borderType=cv2.BORDER_REFLECT) for face in x])
    x = np.clip(x + rng.uniform(*SHARPNESS, (n, 1, 1)) * (x - blurred), 0.0, 1.0)
    return (x[..., None] * (255 * SCALE) + OFFSET).astype(np.float32)


class JitteredFaces(keras.utils.PyDataset):
    """
    Training batches, shuffled each epoch and jittered (``jitter_faces``) on the CPU.

    Made in NumPy and OpenCV in worker threads, beside the training step, on any Keras backend:
    Keras' augmentation layers inside a model run several times slower on a JAX accelerator
    (keras-team/keras#23229). Each batch follows from (seed, epoch, batch index), so that a
    resumed run sees the batches an uninterrupted one would: ``train`` sets the epoch.
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, batch_size: int, seed: int,
                 workers: int = 2) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=16)
        self.images, self.targets = images, targets.astype(np.float32)
        self.batch_size, self.seed = batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the faces for ``epoch`` (counted from 0 over the whole run)."""
        self.epoch = epoch
        self.order = np.random.default_rng((self.seed, epoch)).permutation(len(self.images))

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pick = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return jitter_faces(self.images[pick], rng), self.targets[pick]


def network_input(images: np.ndarray) -> np.ndarray:
    """Grey uint8 faces (N, 48, 48) as the network's float32 input (N, 48, 48, 1)."""
    return images[..., None].astype(np.float32) * SCALE + OFFSET


class _KeepBest(keras.callbacks.Callback):
    """Saves the model whenever Valid accuracy beats the best so far, across restarts."""

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
            write_atomically(self.model_path, self.model.save)
            write_json(self.state_path, {'epoch': epoch + 1, 'val_accuracy': accuracy})
            print(f'epoch {epoch + 1}: new best Valid accuracy {accuracy:.4f}', flush=True)


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


class _EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall time to ``epoch_seconds.json``, so that the card can say it."""

    def __init__(self, work_dir: Path) -> None:
        super().__init__()
        self.path = work_dir / 'epoch_seconds.json'

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = json.loads(self.path.read_text()) if self.path.exists() else {}
        seconds[str(epoch + 1)] = round(time.monotonic() - self.start, 1)
        write_json(self.path, seconds)


def distillation_targets(votes: np.ndarray, teacher_logits: np.ndarray,
                         weight: float) -> np.ndarray:
    """
    Return (1 - weight) * votes + weight * softmax(teacher_logits), float32 (N, classes).

    ``votes``: the faces' vote distributions; ``teacher_logits``: a trained model's logits on
    the same faces, same class order. The teacher (an ensemble of networks trained on the votes)
    says how much each face looks like every class, beyond the ten taggers' counts.
    """
    from emorec_ros.calibration import softmax

    if votes.shape != teacher_logits.shape:
        raise ValueError(f'votes {votes.shape} and teacher logits {teacher_logits.shape} differ')
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f'teacher weight must be in [0, 1], got {weight}')
    return ((1 - weight) * votes + weight * softmax(teacher_logits)).astype(np.float32)


def default_precision() -> str:
    """'mixed_bfloat16' where the CPU has bfloat16 instructions (Linux), else 'float32'."""
    from emorec_ros.cpu import cpu_flags

    return 'mixed_bfloat16' if cpu_flags() & {'avx512_bf16', 'amx_bf16'} else 'float32'


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """
    Call ``write`` with a temporary path beside ``path``, then move the file it wrote there.

    A reader sees the old file or the new, never a partial one; when ``write`` fails, the
    temporary file is removed and the old file stays. The temporary name keeps the suffix of
    ``path``, which some writers check (Keras' save) or add (numpy's save).
    """
    tmp = path.with_name(f'{path.stem}.partial{path.suffix}')
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically (see ``write_atomically``)."""
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + '\n'))


def train(
    train_faces: tuple[np.ndarray, np.ndarray],
    val_faces: tuple[np.ndarray, np.ndarray],
    work_dir: Path,
    config: TrainConfig,
    precision: str = 'float32',
) -> Path:
    """
    Train (or resume) and return the path of the best model by Valid accuracy.

    ``train_faces`` and ``val_faces`` are (images (N, 48, 48) uint8, targets (N, classes)):
    vote distributions for training, one-hot majorities of the scored faces for Valid, whose
    accuracy is then the protocol's. ``precision`` is a Keras dtype policy: 'mixed_bfloat16'
    trains about 30% faster on CPUs with bfloat16 instructions (AVX512_BF16, AMX) and much
    slower on others (see ``default_precision``); on a GPU, use it too.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(work_dir / 'config.json', vars(config))
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(precision)
    faces = JitteredFaces(*train_faces, config.batch_size, config.seed)
    steps_per_epoch = len(faces)  # the last batch partial
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate / 10,
        decay_steps=(config.epochs - config.warmup_epochs) * steps_per_epoch,
        warmup_target=config.peak_learning_rate,
        warmup_steps=config.warmup_epochs * steps_per_epoch,
        alpha=0.01,
    )
    model = build_model(config, train_faces[1].shape[1])
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=['accuracy'],
    )
    # Build the optimiser's variables now, so that BackupAndRestore restores them (step count,
    # moments) on resume instead of skipping them and restarting the schedule.
    model.optimizer.build(model.trainable_variables)
    model.summary(print_fn=lambda line, **_: print(line, flush=True))
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work_dir / 'backup')),
        keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, _: faces.set_epoch(epoch)),
        keras.callbacks.CSVLogger(str(work_dir / 'history.csv'), append=True),
        _KeepBest(work_dir),
        _EpochTimer(work_dir),
    ]
    # A progress bar on a terminal; a line every 50 steps in a log file.
    interactive = sys.stdout.isatty()
    if not interactive:
        callbacks.append(_Progress(every=50, steps_per_epoch=steps_per_epoch))
    model.fit(faces, epochs=config.epochs,
              validation_data=(network_input(val_faces[0]), val_faces[1].astype(np.float32)),
              validation_batch_size=512, callbacks=callbacks, verbose=1 if interactive else 2)
    return work_dir / 'best.keras'


def read_config(work_dir: Path) -> TrainConfig:
    """Return the configuration recorded in ``work_dir`` by its training run."""
    return TrainConfig(**json.loads((work_dir / 'config.json').read_text()))


def float32_copy(model_path: Path, config: TrainConfig) -> keras.Model:
    """Load a trained model as float32 layers, whatever arithmetic it was trained with."""
    trained = keras.models.load_model(model_path)
    keras.mixed_precision.set_global_policy('float32')
    net = build_model(config, trained.output_shape[-1])
    net.set_weights(trained.get_weights())
    return net


def explaining_model(nets: Sequence[keras.Model], mirror: bool = True) -> keras.Model:
    """
    Wrap trained networks into the model the node runs: logits and class activation maps.

    Input: one face (1, 48, 48, 1). Outputs: ``logits`` (1, classes) and ``class_maps``
    (1, 6, 6, classes), the features weighed by the classifier's weights (the mean over a map
    plus the class's bias is its logit). Both are means over the networks (an ensemble) and,
    with ``mirror``, over the face and its mirror image, the mirror maps flipped back: the mean
    map still averages, plus the mean bias, to the mean logit.
    """
    def flip(t):
        return keras.ops.flip(t, axis=2)

    face = keras.Input(shape=(*INPUT_SIZE, 1), batch_size=1, name='face')
    views = [face, keras.layers.Lambda(flip, name='mirror')(face)] if mirror else [face]
    all_logits, all_maps = [], []
    for i, net in enumerate(nets):
        classifier = net.get_layer(CLASSIFIER)
        inner = keras.Model(net.input, [classifier.output, net.get_layer(FEATURES).output],
                            name=f'member_{i}')
        weights = classifier.get_weights()[0]
        cam = keras.layers.Dense(weights.shape[1], use_bias=False, name=f'cam_{i}')
        cam.build((None, None, None, weights.shape[0]))
        cam.set_weights([weights])
        for view in views:
            logits, features = inner(view)
            maps = cam(features)
            all_logits.append(logits)
            all_maps.append(maps if view is face else
                            keras.layers.Lambda(flip, name=f'unmirror_{i}')(maps))

    def mean(tensors: list, name: str):
        if len(tensors) == 1:
            return keras.layers.Identity(name=name)(tensors[0])
        return keras.layers.Average(name=name)(tensors)

    return keras.Model(face, [mean(all_logits, 'logits'), mean(all_maps, 'class_maps')])


def export_tflite(
    model: keras.Model, tflite_path: Path, calibration: np.ndarray | None = None
) -> None:
    """
    Write ``model`` (e.g. ``explaining_model``) as LiteRT.

    The model goes through Keras' SavedModel export, which tracks the Keras 3 variables so that
    the converter freezes the weights into the file. With ``calibration`` (uint8 faces
    (N, 48, 48) from the Training split), weights and activations are quantised to int8 (input
    and outputs stay float32): about 4x smaller and 2-3x faster on a CPU.
    """
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, format='tf_saved_model', verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                [network_input(face[None])] for face in calibration
            )
        tflite = converter.convert()
    tflite_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(tflite_path, lambda tmp: tmp.write_bytes(tflite))


def history_rows(work_dir: Path) -> list[dict[str, float]]:
    """Read the per-epoch log of a training run (epoch, accuracy, loss, val_accuracy, ...)."""
    with open(work_dir / 'history.csv', newline='') as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
