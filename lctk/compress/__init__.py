"""LongCodeZip compression at repository scale: `lctk.compress.compress(sources, model, ...)`.

Submodules: cache (scores on disk), scoring (AMI, line losses), fine (blocks, knapsack),
api (the pipeline), render (text/xml/markdown/json), model (result objects).
"""


def __getattr__(name: str):
    # Lazy: `import lctk.compress` stays cheap for the CLI's start-up.
    if name == "compress":
        from lctk.compress.api import compress

        return compress
    raise AttributeError(name)
