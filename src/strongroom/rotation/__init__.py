"""Secret rotation: deciding when a secret is due, running its rotation steps, and invoking
the rotation function for each step (``invoke.py``) in a process of its own (``host.py``)."""
