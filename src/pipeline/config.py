"""Config validation at DAG build: a bad value stops Snakemake before any job runs.

The schema is one JSON Schema (draft 2020-12) in `workflow/schemas/config.schema.json` whose
`studies.<study>` entries `$ref` one file per study, so each study owns its part. Errors
name the offending key as a dotted path (`studies.gated_attention.train.lr`).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "workflow" / "schemas"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


class ConfigError(ValueError):
    """The config does not match the schema; the message names every offending key."""


def _registry(schema_dir: Path) -> Registry:
    resources = []
    for f in sorted(schema_dir.glob("*.schema.json")):
        contents = json.loads(f.read_text())
        # Every file is draft 2020-12; without its `$schema` a `$ref` keeps the validator class that fills defaults
        # (with it, jsonschema would switch to the plain class for that file).
        contents.pop("$schema", None)
        resources.append((f.name, DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources)


def _path(err: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in err.absolute_path]
    if err.validator == "additionalProperties":  # name the unknown key itself
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        parts += extra[:1]
    elif err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        parts += missing[:1]
    return ".".join(parts) or "<top level>"


def _filling_defaults(cls):
    """`cls` that also sets each absent property with a schema `default` (optional keys of list entries, e.g.
    a hivemind model's `chat_template`): the schema is where such a default lives, never a `.get(key, x)`."""
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


def validate_config(config: dict[str, Any], schema_dir: Path | str = SCHEMA_DIR) -> dict[str, Any]:
    """Validate `config` in place against the project schema, filling the defaults it declares; raise
    ConfigError naming keys."""
    schema_dir = Path(schema_dir)
    root = json.loads((schema_dir / "config.schema.json").read_text())
    validator = _filling_defaults(jsonschema.Draft202012Validator)(root, registry=_registry(schema_dir))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors:
            leaf = min([e, *(e.context or [])], key=lambda x: -len(x.absolute_path)) if e.context else e
            lines.append(f"  {_path(leaf)}: {leaf.message}")
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


def canonical(value: Any) -> Any:
    """`value` with every dict's keys sorted, recursively.

    Snakemake compares a rule's params by their repr, so the order of keys in a config file (or of
    the files in a stack) would otherwise re-run jobs whose values did not change.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def as_params(spec: Any) -> Any:
    """A typed spec (a dataclass, possibly nested) as the plain, key-sorted dict a rule's params hold."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        spec = dataclasses.asdict(spec)
    return canonical(spec)


def overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base` as Snakemake merges `--configfile`s: dicts key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(*overlays: Path | str) -> dict[str, Any]:
    """The default config with each preset overlay applied in order, as `--configfile a b` gives it to the jobs.

    Presets hold only what differs from the default (config/presets/*.yaml), so a preset file read alone is not
    a config: tests, benchmarks and tools load it through here.
    """
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for path in overlays:
        path = Path(path)
        if not path.is_absolute() and not path.exists():
            path = REPO / path
        config = overlay(config, yaml.safe_load(path.read_text()) or {})
    return config
