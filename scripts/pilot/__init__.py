"""Dense pilots that chose the CPU profile (`docs/PILOT.md`): `python -m scripts.pilot.SECTION --help`."""
