"""The TFLM backend: TensorFlow Lite Micro's interpreter built from the user's own checkout.

:mod:`.tree` (checkout → cached source tree) → :mod:`.arena` and :mod:`.app` (the ``tflm`` app)
→ :mod:`generator.build.tflm_library` (the library through SCons) → :mod:`.probe` (the arena's
closed loop on the twin).
"""
