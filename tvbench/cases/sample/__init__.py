"""The bundled ``sample`` benchmark: procedurally generated cases with exact ground truth.

``load_sample()`` builds it once into the tvbench cache and reads it like any folder benchmark;
``generate_sample(out)`` writes it anywhere. Nothing here imports the benchmark loaders, which import this
package lazily.
"""

from tvbench.cases.sample.catalog import SAMPLE_VERSION
from tvbench.cases.sample.store import generate_sample, load_sample, sample_dir

__all__ = ["SAMPLE_VERSION", "generate_sample", "load_sample", "sample_dir"]
