"""Run ids stay put: every (profile, dataset, method, ratio)'s resolved config, hashed, against a golden file.

A run id is the hash of the resolved config and the data fingerprint, so a refactor that moves where a number
lives must leave these digests as they are. A change that is meant to move a config changes the golden file
in the same commit (regenerate: `python -c "import sys, json; sys.path.insert(0, 'tests');
from test_config_digests import current, GOLDEN; GOLDEN.write_text(json.dumps(current(), indent=1,
sort_keys=True))"`), and says why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from biasbench.baselines import configure, names as method_names
from biasbench.datasets import names as dataset_names
from biasbench.protocol import PROFILES, protocol_for
from biasbench.ratios import STANDARD_RATIOS

GOLDEN = Path(__file__).resolve().parent / "data" / "config_digests.json"


def current() -> dict[str, str]:
    out = {}
    for profile in sorted(PROFILES):
        for dataset in [d for d in dataset_names() if protocol_for(profile, d) is not None]:
            for method in method_names():
                for ratio in STANDARD_RATIOS:
                    cfg = configure(method, dataset, ratio, 41, profile, 20_000)
                    digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
                    out[f"{profile}/{dataset}/{method}/{cfg.ratio}"] = digest
    return out


def test_resolved_configs_match_the_golden_digests():
    golden = json.loads(GOLDEN.read_text())
    now = current()
    moved = sorted(k for k in golden if now.get(k) != golden[k])
    assert not moved, f"{len(moved)} configs changed, e.g. {moved[:5]}"
    lost = sorted(set(golden) - set(now))
    assert not lost, f"{len(lost)} configs no longer resolve, e.g. {lost[:5]}"
    # configs of a new method or dataset are not pinned until the golden file is regenerated: adding an entry
    # moves no existing run id, which is what this test guards
