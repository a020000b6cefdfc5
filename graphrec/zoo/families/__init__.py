"""The architecture families of the zoo, one :class:`~graphrec.zoo._spec.Family` each."""

from __future__ import annotations

from graphrec.zoo._spec import Family
from graphrec.zoo.families.cnn import CONVNEXT, DENSENET, REGNET, RESNET, SQUEEZENET, VGG
from graphrec.zoo.families.dense import SSD, UNET, YOLO
from graphrec.zoo.families.exported import PADDLE_CNN, TF_NHWC_CNN
from graphrec.zoo.families.mobile import (
    EFFICIENTNET,
    GHOSTNET,
    MOBILENET_V1,
    MOBILENET_V2,
    MOBILENET_V3,
    SHUFFLENET_V2,
)
from graphrec.zoo.families.nas import NB201
from graphrec.zoo.families.ocr import OCR_DET, OCR_REC
from graphrec.zoo.families.sequence import AUDIO_CNN, RNN
from graphrec.zoo.families.streaming import RNN_DECODER, VAD_STREAM
from graphrec.zoo.families.tiny import TINY_MLP
from graphrec.zoo.families.transformers import BERT, GPT, MLP_MIXER, VIT

#: Every family, by name, in a fixed order (the order generation cycles through).
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        RESNET,
        VGG,
        MOBILENET_V1,
        MOBILENET_V2,
        MOBILENET_V3,
        EFFICIENTNET,
        SHUFFLENET_V2,
        SQUEEZENET,
        DENSENET,
        GHOSTNET,
        REGNET,
        CONVNEXT,
        NB201,
        VIT,
        BERT,
        GPT,
        MLP_MIXER,
        RNN,
        UNET,
        SSD,
        YOLO,
        AUDIO_CNN,
        PADDLE_CNN,
        TF_NHWC_CNN,
        VAD_STREAM,
        RNN_DECODER,
        TINY_MLP,
        OCR_REC,
        OCR_DET,
    )
}

__all__ = ["FAMILIES"]
