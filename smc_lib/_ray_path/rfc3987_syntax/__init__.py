"""Shadows `rfc3987_syntax` inside the Ray processes that `smc_lib.sweep.run_ray` starts (see there).

jsonschema imports it when present and it builds a Lark grammar at import time: measured here, it made
`import ray` take 9 s instead of 3 s on a loaded 2-core machine, and Ray's raylet aborts when its
dashboard agent (which imports ray) is not up within 15 s. jsonschema treats the ImportError as
"IRI format checking unavailable", which nothing in a sweep uses.
"""
raise ImportError("rfc3987_syntax is shadowed in SMC-Bench's local Ray cluster (slow import)")
