"""The embedded AWS: moto's server plus the pieces that make the pipeline flow.

moto answers the AWS APIs; the modules here add what it leaves inert for this pipeline:
event source mappings that poll Kinesis and run the deployed zip (`esm`, `functions`,
`worker`), Timestream queries on DuckDB (`tsstore`, `tsquery`), IoT topic rules that fire
on publish (`iotsql`, `iotrules`) and fixes to moto's slow or wrong spots (`patches`).
`lifecycle` is the public API the CLI calls (start/stop/status/ensure_running).

Keep this file free of imports: the function worker (`python -m iotpipe.local.worker`)
imports this package and must stay light and independent of moto.
"""
