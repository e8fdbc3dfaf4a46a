"""Methods that live in other repositories, run as commands described by spec files."""
