"""Uncertainty-triggered wake-up: a fixed-point Bayesian screener that wakes the DNN only when it
must (four-class heartbeat classification on MIT-BIH records).

Stages, one-way: :mod:`.data` (MIT-BIH beats → FFT features, splits) → :mod:`.screener` (χ²
ranking, quantization, log-domain likelihood codes, the wake rule; the numpy twin of the C
screener) → :mod:`.degrade` (degraded tables, read errors, protected codes) → :mod:`.energy`
(energy per input) → :mod:`.emit` (the ``wakeup`` firmware app) → :mod:`.report`
(``sweetspot wakeup``).
"""
