"""Instruction editors on diffusers pipelines (Qwen-Image-Edit, FLUX.1 Kontext, LongCat-Image-Edit, MotionEdit).

- ``base``: :class:`~tvbench_adapters.editors.base.DiffusersEditor`, what every editor shares (weights, device,
  seeds, sizes, facts, teardown) and the extension points the TV-Edit controller subclasses through;
- ``sizing``: working sizes, and the thread-scoped working area of the Qwen and LongCat pipelines;
- ``lora``: LoRA files in any common key layout, loaded and checked to have changed the transformer;
- ``qwen``, ``kontext``, ``longcat``: the editors, with their model cards' defaults.

Each module keeps diffusers' imports inside functions, so ``tvbench ls`` never imports diffusers.
"""
