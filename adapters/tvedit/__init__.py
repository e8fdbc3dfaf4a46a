"""The TV-Edit controller (point encoder + content-aware spatial controller) on Qwen-Image-Edit and FLUX.1 Kontext."""
