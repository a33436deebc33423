"""The Hugging Face Hub: publishing a dataset folder (publish.py) and fetching one (remote.py)."""
