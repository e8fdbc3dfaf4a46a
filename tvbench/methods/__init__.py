"""The method registry: editing methods by name, imported only when used.

Built-in methods live in the ``adapters/`` folder (imported as ``tvbench_adapters``), one module per family.
Other packages add methods through the ``tvbench.methods`` entry-point group::

    [project.entry-points."tvbench.methods"]
    my-editor = "my_package.editor:MyEditor"

Methods that live in other repositories are spec files (``adapters/external``), found in the folders of
``TVBENCH_METHOD_PATH`` or given with ``tvbench run --method-spec FILE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvbench.errors import ConfigError
from tvbench.features.weights import FILE
from tvbench.methods.base import (INPUT_LETTERS, INPUTS, EditResult, Method, Outcome, Runtime, at_source_size,
                                  case_seed, check_method, input_letters, restrict_case, runtime_option,
                                  setup_method)
from tvbench.methods.needs import Need, method_needs
from tvbench.registry import Registry

METHODS: Registry[type[Method]] = Registry("method", entry_point_group="tvbench.methods")

METHODS.register("identity", "tvbench_adapters.reference:Identity")
METHODS.register("oracle", "tvbench_adapters.reference:Oracle")
METHODS.register("tps-warp", "tvbench_adapters.warp:ThinPlateSplineWarp")
METHODS.register("nanobanana-pro", "tvbench_adapters.api.gemini:NanoBananaPro", extra="api", requires=("google.genai",))
METHODS.register("gpt-image", "tvbench_adapters.api.openai_images:GptImage", extra="api", requires=("openai",))
# diffusers instruction editors (Table 1's I rows); diffusers and transformers are imported only in setup().
_EDITORS = {
    "qwen-image-edit": "qwen:QwenImageEdit",
    "qwen-image-edit-2509": "qwen:QwenImageEdit2509",
    "qwen-image-edit-2511": "qwen:QwenImageEdit2511",
    "motionedit": "qwen:MotionEdit",
    "flux-kontext": "kontext:FluxKontext",
    "longcat-image-edit": "longcat:LongCatImageEdit",
}
# weights= : the options naming weights by default and the file marking them (what `tvbench ls` looks for)
_PIPELINE = {"model": "model_index.json"}
for _name, _target in _EDITORS.items():
    _requires = ("diffusers", "transformers", "peft") if _name == "motionedit" else ("diffusers", "transformers")
    _weights = {**_PIPELINE, "lora": FILE} if _name == "motionedit" else _PIPELINE  # MotionEdit is a LoRA on 2509
    METHODS.register(_name, f"tvbench_adapters.editors.{_target}", extra="diffusers", requires=_requires,
                     weights=_weights)
# the TV-Edit controller on two of those editors (the paper's method, Table 1's T+I rows); controller has no default
_TVEDIT = {**_PIPELINE, "controller": "controller.safetensors"}
METHODS.register("tvedit-qwen", "tvbench_adapters.tvedit.methods:TVEditQwen", extra="diffusers",
                 requires=("diffusers", "transformers"), weights=_TVEDIT)
METHODS.register("tvedit-kontext", "tvbench_adapters.tvedit.methods:TVEditKontext", extra="diffusers",
                 requires=("diffusers", "transformers"), weights=_TVEDIT)

# The native diffusion drag engine (adapters/drag/): Stable Diffusion 1.5 through diffusers, LoRA through PEFT.
_DRAG_NEEDS = ("torch", "diffusers", "transformers", "peft")
_SD = {"model": "unet/config.json"}
METHODS.register("dragdiffusion", "tvbench_adapters.drag.dragdiffusion:DragDiffusion", extra="diffusers",
                 requires=_DRAG_NEEDS, weights=_SD)
METHODS.register("gooddrag", "tvbench_adapters.drag.gooddrag:GoodDrag", extra="diffusers", requires=_DRAG_NEEDS,
                 weights={**_SD, "vae": "config.json"})
METHODS.register("clipdrag", "tvbench_adapters.drag.clipdrag:ClipDrag", extra="diffusers", requires=_DRAG_NEEDS,
                 weights={**_SD, "clip_model": "config.json"})
METHODS.register("dragnoise", "tvbench_adapters.drag.dragnoise:DragNoise", extra="diffusers", requires=_DRAG_NEEDS,
                 weights=_SD)


def _register_method_specs() -> None:
    """Methods run from other repositories, described by spec files (``TVBENCH_METHOD_PATH``, shipped examples)."""
    from tvbench_adapters.external.discovery import register_specs

    register_specs(METHODS)


_register_method_specs()


def create_method(name: str, options: dict[str, str] | None = None) -> Method:
    """timm-style factory: ``create_method("tps-warp", {"anchor_spacing": "24"})``."""
    cls = METHODS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {name!r} is registered as {cls!r}, which is not a tvbench Method subclass")
    return cls.from_options(options or {})


@dataclass(frozen=True)
class MethodInfo:
    name: str
    available: bool  # its code and packages are installed
    inputs: str  # Table 1 letters, e.g. "M+T"
    summary: str
    reason: str
    origin: str
    needs: tuple[Need, ...] = ()  # weights and keys of its default options, each here or not

    @property
    def ready(self) -> bool:
        """Available, and everything it needs with its default options is here (weights cached, key set)."""
        return self.available and all(need.ready for need in self.needs)


def list_methods() -> list[MethodInfo]:
    """Every registered method with its availability and needs; never raises for a broken one, never uses the
    network (:mod:`tvbench.methods.needs`)."""
    rows = []
    for name in METHODS.names():
        status = METHODS.availability(name)
        entry = METHODS.entry(name)
        if status.available:
            cls = METHODS.load(name)
            inputs = getattr(cls, "inputs", frozenset())
            try:
                needs = tuple(method_needs(cls, entry.weights))
            except Exception as exc:  # a plugin's odd declaration must not break the listing
                needs = (Need("its needs", False, f"cannot be checked: {type(exc).__name__}: {exc}"),)
            rows.append(MethodInfo(name, True, input_letters(inputs), getattr(cls, "summary", ""), "", entry.origin,
                                   needs))
        else:
            rows.append(MethodInfo(name, False, "?", "", status.reason, entry.origin))
    return rows


__all__ = ["INPUTS", "INPUT_LETTERS", "METHODS", "EditResult", "Method", "MethodInfo", "Need", "Outcome", "Runtime",
           "case_seed", "create_method", "input_letters", "list_methods", "restrict_case", "runtime_option",
           "at_source_size", "check_method", "setup_method"]
