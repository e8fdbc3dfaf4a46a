"""The networks' defaults, importable without torch (the CLI and the scoring configuration read them)."""

DEFAULT_BACKBONE = "timm/vit_base_patch16_dinov3.lvd1689m"
DEFAULT_RESOLUTION = 448

# Randomly initialised DINOv3 architectures for offline pipeline checks (never for reported numbers).
RANDOM_BACKBONES = {
    "random-tiny": ("vit_small_patch16_dinov3", {"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 256}),
    "random-vits16": ("vit_small_patch16_dinov3", {"img_size": 256}),
}
