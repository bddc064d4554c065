"""
Rebuild the networks inside an exported face model, so that a new ensemble can reuse them.

An exported model (``train_face``: ``explaining_model`` written by ``export_tflite``) keeps
each member network's weights; the work dir it was trained in may be gone. ``unpack`` reads
them back from the LiteRT file and writes one work dir per network, which ``train_face``
takes as a ``--member`` like any other. Hand-written: LiteRT has no converter back to Keras.

The converter folded each batch norm into the convolution before it (weights scaled, a bias
added), and int8 models keep weights as integers with a scale per output channel. The rebuilt
network has the training architecture (``build_model``) with those folded weights: each batch
norm passes its input through plus the bias (gamma 1, mean 0, variance 1 - epsilon). Its
logits equal the exported model's up to the int8 rounding of the activations; it is for
exporting, not for training on (its batch norms no longer hold the training statistics).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
import re

from emorec_ros.face import train as training
import keras
import numpy as np

#: How the export names the networks inside the model (``explaining_model``).
_MEMBER = re.compile(r'member_(\d+)')
#: One member's entry in the card's ``selected_on`` (``cli.train_face.export``).
_SELECTED = re.compile(
    r'seed (?P<seed>\d+)(?:, width (?P<width>[0-9.]+))?'
    r'(?:, distilled from (?P<teacher>.+?) \(weight (?P<weight>[0-9.]+)\))?'
    r': FER\+ Valid accuracy (?P<accuracy>[0-9.]+), best epoch (?P<epoch>\d+) of (?P<epochs>\d+)')
_TRAINING_TIME = re.compile(r'(?P<minutes>[0-9.]+) minutes for (?P<epochs>\d+) epochs')


@dataclasses.dataclass
class _Layers:
    """Constant tensors (indices) of one member: (weights, bias) per convolution and dense."""

    convolutions: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    classifier: tuple[int, int] | None = None


def _dequantised(interpreter, details: dict, index: int) -> np.ndarray:
    """Return a constant tensor as float32: int8/int32 values times their channel's scale."""
    values = interpreter.get_tensor(index)
    if values.dtype == np.float32:
        return values
    quantisation = details[index]['quantization_parameters']
    shape = [1] * values.ndim
    shape[quantisation['quantized_dimension']] = -1
    zero = quantisation['zero_points'].reshape(shape)
    return ((values.astype(np.float32) - zero) *
            quantisation['scales'].astype(np.float32).reshape(shape))


def networks_in(model_path: Path) -> list[keras.Model]:
    """
    Return the member networks of an exported model, in the order of their export.

    Raises ValueError when the file is not a LiteRT model or not one that ``train_face``
    exported (no member networks of the training architecture in it).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        # Without the XNNPACK delegate the operators keep their own inputs, weights included.
        interpreter = Interpreter(
            model_path=str(model_path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ValueError(f'{model_path} is not a LiteRT model: {e}') from e
    details = {d['index']: d for d in interpreter.get_tensor_details()}
    members: dict[int, _Layers] = {}
    for op in interpreter._get_ops_details():
        if op['op_name'] not in ('CONV_2D', 'FULLY_CONNECTED') or len(op['inputs']) < 3:
            continue
        output = details[op['outputs'][0]]['name']
        member = _MEMBER.search(output)
        if member is None:
            continue  # the class activation maps' weighing, a copy of the classifier's weights
        layers = members.setdefault(int(member.group(1)), _Layers())
        weights = (int(op['inputs'][1]), int(op['inputs'][2]))
        if op['op_name'] == 'FULLY_CONNECTED':
            layers.classifier = layers.classifier or weights
        elif weights not in layers.convolutions:  # a member that also saw the mirror image
            layers.convolutions.append(weights)
    if not members:
        raise ValueError(f'{model_path} holds no member networks: not a model exported by '
                         'train_face')
    return [_rebuild(interpreter, details, members[i], f'{model_path} member {i}')
            for i in sorted(members)]


def _rebuild(interpreter, details: dict, layers: _Layers, name: str) -> keras.Model:
    """One member as a float32 Keras network of the training architecture."""
    def value(index: int) -> np.ndarray:
        return _dequantised(interpreter, details, index)

    kernels = [value(w).transpose(1, 2, 3, 0) for w, _ in layers.convolutions]  # to HWIO
    width = kernels[0].shape[-1] / training.BASE_CHANNELS[0] if kernels else 0.0
    channels = [k.shape[-1] for k in kernels]
    if layers.classifier is None or width <= 0 or len(kernels) != 8:
        raise ValueError(f'{name}: {len(kernels)} convolutions and '
                         f'{"a" if layers.classifier else "no"} classifier, not the training '
                         'architecture (8 convolutions and a classifier)')
    dense, bias = value(layers.classifier[0]).T, value(layers.classifier[1])
    keras.mixed_precision.set_global_policy('float32')
    net = training.build_model(training.TrainConfig(width=width), dense.shape[1])
    convolutions = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    if [layer.filters for layer in convolutions] != channels:
        raise ValueError(f'{name}: convolutions of {channels} channels are not those of the '
                         f'training architecture at width {width:g}')
    norms = [layer for layer in net.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for convolution, norm, kernel, (_, bias_index) in zip(convolutions, norms, kernels,
                                                          layers.convolutions):
        convolution.set_weights([kernel])
        folded = value(bias_index)
        norm.set_weights([np.ones_like(folded), folded, np.zeros_like(folded),
                          np.full_like(folded, 1.0 - norm.epsilon)])
    net.get_layer(training.CLASSIFIER).set_weights([dense, bias])
    return net


def _channels(net: keras.Model) -> tuple[int, ...]:
    """Channels of the network's four stages (its 1st, 2nd, 4th and 6th convolution)."""
    convolutions = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    return tuple(convolutions[i].filters for i in (0, 1, 3, 5))


