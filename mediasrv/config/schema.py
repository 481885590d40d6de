"""The JSON Schema of the configuration file, generated from the models.

``config/mediasrv.schema.json`` is this output, committed (editors validate and complete
``mediasrv.yaml`` with it); ``mediasrv config-schema`` (``make schema``) regenerates it
and ``tests/test_config.py`` fails when the committed file is out of date."""

from __future__ import annotations

import json

from mediasrv.config.model import Config

#: Where the generated schema lives in the repository.
SCHEMA_PATH = "config/mediasrv.schema.json"


def config_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a mediasrv YAML configuration file."""
    schema = Config.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mediasrv configuration",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text() -> str:
    """``config_schema()`` as the committed file holds it (stable order, final newline)."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
