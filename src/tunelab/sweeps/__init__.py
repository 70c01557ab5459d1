"""What a sweep writes after its jobs, read from their dirs: the job and configuration tables, the confirmation
ranking, best.yaml and the search report. One way down: summary -> report, best, tables -> ranking -> jobs.
The Hydra callback that runs it (tunelab.training.hydra_hooks.sweep_summary) is a shell over `summary`."""