def unpack(model_path: Path, out_dir: Path) -> list[Path]:
    """
    Write each network of an exported model as a member work dir under ``out_dir``.

    Each dir (``<model name>_seed<seed>``) gets ``best.keras``, ``config.json`` and
    ``best.json`` from the model's card (``selected_on``, ``training_config``), and
    ``epoch_seconds.json``: the card's training time spread evenly over its epochs (the
    per-epoch times are not on the card). Returns the dirs, in the order of the members.
    Raises ValueError when the model or its card does not say what a member needs.
    """
    from emorec_ros.face.classify import card_path_for

    card_path = card_path_for(model_path)
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f'model card {card_path} is unreadable: {e}') from e
    selected = [m.groupdict() for m in _SELECTED.finditer(str(card.get('selected_on', '')))]
    timing = _TRAINING_TIME.search(str(card.get('training_time', '')))
    nets = networks_in(model_path)
    if len(selected) != len(nets) or timing is None:
        raise ValueError(f'model card {card_path}: selected_on names {len(selected)} members '
                         f'for {len(nets)} networks, or training_time is not "N minutes for '
                         'M epochs"; both come from train_face')
    seconds_per_epoch = 60 * float(timing['minutes']) / int(timing['epochs'])
    try:
        base = training.TrainConfig(**card.get('training_config', {}))
    except TypeError as e:
        raise ValueError(f'model card {card_path}: training_config: {e}') from e
    dirs = []
    for net, member in zip(nets, selected):
        config = dataclasses.replace(
            base, seed=int(member['seed']), width=float(member['width'] or 1.0),
            epochs=int(member['epochs']), teacher=member['teacher'] or '',
            teacher_weight=float(member['weight'] or 0.0))
        if training.stage_channels(config.width) != _channels(net):
            raise ValueError(f'model card {card_path}: seed {config.seed} has width '
                             f'{config.width:g}, its network another')
        work_dir = out_dir / f'{model_path.stem}_seed{config.seed}'
        work_dir.mkdir(parents=True, exist_ok=True)
        training.write_atomically(work_dir / 'best.keras', net.save)
        training.write_json(work_dir / 'config.json', dataclasses.asdict(config))
        training.write_json(work_dir / 'best.json', {'epoch': int(member['epoch']),
                                                     'val_accuracy': float(member['accuracy'])})
        training.write_json(work_dir / 'epoch_seconds.json',
                            {str(epoch): round(seconds_per_epoch, 1)
                             for epoch in range(1, config.epochs + 1)})
        dirs.append(work_dir)
    return dirs
