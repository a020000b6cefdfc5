"""Per-module latency prediction (seed 004): module vocabulary and detection, self-generated
single-module datasets measured with the harness, several regressors per module type with
a time/space-budgeted automatic selection, and the module-sum latency of a whole model.

Submodules are imported on use: :mod:`.vocab` (detection), :mod:`.generate` (module
ONNX files), :mod:`.measure` (harness, background load), :mod:`.regressors`,
:mod:`.select` (fitting, auto-selection, Pareto front) and :mod:`.predictor`.
"""
