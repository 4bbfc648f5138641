"""The training machinery the training workflows share; nothing here imports a workflow."""
