"""Method adapters, one module per method family, each a small class behind ``tvbench.methods.Method``.

This folder is installed as the package ``tvbench_adapters`` (PyPI's AdapterHub already owns the import
name ``adapters``). Heavy dependencies are imported inside the adapter modules, so importing one family
never requires another's packages.
"""
