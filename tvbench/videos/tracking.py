"""Trackers (dense grid tracks over a clip) and flow estimators (I1 -> I2), as registries.

Classical CPU entries, no weights: ``lk`` (OpenCV pyramidal Lucas-Kanade over every frame of the clip with a
forward-backward check) and ``dis`` (OpenCV DIS optical flow). Learned entries (torch, weights, GPU when there is
one) live in :mod:`tvbench.videos.models` and are imported only when asked for: ``cotracker3`` (the paper's
tracker, from its authors' torch.hub code), ``sea-raft`` (the paper's flow, from a checkout of its authors' code)
and ``raft`` (torchvision's RAFT, which needs no checkout).

Every entry takes options as text (``key=value`` from the command line): each entry lists the keys it accepts,
with a parser per key, so a typo or a bad value is one line naming it before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from tvbench.errors import ConfigError, UnavailableError

if TYPE_CHECKING:  # numpy is imported where it runs: `tvbench ls` lists these registries without it
    import numpy as np


@dataclass
class Tracks:
    start: np.ndarray  # (N, 2) float32 x, y in I1
    end: np.ndarray  # (N, 2) float32 x, y in I2
    visible: np.ndarray  # (N,) bool: tracked through the clip, visible at the end, forward-backward consistent

    def kept(self) -> "Tracks":
        v = self.visible
        return Tracks(self.start[v], self.end[v], v[v])

    def __len__(self) -> int:
        return len(self.start)


@dataclass(frozen=True)
class Option:
    """One accepted ``key=value`` of a registry entry: ``parse`` turns the text into the constructor's value (raising
    ValueError when it cannot), ``expects`` says in words what a good value is, for the error and for listings."""

    parse: Callable[[str], Any]
    expects: str


def _int_option(minimum: int, maximum: int | None = None) -> Option:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(text)
        return value
    top = f" and <= {maximum}" if maximum is not None else ""
    return Option(parse, f"an integer >= {minimum}{top}")


def _float_option(minimum: float) -> Option:
    def parse(text: str) -> float:
        value = float(text)
        if not value >= minimum or value == float("inf"):
            raise ValueError(text)
        return value
    return Option(parse, f"a number >= {minimum:g}")


def _choice_option(*choices: str) -> Option:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text
    return Option(parse, "one of " + ", ".join(choices))


def _text_option(expects: str) -> Option:
    def parse(text: str) -> str:
        if not text.strip():
            raise ValueError(text)
        return text.strip()
    return Option(parse, expects)


def _device_option() -> Option:
    """Checked when the entry is created (:func:`tvbench.device.resolve_device`), which is where torch is loaded."""
    def parse(text: str) -> str:
        text = text.strip().lower()
        index = text.partition(":")[2]
        if text not in ("auto", "cpu", "cuda", "mps") and not (text.startswith("cuda:") and index.isdigit()):
            raise ValueError(text)
        return text
    return Option(parse, "auto, cpu, cuda, cuda:N or mps")


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise UnavailableError("tvbench data build needs OpenCV: pip install 'tvbench[video]'") from exc
    return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
    return _cv2().cvtColor(frame, _cv2().COLOR_RGB2GRAY)


def grid_points(width: int, height: int, per_side: int = 24) -> np.ndarray:
    """A regular grid of about ``per_side`` points along the longer side, half a step from the edges."""
    import numpy as np

    step = max(width, height) / per_side
    xs = np.arange(step / 2, width, step)
    ys = np.arange(step / 2, height, step)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)


class LucasKanadeTracker:
    """Pyramidal LK frame to frame over the clip, then back; a track survives if every step succeeded both ways,
    it stays in the frame, it returns within ``fb_max_px`` of where it started, and its patch at the end looks like
    its patch at the start (mean absolute grey difference of a ``patch`` square at most ``appearance_max``): a point
    covered by a moving object (occluded, so not visible at the end) is dropped even when LK slid along with it."""

    name = "lk"
    options = {"per_side": _int_option(2), "win": _int_option(3), "levels": _int_option(0, 8),
               "fb_max_px": _float_option(0.0), "patch": _int_option(1), "appearance_max": _float_option(0.0)}

    def __init__(self, per_side: int = 24, win: int = 15, levels: int = 3, fb_max_px: float = 1.0,
                 patch: int = 9, appearance_max: float = 8.0):
        self.per_side, self.win, self.levels, self.fb_max_px = per_side, win, levels, fb_max_px
        self.patch, self.appearance_max = patch, appearance_max

    def describe(self) -> dict:
        return {"name": self.name, "per_side": self.per_side, "win": self.win, "levels": self.levels,
                "fb_max_px": self.fb_max_px, "patch": self.patch, "appearance_max": self.appearance_max}

    def _appearance(self, first: np.ndarray, last: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        import numpy as np

        cv2 = _cv2()
        size = (self.patch, self.patch)
        a, b = first.astype(np.float32), last.astype(np.float32)
        return np.array([float(np.abs(cv2.getRectSubPix(a, size, tuple(map(float, p)))
                                      - cv2.getRectSubPix(b, size, tuple(map(float, q)))).mean())
                         for p, q in zip(start, end)], np.float32)

    def _run(self, grays: list[np.ndarray], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        cv2 = _cv2()
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
        ok = np.ones(len(points), bool)
        current = points.reshape(-1, 1, 2).astype(np.float32)
        for a, b in zip(grays[:-1], grays[1:]):
            current, status, _ = cv2.calcOpticalFlowPyrLK(a, b, current, None, winSize=(self.win, self.win),
                                                          maxLevel=self.levels, criteria=criteria)
            ok &= status.reshape(-1).astype(bool)
        return current.reshape(-1, 2), ok

    def track_many(self, clips: list[list[np.ndarray]]) -> list[Tracks]:
        """One clip at a time: LK gains nothing from a batch."""
        return [self.track(frames) for frames in clips]

    def track(self, frames: list[np.ndarray]) -> Tracks:
        import numpy as np

        grays = [_gray(f) for f in frames]
        height, width = grays[0].shape
        start = grid_points(width, height, self.per_side)
        end, ok_forward = self._run(grays, start)
        back, ok_backward = self._run(grays[::-1], end)
        inside = (end[:, 0] >= 0) & (end[:, 0] <= width - 1) & (end[:, 1] >= 0) & (end[:, 1] <= height - 1)
        consistent = np.linalg.norm(back - start, axis=1) <= self.fb_max_px
        similar = self._appearance(grays[0], grays[-1], start, end) <= self.appearance_max
        return Tracks(start, end, ok_forward & ok_backward & inside & consistent & similar)


class DisFlow:
    """OpenCV DIS optical flow from I1 to I2 (grey), (H, W, 2) in pixels."""

    name = "dis"
    options = {"preset": _choice_option("ultrafast", "fast", "medium")}

    def __init__(self, preset: str = "medium"):
        self.preset = preset

    def describe(self) -> dict:
        return {"name": self.name, "preset": self.preset}

    def flow_many(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """One pair at a time: DIS gains nothing from a batch."""
        return [self.flow(first, last) for first, last in pairs]

    def flow(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        dis = cv2.DISOpticalFlow_create(presets[self.preset])
        return dis.calc(_gray(first), _gray(last), None)


class _Learned:
    """A torch entry: its options are known here, its class is imported from :mod:`tvbench.videos.models` only when
    it is created, so importing this module (and listing the registries) does not load torch."""

    def __init__(self, class_name: str, options: dict[str, Option]):
        self.class_name, self.options = class_name, options

    def __call__(self, **options: Any) -> object:
        from tvbench.videos import models

        return getattr(models, self.class_name)(**options)


_RAFT_OPTIONS = {
    "size": _choice_option("large", "small"),
    "weights": _text_option("DEFAULT, a torchvision weights name (e.g. C_T_SKHT_V2) or a state-dict file"),
    "iters": _int_option(1, 64),
    "device": _device_option(),
}
_SEA_RAFT_OPTIONS = {
    "repo": _text_option("a local checkout of github.com/princeton-vl/SEA-RAFT"),
    "config": _text_option("a name under the checkout's config/eval (spring-M) or a JSON file"),
    "weights": _text_option("a Hugging Face id in the HF cache, a save_pretrained folder or a state-dict file"),
    "device": _device_option(),
}
_COTRACKER_OPTIONS = {
    "repo": _text_option("a local folder holding the co-tracker repository (with hubconf.py)"),
    "weights": _text_option("DEFAULT (the published scaled_offline.pth in the torch cache) or a state-dict file"),
    "grid_size": _int_option(1, 512),
    "device": _device_option(),
}

TRACKERS: dict[str, tuple[Callable[..., object], str]] = {
    "lk": (LucasKanadeTracker, "OpenCV pyramidal Lucas-Kanade on a dense grid, forward-backward check (CPU)"),
    "cotracker3": (_Learned("CoTracker3Tracker", _COTRACKER_OPTIONS),
                   "the paper's tracker: CoTracker3 offline from its authors' torch.hub code (torch, GPU if any; "
                   "CC BY-NC weights)"),
}
FLOWS: dict[str, tuple[Callable[..., object], str]] = {
    "dis": (DisFlow, "OpenCV DIS optical flow (CPU)"),
    "raft": (_Learned("RaftFlow", _RAFT_OPTIONS), "torchvision's RAFT, large or small (torch, GPU if any; weights "
                                                  "from PyTorch's download host)"),
    "sea-raft": (_Learned("SeaRaftFlow", _SEA_RAFT_OPTIONS),
                 "the paper's flow: SEA-RAFT from a checkout of its authors' code (torch, GPU if any; weights "
                 "from the Hugging Face hub)"),
}


def _options_of(factory: Callable[..., object]) -> dict[str, Option] | None:
    return getattr(factory, "options", {})


def parse_options(kind: str, name: str, accepted: dict[str, Option] | None,
                  given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Text options -> constructor keyword arguments; an unknown key or a bad value is a one-line ConfigError."""
    given = dict(given or {})
    if accepted is None:  # an entry that refuses whatever it is given
        return given
    values = {}
    for key, raw in given.items():
        if key not in accepted:
            keys = ", ".join(accepted) if accepted else "none"
            raise ConfigError(f"{kind} {name}: unknown option {key!r}; accepted: {keys}")
        try:
            values[key] = accepted[key].parse(str(raw))
        except ValueError:
            raise ConfigError(f"{kind} {name}: option {key}={raw!s}: expected {accepted[key].expects}") from None
    return values


