"""The sensor front end: ring buffers, fixed-point preprocessing, post-processing.

:mod:`.pipeline` (TOML → validated, lowered pipeline) → :mod:`.preprocess` (its numpy twin) →
:mod:`.emit` (the ``stream``, ``har``, ``vww`` and ``pipetest`` apps).
"""
