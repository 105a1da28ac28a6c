"""The adapter registry: registration, reads, aliases, checkpoints, deletion and blob GC.

One module per concern: `urls`, `files` (name and format checks, the PEFT pair),
`job_output` (what a job's spec says about its adapter), `adapters` (rows, reads,
deletion), `register`, `aliases`, `checkpoints`, `blobs` (references and garbage
collection); import from those. The schemas it serves are in `service.schemas.registry`.

Functions take a `session` and only flush; the caller owns the transaction.
"""