AUTO = {"tracker": ("cotracker3", "lk"), "flow estimator": ("raft", "dis")}  # (with a CUDA GPU, without)


def _auto(kind: str, name: str, options: Mapping[str, Any] | None) -> str:
    """``auto``: the paper's model where this process sees a CUDA GPU (CoTracker3; RAFT standing in for SEA-RAFT),
    the classical CPU entry elsewhere. Resolved where the work runs (a Ray actor on a GPU node says yes)."""
    if name != "auto":
        return name
    if options:
        raise ConfigError(f"{kind} auto: options ({', '.join(options)}) need a named {kind}: "
                          f"{' or '.join(AUTO[kind])}")
    from tvbench.device import resolve_device

    return AUTO[kind][0] if resolve_device("auto").startswith("cuda") else AUTO[kind][1]


def _resolve(registry: dict, kind: str, name: str, options: Mapping[str, Any] | None):
    """The entry's factory and its keyword arguments: a cheap check (no weights) of the name and options."""
    name = _auto(kind, name, options)
    if name not in registry:
        from tvbench.registry import suggest

        raise ConfigError(f"unknown {kind} {name!r}{suggest(name, list(registry))}; available: {', '.join(registry)}")
    factory = registry[name][0]
    return factory, parse_options(kind, name, _options_of(factory), options)


