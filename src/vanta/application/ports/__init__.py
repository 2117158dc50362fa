"""The application's ports: what it needs from the outside world, as Protocols and plain types.

Adapters implement them; :mod:`vanta.bootstrap` wires one implementation to each port per
profile. Nothing here imports an adapter or an I/O library.
"""
