"""Lightning callbacks and plugins: what runs inside `trainer.fit`."""
