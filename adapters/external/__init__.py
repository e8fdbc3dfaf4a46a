"""Methods that live in other repositories, run as commands described by spec files.

A spec (TOML, :mod:`.spec`) says how to run one case (``mode = "process"``) or how to start a worker that edits
many (``mode = "worker"``, protocol in :mod:`.worker`), which files to write for each case (:mod:`.layouts`) and
where the image appears. :mod:`.discovery` registers specs as methods; :mod:`.method` runs them.
"""

from tvbench_adapters.external.discovery import (EXAMPLES_DIR, METHOD_PATH_ENV, TEMPLATE_WORKER, register_spec_file,
                                                 register_specs)
from tvbench_adapters.external.spec import MethodSpec, SpecError, load_spec

__all__ = ["EXAMPLES_DIR", "METHOD_PATH_ENV", "TEMPLATE_WORKER", "MethodSpec", "SpecError", "load_spec",
           "register_spec_file", "register_specs"]
