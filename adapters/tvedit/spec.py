"""The shape of a TV-Edit controller, derived from its backbone's transformer config (no torch needed).

A :class:`ControllerSpec` holds everything needed to build the point encoder and the content-aware spatial
controller (``casc``) for one backbone, and travels with every checkpoint we write, so a file always says
what it is. The two backbones of the paper (Sec. 4.1) ship as JSON transformer configs in ``configs/``
(there is no hub on the machines that list layouts):

- ``qwen``: Qwen-Image-Edit (``QwenImageTransformer2DModel``, 60 double-stream blocks, width 24 x 128);
- ``kontext``: FLUX.1 Kontext (``FluxTransformer2DModel``, 19 double-stream + 38 single-stream blocks).

Controller width is half the backbone's (paper Sec. 3.3). For the real Qwen-Image width (3072) the heads are
16 x 96 with rope axes (16, 40, 40), the values hard-coded in the official ``from_transformer``
(PolyU-VCLab/TVEdit, ``demo/tvedit_qwen/content_aware_spatial_controller.py``). Any other width (FLUX.1
Kontext, tiny test models) keeps the backbone's head size and rope axes and halves the number of heads
(at least one): for Kontext that is 12 x 128 with axes (16, 56, 56), our choice, as no official Kontext code
exists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Mapping

from tvbench.errors import ConfigError

BACKBONES = ("qwen", "kontext")
CONTROLLER_LABEL = "TV-Edit controller"  # how errors name the controller= weights
BACKBONE_CLASSES = {"QwenImageTransformer2DModel": "qwen", "FluxTransformer2DModel": "kontext"}
CONFIG_FILES = {"qwen": "qwen-image-edit.json", "kontext": "flux-kontext.json"}

DEFAULT_BLOCKS = 5  # paper Sec. 4.1: "We use a number of N = 5 controller blocks"
DEFAULT_INJECTIONS = 15  # official code: three heads per block at N = 5; Table E.4's counts keep 15 for every N
POINT_CHANNELS = 64  # the point encoder's token width (4 -> 64 channels over four stride-2 blocks)
OFFICIAL_QWEN_WIDTH = 3072
OFFICIAL_QWEN_HEADS = (16, 96, (16, 40, 40))  # heads, head size, rope axes of the official controller


def backbone_config(backbone: str) -> dict[str, Any]:
    """The real transformer config of a backbone, read from the JSON file shipped in this package."""
    if backbone not in CONFIG_FILES:
        raise ConfigError(f"backbone {backbone!r}: choose one of {', '.join(BACKBONES)}")
    text = resources.files("tvbench_adapters.tvedit").joinpath("configs", CONFIG_FILES[backbone]).read_text()
    return json.loads(text)


def backbone_of(transformer_or_class: Any) -> str:
    """``qwen`` or ``kontext`` for a transformer instance, class or class name."""
    if isinstance(transformer_or_class, str):
        name = transformer_or_class
    elif isinstance(transformer_or_class, type):
        name = transformer_or_class.__name__
    else:
        name = type(transformer_or_class).__name__
    if name not in BACKBONE_CLASSES:
        raise ConfigError(f"transformer {name}: TV-Edit supports {', '.join(BACKBONE_CLASSES)}")
    return BACKBONE_CLASSES[name]


@dataclass(frozen=True)
class ControllerSpec:
    """Every size the point encoder and the controller are built from."""

    backbone: str
    blocks: int
    injections: int
    num_attention_heads: int
    attention_head_dim: int
    axes_dims_rope: tuple[int, ...]
    latent_channels: int  # channels of the backbone's packed latent tokens (its in_channels)
    text_dim: int  # width of the text encoder's states (joint_attention_dim)
    main_width: int  # backbone width: each injected residual has this many channels
    main_double_blocks: int
    main_single_blocks: int = 0
    pooled_projection_dim: int = 0  # FLUX only: pooled CLIP text embedding
    guidance_embeds: bool = False  # FLUX.1 Kontext is guidance-distilled: its timestep embedding takes guidance
    point_channels: int = POINT_CHANNELS

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone {self.backbone!r}: choose one of {', '.join(BACKBONES)}")
        if self.blocks < 1:
            raise ConfigError(f"--blocks {self.blocks}: the controller needs at least one block")
        if self.injections < 1:
            raise ConfigError(f"--injections {self.injections}: at least one injection head is needed")
        if sum(self.axes_dims_rope) != self.attention_head_dim:
            raise ConfigError(f"rope axes {self.axes_dims_rope} do not add up to the head size "
                              f"{self.attention_head_dim}")

    @property
    def width(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def main_blocks(self) -> int:
        return self.main_double_blocks + self.main_single_blocks

    @classmethod
    def for_backbone(cls, config: Mapping[str, Any], backbone: str | None = None, *, blocks: int = DEFAULT_BLOCKS,
                     injections: int = DEFAULT_INJECTIONS) -> ControllerSpec:
        """The controller for a backbone transformer config (a dict or a diffusers ``FrozenDict``)."""
        backbone = backbone or backbone_of(config.get("_class_name", ""))
        heads, head_dim = int(config["num_attention_heads"]), int(config["attention_head_dim"])
        main_width = heads * head_dim
        if backbone == "qwen" and main_width == OFFICIAL_QWEN_WIDTH:
            c_heads, c_head_dim, axes = OFFICIAL_QWEN_HEADS
        else:
            c_heads, c_head_dim, axes = max(1, heads // 2), head_dim, tuple(config["axes_dims_rope"])
        return cls(
            backbone=backbone, blocks=int(blocks), injections=int(injections), num_attention_heads=c_heads,
            attention_head_dim=c_head_dim, axes_dims_rope=tuple(int(a) for a in axes),
            latent_channels=int(config["in_channels"]), text_dim=int(config["joint_attention_dim"]),
            main_width=main_width, main_double_blocks=int(config["num_layers"]),
            main_single_blocks=int(config.get("num_single_layers", 0)) if backbone == "kontext" else 0,
            pooled_projection_dim=int(config.get("pooled_projection_dim", 0)) if backbone == "kontext" else 0,
            guidance_embeds=bool(config.get("guidance_embeds", False)) if backbone == "kontext" else False)

    @classmethod
    def for_transformer(cls, transformer: Any, *, blocks: int = DEFAULT_BLOCKS,
                        injections: int = DEFAULT_INJECTIONS) -> ControllerSpec:
        return cls.for_backbone(transformer.config, backbone_of(transformer), blocks=blocks, injections=injections)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["axes_dims_rope"] = list(self.axes_dims_rope)
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ControllerSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(record) - known)
        if unknown:
            raise ConfigError(f"controller spec: unknown field(s) {', '.join(unknown)}")
        values = dict(record)
        values["axes_dims_rope"] = tuple(values.get("axes_dims_rope", ()))
        return cls(**values)

    def check_transformer(self, transformer: Any) -> None:
        """Refuse a controller built for another backbone shape (one line naming the mismatch)."""
        other = ControllerSpec.for_transformer(transformer, blocks=self.blocks, injections=self.injections)
        for name in ("backbone", "latent_channels", "text_dim", "main_width", "main_double_blocks",
                     "main_single_blocks", "pooled_projection_dim", "guidance_embeds"):
            if getattr(self, name) != getattr(other, name):
                raise ConfigError(f"controller was built for {name}={getattr(self, name)!r}, but the pipeline's "
                                  f"transformer has {getattr(other, name)!r}")
