"""`lctk models`: the built-in aliases, what they resolve to here, and the defaults in effect."""

from __future__ import annotations

from lctk.cli.options import FormatOption, OutputFormat


def models(output_format: FormatOption = OutputFormat.text) -> None:
    """List model aliases, where their weights are, and the defaults in effect."""
    import importlib.util

    from lctk.cli import render
    from lctk.cli.console import write_stdout
    from lctk.models import registry

    infos = registry.describe_models()
    defaults = {}
    for role in registry.ROLES:
        setting = registry.role_model(role)
        defaults[role] = {"model": setting.value or "", "source": setting.source}
    backends = {
        "torch": importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None,
        "llama": importlib.util.find_spec("llama_cpp") is not None,
    }
    render_fn = render.models_json if output_format == OutputFormat.json else render.models_text
    write_stdout(render_fn(infos, defaults, backends))