def _create(registry: dict, kind: str, name: str, options: Mapping[str, Any] | None):
    factory, kwargs = _resolve(registry, kind, name, options)
    return factory(**kwargs)


def check_tracker(name: str, options: Mapping[str, Any] | None = None) -> None:
    """Refuse an unknown tracker or a bad option before anything is loaded or written (``auto`` is checked as a
    name only: what it becomes depends on the machine that runs the work)."""
    if name != "auto":
        _resolve(TRACKERS, "tracker", name, options)
    elif options:
        _auto("tracker", name, options)


def check_flow(name: str, options: Mapping[str, Any] | None = None) -> None:
    if name != "auto":
        _resolve(FLOWS, "flow estimator", name, options)
    elif options:
        _auto("flow estimator", name, options)


def create_tracker(name: str = "auto", options: Mapping[str, Any] | None = None):
    """A tracker by registry name; ``options`` as given on the command line (``{"grid_size": "20"}``)."""
    return _create(TRACKERS, "tracker", name, options)


def create_flow(name: str = "auto", options: Mapping[str, Any] | None = None):
    """A flow estimator by registry name; ``options`` as given on the command line (``{"size": "small"}``)."""
    return _create(FLOWS, "flow estimator", name, options)


def describe_registry() -> dict[str, dict[str, dict]]:
    """Every tracker and flow estimator with its one-line description and accepted options, for listings/help."""
    def entries(registry: dict) -> dict[str, dict]:
        listed = {}
        for name, (factory, text) in registry.items():
            accepted = _options_of(factory)
            listed[name] = {"description": text,
                            "options": {k: o.expects for k, o in (accepted or {}).items()}}
        return listed
    return {"trackers": entries(TRACKERS), "flows": entries(FLOWS)}
