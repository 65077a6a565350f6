"""Batch runs of lctk's capabilities on Ray Data: `run_batch(manifest, kind, out=...)` runs every task of a
tasks.jsonl (index, compress or ask) on an actor pool whose workers load the models once, and appends
one result row per task to `out/results.jsonl` as it finishes; a re-run resumes.

Submodules: manifest (tasks.jsonl, validated), warm (models kept loaded, also `lctk mcp`'s),
tasks (one task -> one row; compress exactly as the CLI prints it), results (the output directory),
runner (Ray: the actor pool, thread shares, the driver loop). Ray is imported only by a run.
"""

from lctk.exports import lazy_exports

_WHERE = {
    "run_batch": "runner",
    "BatchSummary": "runner",
    "read_manifest": "manifest",
    "BatchTask": "manifest",
    "TaskKind": "manifest",
    "ResultsFormat": "results",
    "WarmModels": "warm",
    "run_task": "tasks",
    "compress_paths": "tasks",
    "CompressRun": "tasks",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
