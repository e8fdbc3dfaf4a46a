"""Instruction editors on diffusers pipelines (Qwen-Image-Edit, FLUX.1 Kontext, LongCat-Image-Edit, MotionEdit).

Each module keeps diffusers' imports inside functions, so ``tvbench ls`` never imports diffusers.
"""
