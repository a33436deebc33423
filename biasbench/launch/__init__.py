"""Sweeps: a grid of runs expanded into the same run configs as `biasbench run`,
executed by a launcher (a local process pool, Ray tasks, or SLURM job arrays).

    plan = grid.expand(spec)            # run ids, which are done (driver side)
    for run, outcome in sweep.execute(plan, launcher): ...

Every launcher runs `task.execute(run)` per run, which is `runner.run_many`
for one ratio and one seed: a sweep adds scheduling, never another way to
train or to name runs.
"""
