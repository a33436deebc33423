"""Run records (one JSON per run, keyed by run id) and the leaderboard built from them."""
