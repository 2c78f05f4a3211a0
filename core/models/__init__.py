"""Model specs and the builders for Keras 3, Keras 2 (tf_keras, for export) and PyTorch.

One ``ModelSpec`` describes the network; every builder makes the same architecture with the same
weight layout, so weights move between backends through the *canonical* layout: the list Keras's
``model.get_weights()`` returns. Per recurrent layer ``kernel, recurrent_kernel, bias``; for the
dense kind per hidden layer ``kernel, bias``; then the optional head Dense, then the output Dense.

TensorFlow and torch are imported inside the functions that need them, so importing this module
(for specs, presets and counts) stays instant.

Read top-down: ``spec`` (the spec, presets, counts), ``graphs`` (the builders), ``weights``
(canonical weights).
"""
from core.models.spec import (BACKENDS, DEFAULT_PRESET, GATES, KINDS, KIND_LABELS, MAX_LAYERS, ModelSpec, OUTSIDE_FORMS,
                              PERIOD_FORMS, PRESETS, SEASONAL_FORMS, TARGET_FORMS, TARGET_FORM_LABELS, ZERO_START_FORMS,
                              FORM_CHOICES, LINEAR_BASES, SMOOTH_LABEL, choice_label, choice_options, form_choice,
                              count_biases, count_macs, count_params, layer_inputs,
                              model_size_bytes)
from core.models.graphs import (build, build_keras, build_tf_keras, build_torch)
from core.models.weights import (canonical_weights, load_canonical)

__all__ = [
    "BACKENDS", "DEFAULT_PRESET", "GATES", "KINDS", "KIND_LABELS", "MAX_LAYERS", "ModelSpec", "OUTSIDE_FORMS",
    "PERIOD_FORMS", "PRESETS", "SEASONAL_FORMS", "TARGET_FORMS", "TARGET_FORM_LABELS", "ZERO_START_FORMS", "build",
    "build_keras", "build_tf_keras", "build_torch",
    "canonical_weights", "count_biases", "count_macs", "count_params", "layer_inputs", "load_canonical",
    "model_size_bytes", "FORM_CHOICES", "LINEAR_BASES", "SMOOTH_LABEL", "choice_label", "choice_options", "form_choice"
]
