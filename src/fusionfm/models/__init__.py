"""Student networks: the conditional U-Net that predicts the flow-matching velocity."""

from fusionfm.models.unet import (
    TASK_INDEX,
    FusionUNet,
    UNetConfig,
    count_parameters,
    crop_to,
    pad_to_stride,
    timestep_embedding,
)

__all__ = [
    "TASK_INDEX",
    "FusionUNet",
    "UNetConfig",
    "count_parameters",
    "crop_to",
    "pad_to_stride",
    "timestep_embedding",
]
