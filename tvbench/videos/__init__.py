"""Videos -> benchmark cases (the paper's TV-Edit-23K pipeline, Sec. 3.2 / App. A): ``tvbench data build``.

Stages, one module each: :mod:`clips` (decode, segment at strides), :mod:`tracking` (trackers and flow estimators),
:mod:`sampling` (flow-weighted sparse points), :mod:`filters` (border motion, blur, minimum motion),
:mod:`annotate` (MLLM instructions with verification), :mod:`build` (the resumable builder and its funnel).
"""
