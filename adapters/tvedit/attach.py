"""Put a TV-Edit controller into an unmodified diffusers pipeline: a forward pre-hook on its transformer.

``attach(pipe, controller, pairs, image_size)`` registers ``register_forward_pre_hook(..., with_kwargs=True)``
on ``pipe.transformer``. On every transformer call the hook reads the call's own arguments (the packed latent
tokens ``hidden_states`` = noised latent then condition image, ``timestep``, the text states and, per backbone,
``img_shapes`` or ``img_ids``/``txt_ids``/``pooled_projections``/``guidance``), renders the drag points at the
call's token grids, runs the controller and passes its residuals through the transformer's own
``controlnet_block_samples`` (FLUX: also ``controlnet_single_block_samples``) arguments. Nothing of diffusers
is copied or patched; ``handle.remove()`` takes the hook off again.

Classifier-free guidance: the official pipeline gives the controller the *positive* prompt in both branches
(PolyU-VCLab/TVEdit ``demo/tvedit_qwen/pipelines.py``: both controller calls take ``prompt_embeds``). In
diffusers 0.42 QwenImageEdit(Plus) and FluxKontext call the transformer for the positive branch first, then
for the negative one with the very same latent tokens and timestep. The hook therefore keeps the residuals of
a call and hands them, once, to the next call when its latents and timestep are equal: the controller runs
once per step, on the positive prompt (``share_positive=False`` runs it on each call's own prompt instead).

Points are ``(x_handle, y_handle, x_target, y_target)`` in the pixels of an image of ``image_size`` (the
source as the case gives it): handles are drawn on the condition image's grid, targets on the noised latent's.
The point tokens depend only on the grids, so they are computed once per grid and batch size.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch

from tvbench.errors import ConfigError
from tvbench_adapters.tvedit.controller import TVEditController
from tvbench_adapters.tvedit.injection import transformer_kwargs
from tvbench_adapters.tvedit.point_encoder import SparsePointEncoder
from tvbench_adapters.tvedit.points import DragPair, point_map

Grid = tuple[int, int]  # token rows, token columns


def image_grids(call: dict[str, Any], backbone: str) -> list[Grid]:
    """Token grids of the call's image parts in order: noised latent, then each condition image."""
    tokens = call["hidden_states"].shape[1]
    if backbone == "qwen":
        shapes = call.get("img_shapes")
        if not shapes:
            raise ConfigError("transformer call without img_shapes: cannot place the drag points")
        per_sample = shapes[0] if isinstance(shapes[0], list) else shapes
        grids = [(int(h), int(w)) for frames, h, w in per_sample for _ in range(int(frames))]
    else:
        ids = call.get("img_ids")
        if ids is None:
            raise ConfigError("transformer call without img_ids: cannot place the drag points")
        ids = ids[0] if ids.ndim == 3 else ids
        grids = []
        for value in torch.unique_consecutive(ids[:, 0]).tolist():
            part = ids[ids[:, 0] == value]
            grids.append((int(part[:, 1].max() - part[:, 1].min()) + 1, int(part[:, 2].max() - part[:, 2].min()) + 1))
    if sum(rows * cols for rows, cols in grids) != tokens:
        raise ConfigError(f"image grids {grids} do not cover the {tokens} latent tokens of this transformer call")
    return grids


def _as_cases(pairs: Any, image_size: Any) -> list[tuple[list[DragPair], tuple[int, int]]]:
    """One case (a list of 4-number pairs, one size) or a batch (a list of such lists, one size each or shared)."""
    single = len(pairs) == 0 or (len(pairs[0]) == 4 and all(isinstance(v, (int, float)) for v in pairs[0]))
    batch = [pairs] if single else list(pairs)
    sizes = [image_size] * len(batch) if isinstance(image_size[0], (int, float)) else list(image_size)
    if len(sizes) != len(batch):
        raise ConfigError(f"{len(batch)} point sets but {len(sizes)} image sizes")
    return [([tuple(float(v) for v in p) for p in case], (int(w), int(h))) for case, (w, h) in zip(batch, sizes)]


