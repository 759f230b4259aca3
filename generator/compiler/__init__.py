"""The model compiler: a ``.tflite`` int8 model → IR → static memory plan → per-layer C tasks.

Stages, one-way: :mod:`.loader` (flatbuffer → :mod:`.ir`, validated) → :mod:`.plan` (arena,
statistics; :mod:`.schedule` holds the kernels' iteration contracts, :mod:`.tflm_math` TFLM's
prepare arithmetic) → :mod:`.lowering` (each operator's constants and kernel call) →
:mod:`.emit` (the ``infer`` app's C tree). :mod:`.inspect` is ``sweetspot inspect``;
:mod:`.modelgen` writes small verification models.
"""
