"""The core: strict models, YAML with file:line locations, masking, channel and route types,
caller ids, the Chinese holiday calendar, latency windows and lenient conversions.

It imports nothing of the project (only the standard library, pydantic, yaml and
chinese_calendar); every other package may import it. Enforced by import-linter
(``[tool.importlinter]`` in pyproject.toml) and tests/test_architecture.py.
"""