class ControllerHook:
    """The forward pre-hook itself (``hook(module, args, kwargs)``), with the drag points of the current call.

    Methods register it through their own hook bookkeeping and call :meth:`set_points` around each pipeline
    call; :func:`attach` registers it for a plain pipeline and returns a :class:`ControllerHandle`.
    """

    def __init__(self, transformer: torch.nn.Module, controller: TVEditController, *,
                 conditioning_scale: float = 1.0, share_positive: bool = True):
        self.controller = controller
        self.spec = controller.spec
        self.conditioning_scale = float(conditioning_scale)
        self.share_positive = share_positive
        self.controller_calls = 0  # controller forwards run (for tests and timing)
        self.reused_calls = 0  # transformer calls that took the previous call's residuals (CFG negative branch)
        self._signature = inspect.signature(transformer.forward)
        self.cases: list[tuple[list[DragPair], tuple[int, int]]] | None = None
        self._tokens: dict[tuple, torch.Tensor] = {}
        self.reset()

    def set_points(self, pairs: Any, image_size: Any) -> None:
        """New drag points (one case, or one per batch item); forgets every cached token and residual."""
        self.cases = _as_cases(pairs, image_size)
        self._tokens = {}
        self.reset()

    def clear_points(self) -> None:
        """No points: a transformer call now is refused (never silently run without control)."""
        self.cases = None
        self._tokens = {}
        self.reset()

    def reset(self) -> None:
        """Forget the residuals kept for a negative branch (call between edits that reuse the same latents)."""
        self._kept: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]] | None = None

    def __call__(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return self._before_forward(module, args, kwargs)

    def point_tokens(self, grids: list[Grid], batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        if self.cases is None:
            raise ConfigError("the TV-Edit controller has no drag points for this transformer call")
        if batch % len(self.cases):
            raise ConfigError(f"transformer batch of {batch} does not split over {len(self.cases)} point set(s)")
        key = (tuple(grids), batch, str(device), dtype)
        if key in self._tokens and not torch.is_grad_enabled():
            return self._tokens[key]
        step = SparsePointEncoder.pixels_per_token
        size = [(cols * step, rows * step) for rows, cols in grids]  # (width, height) of each map
        targets, handles = [], []
        for pairs, image_size in self.cases:
            targets.append(point_map([(p[2], p[3]) for p in pairs], image_size, size[0]))
            if len(grids) > 1:
                handles.append(point_map([(p[0], p[1]) for p in pairs], image_size, size[1]))
        repeat = batch // len(self.cases)
        target_maps = torch.stack(targets).repeat_interleave(repeat, dim=0).to(device)
        handle_maps = torch.stack(handles).repeat_interleave(repeat, dim=0).to(device) if handles else None
        tokens = self.controller.point_tokens(target_maps, handle_maps, grids[2:]).to(dtype)
        if not torch.is_grad_enabled():
            self._tokens[key] = tokens
        return tokens

    def residuals(self, call: dict[str, Any]) -> list[torch.Tensor]:
        hidden, timestep = call["hidden_states"], call["timestep"]
        kept = self._kept
        if self.share_positive and kept is not None and kept[1].shape == timestep.shape \
                and torch.equal(kept[1], timestep) and (kept[0] is hidden or torch.equal(kept[0], hidden)):
            self._kept = None
            self.reused_calls += 1
            return kept[2]
        self._ensure_device(hidden.device)
        grids = image_grids(call, self.spec.backbone)
        tokens = self.point_tokens(grids, hidden.shape[0], hidden.device, hidden.dtype)
        residuals = self.controller.casc(hidden, tokens, conditioning_scale=self.conditioning_scale, **{
            name: value for name, value in call.items() if name != "hidden_states"})
        self.controller_calls += 1
        self._kept = (hidden, timestep.detach().clone(), residuals) if self.share_positive else None
        return residuals

    def _ensure_device(self, device: torch.device) -> None:
        """Follow the latents (under model offload the backbone moves, the small controller stays put)."""
        weight = self.controller.point_encoder.out.weight
        if weight.device != device:
            self.controller.to(device)

    def _before_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        call = dict(self._signature.bind_partial(*args, **kwargs).arguments)
        for name in ("controlnet_block_samples", "controlnet_single_block_samples"):
            if call.get(name) is not None:
                raise ConfigError(f"the pipeline already passes {name}: TV-Edit cannot share the transformer with "
                                  "another ControlNet")
        residuals = self.residuals(call)
        kwargs = dict(kwargs)
        kwargs.update(transformer_kwargs(residuals, self.spec.main_double_blocks, self.spec.main_single_blocks))
        return args, kwargs


class ControllerHandle(ControllerHook):
    """A hook registered by :func:`attach`: ``remove()`` detaches it; usable as a context manager."""

    def __init__(self, transformer: torch.nn.Module, controller: TVEditController, pairs: Any, image_size: Any, *,
                 conditioning_scale: float = 1.0, share_positive: bool = True):
        super().__init__(transformer, controller, conditioning_scale=conditioning_scale,
                         share_positive=share_positive)
        self.set_points(pairs, image_size)
        self._registration = transformer.register_forward_pre_hook(self, with_kwargs=True)

    def remove(self) -> None:
        self._registration.remove()
        self.clear_points()

    def __enter__(self) -> ControllerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def attach(pipe_or_transformer: Any, controller: TVEditController, pairs: Sequence, image_size: Sequence, *,
           conditioning_scale: float = 1.0, share_positive: bool = True, move: bool = True) -> ControllerHandle:
    """Attach ``controller`` with the drag ``pairs`` of an image of ``image_size = (W, H)`` to a pipeline (or
    directly to its transformer). ``move`` puts the controller on the transformer's device and dtype first."""
    transformer = getattr(pipe_or_transformer, "transformer", pipe_or_transformer)
    controller.spec.check_transformer(transformer)
    if move:
        parameter = next(transformer.parameters())
        controller.to(device=parameter.device, dtype=parameter.dtype)
    controller.eval()
    return ControllerHandle(transformer, controller, pairs, image_size, conditioning_scale=conditioning_scale,
                            share_positive=share_positive)
