"""Every number of the common protocol, with the reason it was chosen.

Sources are named as in ../shared/PROTOCOL.md (`owner/repo:path` or paper).
Where sources disagree the decision is written next to the value. This module
is data only: generators, the runner and the cards read it; nothing here
imports them.

Training profiles (`paper`, `rest-code`, `cpu`) are added by the runner issue;
this first part fixes how the datasets are built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from biasbench.ratios import STANDARD_RATIOS

# The canonical datasets are the ones built with this seed. Another seed is
# another dataset: it goes to a folder named `<dataset>-seed<N>` and its card
# says so.
CANONICAL_SEED = 0

RATIOS = STANDARD_RATIOS  # REST paper §4.1; DisEnt folders 0.5pct .. 5pct


@dataclass(frozen=True)
class CMNISTProtocol:
    """How Colored MNIST is built (LfF's colouring, DisEnt's splits).

    Decisions and why:
    - colours: LfF's ten mean colours (alinlab/LfF:data/resource/colors.th),
      the ones every later paper's CMNIST inherits.
    - colouring: LfF's foreground colouring, pixel = floor(clip(colour +
      noise, 0, 1) x grey digit), background black; noise drawn once per
      image and channel. floor, not round: LfF converts with np.uint8(float),
      which truncates (alinlab/LfF:data/colored_mnist_protocol.py, read
      2026-11-25); computed in float64 here (LfF: float32).
    - severity 4 (sigma 0.005): LfF's released configs and the DisEnt/REST
      CMNIST folders are "Severity4"; PROTOCOL.md measures LfF at severity 4.
      LfF's severity counts from 1, so the table below is indexed by s - 1.
    - noise: Irwin-Hall approximation of N(0, sigma^2) from counter-based
      hashes (biasbench.rng) so that bits are identical on every machine;
      LfF draws it from torch's unseeded global RNG.
    - conflicting samples: exactly round(n_c * r) per class in the train
      split (halves up), chosen by a seeded hash rank instead of LfF's "last
      samples in source order"; the rank is shared by all ratios, so the 0.5%
      conflicting set is inside the 1% set, and so on, and a sample keeps its
      conflicting colour in every ratio. Conflicting colours cycle over the
      other nine colours in rank order (counts differ by at most one).
    - valid split: 5,000 images held out of MNIST-train (DisEnt/REST train on
      ~55k, PROTOCOL.md), coloured *unbiased* like the test split.
      LfF's "valid" is unbiased but built from MNIST-test, so it is the test
      set; DisEnt's valid shares the train ratio. We choose held-out and
      unbiased: model selection on valid then estimates the headline metric
      (unbiased accuracy) without touching test, and valid is the same for
      every ratio (built once, shared by all configs). The runner records
      which selection rule a number uses.
    - test split: all 10,000 MNIST-test images, colour independent of digit
      and balanced: within each class colours are assigned evenly (hash rank,
      cycling over the ten colours).
    - labels: digit names '0'..'9' as on the Hub's MNIST.
    """

    colours: tuple[tuple[float, float, float], ...] = (
        (0.9836823344230652, 0.31251901388168335, 0.16857534646987915),
        (0.9905296564102173, 0.9156052470207214, 0.35151219367980957),
        (0.6729639768600464, 0.4610704779624939, 0.5798081755638123),
        (0.783251941204071, 0.8315559029579163, 0.6013293862342834),
        (0.08801579475402832, 0.7779633402824402, 0.9818077683448792),
        (0.32139337062835693, 0.9610545635223389, 0.446449875831604),
        (0.024615883827209473, 0.23565047979354858, 0.7586662769317627),
        (0.5552469491958618, 0.10158014297485352, 0.7617631554603577),
        (0.2077232003211975, 0.3929485082626343, 0.018702387809753418),
        (0.8336576223373413, 0.2024092674255371, 0.266943097114563),
    )
    colour_names: tuple[str, ...] = (
        "vermilion", "yellow", "mauve", "sage", "sky_blue",
        "green", "blue", "purple", "olive", "crimson",
    )
    label_names: tuple[str, ...] = tuple(str(d) for d in range(10))
    sigma_by_severity: tuple[float, ...] = (0.05, 0.02, 0.01, 0.005, 0.002)
    severity: int = 4
    valid_size: int = 5000
    image_shape: tuple[int, int, int] = (28, 28, 3)  # H, W, C as stored
    ratios: tuple = field(default=RATIOS)

    @property
    def sigma(self) -> float:
        return self.sigma_by_severity[self.severity - 1]


CMNIST = CMNISTProtocol()
