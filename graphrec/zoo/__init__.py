"""The graphrec model zoo: parameterised architecture families in plain torch → ONNX.

Latency does not depend on weight values, so the zoo samples architectures, gives them
random weights and exports them. Every model is determined by ``(family, seed, variant,
tiny)``: parameters come from a NumPy generator seeded by ``(seed, family)``, weights from
a torch generator forked from the same seed (the global RNG is restored afterwards), and
the export — legacy TorchScript exporter, opset 17, weights inside the file, fixed
input/output names, deterministic algorithms — is bit-identical for the same seed on the
same torch/onnx/onnxruntime versions. Folders are deduplicated by a structural graph hash
(:func:`graphrec.zoo.hashing.graph_hash`: op types, wiring, attributes and shapes, not
weights). A draw whose forward cost exceeds 3 GFLOPs or 10 M parameters is redrawn from
the same stream, so every model exports in about a second and runs in milliseconds on a
2-core CPU.

Sampled ranges (one draw per row; options are listed cheapest first; ``batch`` is
1/2/4 with probability 0.7/0.2/0.1 for every family):

================  ===========================================================================
family            parameters and ranges
================  ===========================================================================
resnet            resolution 64-224 (step 32); block basic | bottleneck; 3-4 stages of 1-4
                  (basic) / 1-3 (bottleneck) blocks; base width 16/24/32/48/64; stem kernel
                  3/5/7, stem max-pool on/off; groups 1/4/8/16 (ResNeXt, bottleneck only);
                  classes 10/100/1000
vgg               resolution 32-160; 3-5 stages of 1-3 convs; base width 16-48 (doubling,
                  cap 256); kernel 3/5; batch norm on/off; FC hidden 128-1024
mobilenet_v1      resolution 96-224; width 0.25-1.0; 1-5 repeated 512-channel blocks;
                  depthwise kernel 3/5; ReLU | ReLU6
mobilenet_v2      resolution 96-224; width 0.35-1.0; expansion 2/3/4/6; per-stage depth
                  delta -1/0/+1 and kernel 3/5
mobilenet_v3      resolution 96-224; small | large; width 0.35-1.0; SE on/off; kernel as
                  published or forced to 3/5/7
efficientnet      resolution 128-224; width 0.5-1.0; depth 0.5-1.2 (of B0); expansion 4/6;
                  per-stage kernel 3/5; SE ratio 0/0.25
shufflenet_v2     resolution 96-224; width 0.5/1.0/1.5; stage repeats 2-4, 4-8, 2-4;
                  kernel 3/5
squeezenet        resolution 64-224; version 1.0/1.1; width 0.5-1.0; 4/6/8 fire modules
densenet          resolution 32-160; growth 8-32; 3-4 dense blocks of 2-8 layers;
                  bottleneck 2/4; compression 0.5/1.0
ghostnet          resolution 96-224; width 0.5-1.0; 8/10/13 ghost bottlenecks; SE on/off
regnet            resolution 64-224; w0 16-48; wa 8-36; wm 2.0-2.75; depth 6-16; group
                  width 8/16/24; SE on/off (RegNetY)
convnext          resolution 64-224; base dim 16-48; 3-4 stages of 1-3 blocks; depthwise
                  kernel 3/5/7; MLP ratio 2-4
nb201             NAS-Bench-201 arch_index 0-15624 (official arch strings); resolution
                  16/32/64; channels 8-32; 1/2/3/5 cells per stage; classes 10/100/120
vit               resolution 32-224; patch 4/8 (small images) or 8/16; dim 64-256; heads
                  2-8 (head dim >= 16); depth 2-8; MLP ratio 2-4; DeiT distillation token
                  on/off; cls | mean pooling
bert              sequence 16-256; vocab 1k-16k; dim 64-384; heads 2-12; 1-6 post-norm
                  layers; MLP ratio 2/4; attention-mask input on/off; cls | hidden output
gpt               sequence 16-256 (fixed); vocab 1k-16k; dim 64-384; heads 2-12; 1-6 causal
                  pre-norm layers; MLP ratio 2/4; logits for the last token or all tokens
mlp_mixer         resolution 32-224; patch 4-16; dim 64-256; depth 2-8; token MLP 32-256;
                  channel MLP ratio 2/4
rnn               features (13/40/80) | token ids (vocab 1k-8k, embedding 32-128);
                  sequence 16-200; GRU | LSTM; hidden 32-256; 1-3 layers; bidirectional
                  on/off; last-step | per-step head
unet              resolution 64-256; depth 2-4; base width 8-32; upsampling nearest |
                  bilinear | transposed conv; ReLU/LeakyReLU/SiLU; classes 1-21
ssd               resolution 128-300; depthwise (SSDLite) | plain backbone; width 0.25-1.0;
                  0-2 extra feature layers; 4/6 anchors; classes 2-91
yolo              resolution 128-320; width 0.125-0.5; CSP depth 1-3; SiLU/Leaky/ReLU;
                  FPN or FPN+PAN neck; 1/3 anchors; classes 1/20/80
audio_cnn         mel frames (40-80 mels x 49-201 frames) | waveform (4k-16k samples,
                  first kernel 80-400, stride 4-16); channels 16-64; 2-6 blocks; kernel
                  3-15; separable on/off; classes 2-50
paddle_cnn        Paddle2ONNX-style PP-LCNet | ESNet (channel shuffle by Reshape/Transpose);
                  classifier 128-224 px or PP-OCR text-direction 48x192; scale 0.25-1.0;
                  1-5 middle blocks; kernel 3/5; SE on/off; head 256-1280; weights moved
                  into Constant nodes, Identity chains on 5-30 % of edges; dynamic batch
                  ("p2o.DynamicDimension.0") on/off
tf_nhwc_cnn       tf2onnx-style NHWC input; mobilenet (depthwise) | resnet blocks; width
                  0.25-1.0; 3-4 stages; Transpose around every conv and pool; TF SAME
                  padding as explicit Pad on/off; ReLU | ReLU6; softmax head
vad_stream        Silero-style VAD: chunk 256/512/1024 + LSTM state [2, 1, 32-128] + int64
                  sample rate; If on sr == 16000 (scale-only branch | per-branch conv front
                  end, branch outputs equal or differing in length); 1-4 conv blocks
rnn_decoder       attention GRU decoder, hidden state in and out; one streaming step | a
                  greedy Loop of encoder-length/1-4 steps; encoder 16-100 x 64-256; vocab
                  100-5000
tiny_mlp          1-4 Gemms of width 16-256 over 8-128 features (classifier | autoencoder);
                  batch 1/2/8/32; optional LayerNorm; dynamic batch on/off
ocr_rec           text recogniser: height 32/48, width 100-320; VGG (CRNN) | PP-OCR mobile
                  CNN; BiLSTM | self-attention neck (1-2 layers, 48-256); CTC head over
                  37/97/6625 classes; width (and batch) dynamic or fixed
ocr_det           DBNet-style detector: 320-960 x 320-960 input; MobileNetV3 backbone width
                  0.35-0.75; FPN 64-256 with nearest upsampling; two transposed convs to a
                  full-size 1-2 map output; batch/height/width dynamic on/off
================  ===========================================================================

int8 variants (``variant="int8_static"`` for convolution families — QDQ, calibrated on
four seeded random inputs — and ``"int8_dynamic"`` for vit, bert, gpt, mlp_mixer, rnn,
vad_stream, rnn_decoder, tiny_mlp and ocr_rec: MatMulInteger, ConvInteger,
DynamicQuantizeLSTM) are made from the fp32 export with ``onnxruntime.quantization``; their
torch module is the fp32 one, so they get no ``.torch.json`` sidecar.

Families with an ONNX-level rewrite (paddle_cnn's Constant weights and Identity chains,
the dynamic dimensions of paddle_cnn, tiny_mlp, ocr_rec and ocr_det) keep the function of
their torch module, so their sidecars stay valid; vad_stream and rnn_decoder modules are
TorchScript-compiled (the exporter keeps their If/Loop), which torch-based runtimes that
need ``torch.export`` may refuse.

Example:
    >>> from graphrec.zoo import ZooEntry, generate
    >>> entry = ZooEntry.sample("resnet", seed=42)
    >>> entry.model_id, entry.params["block"]
    ('resnet-s42', ...)
    >>> report = generate("zoo/", families=["vit", "gpt"], count=10, seed=0)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphrec.zoo._spec import Family, InputSpec, ParamSampler
    from graphrec.zoo.entry import (
        FLOP_BUDGET,
        OPSET,
        PARAM_BUDGET,
        VARIANTS,
        ExportInfo,
        ZooEntry,
        get_family,
    )
    from graphrec.zoo.families import FAMILIES
    from graphrec.zoo.folder import (
        MANIFEST,
        GenerateReport,
        VerifyResult,
        generate,
        read_manifest,
        verify,
    )
    from graphrec.zoo.hashing import graph_hash

# torch is imported on first use of the zoo, not by ``import graphrec.zoo`` (the CLI
# imports this package to register ``graphrec zoo``).
_EXPORTS: dict[str, str] = {
    "Family": "graphrec.zoo._spec",
    "InputSpec": "graphrec.zoo._spec",
    "ParamSampler": "graphrec.zoo._spec",
    "FLOP_BUDGET": "graphrec.zoo.entry",
    "OPSET": "graphrec.zoo.entry",
    "PARAM_BUDGET": "graphrec.zoo.entry",
    "VARIANTS": "graphrec.zoo.entry",
    "ExportInfo": "graphrec.zoo.entry",
    "ZooEntry": "graphrec.zoo.entry",
    "get_family": "graphrec.zoo.entry",
    "FAMILIES": "graphrec.zoo.families",
    "MANIFEST": "graphrec.zoo.folder",
    "GenerateReport": "graphrec.zoo.folder",
    "VerifyResult": "graphrec.zoo.folder",
    "generate": "graphrec.zoo.folder",
    "read_manifest": "graphrec.zoo.folder",
    "verify": "graphrec.zoo.folder",
    "graph_hash": "graphrec.zoo.hashing",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'graphrec.zoo' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FAMILIES",
    "FLOP_BUDGET",
    "MANIFEST",
    "OPSET",
    "PARAM_BUDGET",
    "VARIANTS",
    "ExportInfo",
    "Family",
    "GenerateReport",
    "InputSpec",
    "ParamSampler",
    "VerifyResult",
    "ZooEntry",
    "generate",
    "get_family",
    "graph_hash",
    "read_manifest",
    "verify",
]
