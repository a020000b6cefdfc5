"""The device a model runs on: its profile, how it is probed, and its numeric features.

* :mod:`graphrec.device.profile`: :class:`DeviceProfile` and :class:`GpuInfo` (load, save,
  validate, identity);
* :mod:`graphrec.device.probe`: detection of this machine;
* :mod:`graphrec.device.features`: the fixed-order vector the learned models read;
* :mod:`graphrec.device.microbench`: measured micro-benchmarks (GEMM, bandwidth, dispatch);
* :mod:`graphrec.device.isa_cap`: this host with oneDNN/ATen capped at an ISA (a configuration);
* :mod:`graphrec.device.distance`: distance to the training devices, the extrapolation statement;
* :mod:`graphrec.device._cli`: ``graphrec device``.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> DeviceProfile.detect().device_id  # doctest: +SKIP
    'amd-epyc-1a2b3c4d5e'
"""

from graphrec.device.profile import KNOWN_ISA_FLAGS, DeviceProfile, GpuInfo

__all__ = ["KNOWN_ISA_FLAGS", "DeviceProfile", "GpuInfo"]
