"""How each dataset is built: its construction rules, with the reason for each.

Sources are named as in ../shared/PROTOCOL.md (`owner/repo:path` or paper); where they disagree
the decision is written next to the value (the longer reasons: biasbench/DECISIONS.md). Data only:
the generators, the source readers and the cards read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from biasbench.ratios import STANDARD_RATIOS

# The canonical datasets are the ones built with this seed. Another seed is
# another dataset: it goes to a folder named `<dataset>-seed<N>` and its card
# says so.
CANONICAL_SEED = 0


RATIOS = STANDARD_RATIOS  # REST paper §4.1; DisEnt folders 0.5pct .. 5pct

# Which training images are bias-conflicting (Colored MNIST, Corrupted CIFAR-10), a generate option:
# - "lff" (canonical): LfF's `make_attr_labels` (alinlab/LfF:make_dataset.py), the field's data. In
#   each class, walked in source-file order, the first images take the attributes below the class,
#   the bulk takes the class's own, the last take those above, at cumulative milestones
#   round(n_c x cumsum(shares)) (numpy's round: halves to even). Train uses the aligned share 1 - r
#   over the whole source training file, valid and test 0.1 (LfF's unbiased split).
# - "random": a seeded hash rank per class picks exactly round(n_c x r) conflicting images (halves
#   up), nested across ratios. It answers how much of a published number is the choice of images:
#   LfF's rule takes the first and last images of each class in the file, a less diverse set.
CONFLICT_RULES: tuple[str, ...] = ("lff", "random")
CANONICAL_CONFLICTS = "lff"

# Under "lff" the valid split is held out of the training file without touching LfF's map: it is
# drawn only from images that are bias-aligned at this ratio, and LfF's aligned blocks shrink as the
# ratio grows, so at every ratio up to it the training split keeps each of LfF's conflicting images,
# with LfF's attribute (per-class conflicting counts equal LfF's). Above it, the valid draw may hold
# out some conflicting images. 20 % covers every ratio in the literature we know (0.5-20 %) while
# leaving 80 % of each class to draw the valid split from.
LFF_EXACT_UP_TO = 0.2


@dataclass(frozen=True)
class CMNISTProtocol:
    """How Colored MNIST is built (LfF's colouring, DisEnt's splits).

    Decisions and why:
    - colours: LfF's ten mean colours (alinlab/LfF:data/resource/colors.th),
      the ones every later paper's CMNIST inherits.
    - colouring: LfF's foreground colouring, pixel = floor(clip(colour +
      noise, 0, 1) x grey digit), background black; noise drawn once per
      image and channel. floor, not round: LfF converts with np.uint8(float),
      which truncates (alinlab/LfF:data/colored_mnist_protocol.py);
      computed in float64 here (LfF: float32).
    - severity 4 (sigma 0.005): LfF's released configs and the DisEnt/REST
      CMNIST folders are "Severity4"; PROTOCOL.md measures LfF at severity 4.
      LfF's severity counts from 1, so the table below is indexed by s - 1.
    - noise: Irwin-Hall approximation of N(0, sigma^2) from counter-based
      hashes (biasbench.rng) so that bits are identical on every machine;
      LfF draws it from torch's unseeded global RNG.
    - conflicting samples (CONFLICT_RULES above): LfF's source-order rule,
      index for index, by default ("lff"); a seeded random draw of exactly
      round(n_c * r) per class, nested across ratios, as the named option
      "random". The published CMNIST numbers were measured on LfF's rule
      (LfF; DisEnt's released folders give DisEnt's Vanilla within ~3 points
      only on it: PROTOCOL.md), so it is the canonical one.
    - valid split: 5,000 images held out of MNIST-train (DisEnt/REST train on
      ~55k, PROTOCOL.md), coloured *unbiased* like the test split. LfF has no
      valid split (its "valid" is MNIST-test) and trains on all 60,000;
      DisEnt's valid shares the train ratio. We hold out and colour unbiased:
      selection on valid then estimates the headline metric (unbiased
      accuracy) without touching test, and valid is the same for every ratio.
      Under "lff" the 5,000 are drawn (seeded hash) only from images aligned
      at LFF_EXACT_UP_TO, so train keeps every one of LfF's conflicting
      images with LfF's colour and the per-class conflicting counts are
      LfF's; train then has 55,000 images of which LfF's count is
      conflicting, a share r x 60/55 (0.55 % in the 0.5pct config). Under
      "random" the 5,000 are a seeded hash draw from all of MNIST-train and
      the ratio applies to the 55,000. The runner records which selection
      rule a number uses.
    - test split: all 10,000 MNIST-test images; "lff": LfF's rule with the
      aligned share 0.1 in file order (LfF's unbiased split, colour blocks
      per class); "random": colours balanced within each class by hash rank.
      Valid follows the same rule as test, over its images in source order.
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
    conflicts: str = CANONICAL_CONFLICTS
    ratios: tuple = field(default=RATIOS)

    @property
    def sigma(self) -> float:
        return self.sigma_by_severity[self.severity - 1]


CMNIST = CMNISTProtocol()


@dataclass(frozen=True)
class CIFAR10CProtocol:
    """How Corrupted CIFAR-10 is built (LfF's corruption lists, the CMNIST split rules).

    Decisions and why:
    - corruptions: LfF's Type0 list in class order (alinlab/LfF:make_dataset.py).
      PROTOCOL.md does not say which list DisEnt's release (and so REST) used;
      Type0 is LfF's first and default protocol, so we take it and record it
      in every card. Type1 exists as `corruption_type="type1"`.
    - severity 5 on the imagecorruptions scale: LfF's released "Severity4"
      calls the corruption with severity + 1 (PROTOCOL.md), i.e. the strongest.
    - implementation: `imagecorruptions` from the maintained
      `imagecorruptions-imaug` 1.1.5 (upstream 1.1.2 breaks on numpy 2). It
      draws from numpy's global RNG; we seed it per image from (seed, source
      split, source index, corruption), so an image gets the same pixels in
      every ratio, with any number of workers, in any order.
      `jpeg_compression` goes through Pillow's libjpeg: its bytes are those of
      the pinned Pillow build.
    - splits and conflicting images: as Colored MNIST (generators/assign.py),
      LfF applies the same `make_attr_labels` to CIFAR-10: LfF's source-order
      rule by default, the random draw as the option "random"; 5,000 images
      held out of CIFAR-10 train as an unbiased valid split (DisEnt's
      CIFAR-10-C train has ~45k images, PROTOCOL.md); test = the 10,000
      CIFAR-10 test images, unbiased.
    """

    type0: tuple[str, ...] = (
        "snow", "frost", "fog", "brightness", "contrast",
        "spatter", "elastic_transform", "jpeg_compression", "pixelate", "saturate",
    )
    type1: tuple[str, ...] = (
        "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur",
        "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "original",
    )
    corruption_type: str = "type0"
    severity: int = 5
    valid_size: int = 5000
    conflicts: str = CANONICAL_CONFLICTS
    label_names: tuple[str, ...] = (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )
    image_shape: tuple[int, int, int] = (32, 32, 3)

    @property
    def corruptions(self) -> tuple[str, ...]:
        return self.type0 if self.corruption_type == "type0" else self.type1


CIFAR10C = CIFAR10CProtocol()


@dataclass(frozen=True)
class BFFHQProtocol:
    """How BFFHQ is read from its release or built from FFHQ (BiaSwap's rule: age target, gender bias).

    Decisions and why:
    - classes: label = age (0 young, 1 old), bias_label = gender (0 female,
      1 male); aligned = young-female and old-male, so label == bias_label
      means aligned, as in the release's `<id>_<age>_<gender>.png` names and
      DisEnt's test filter (target != bias = conflicting).
    - age groups from FFHQ-Aging's `age_group` column: young = 10-14, 15-19,
      20-29; old = 40-49, 50-69. PROTOCOL.md recalls "young ~10-29, old
      ~40-59" (unverified); FFHQ-Aging's group 50-69 cannot be split, so it
      is counted as old. A numeric `age` column uses the same bounds (10-29,
      40-69). Other ages (0-9, 30-39, 70+) are not used.
    - image size 128x128: REST trains BFFHQ at 128 (PROTOCOL.md); DisEnt
      resizes to 224 itself, from whatever it reads, so storing 224 would only
      store an upsampling; FFHQ ships official 128x128 thumbnails
      (`thumbnails128x128/`) which are used as they are, other sizes are
      resized with Pillow's Lanczos filter (the Pillow version is recorded).
      1024x1024 would make the dataset ~70x larger for no protocol in use.
      The release is ingested at its own resolution, pixels unchanged.
    - sizes: 9,600 train images per class (19,200, the release's train size:
      19,104 aligned + 96 conflicting at 0.5 %, recalled in PROTOCOL.md),
      round(9,600 x r) of them conflicting; valid and test 250 images per
      (age, gender) group (1,000 each, the release's sizes), so both are
      balanced and half of test is bias-conflicting (the headline metric).
    - selection: every draw is a seeded hash rank of the FFHQ image number
      (biasbench.rng). Test, then valid, are held out per group first; train
      takes the first n_c - k aligned and the first k conflicting images of
      class c in a per-group rank shared by all ratios, so conflicting sets
      are nested (0.5 % inside 1 %, ...) and aligned sets shrink by the same
      images; no image is in two splits.
    - release counts (BiaSwap/DisEnt 0.5pct): the PROTOCOL.md recall above;
      a release with other counts needs --allow-unverified (card says so).
    """

    label_names: tuple[str, ...] = ("young", "old")
    gender_names: tuple[str, ...] = ("female", "male")
    young_groups: tuple[str, ...] = ("10-14", "15-19", "20-29")
    old_groups: tuple[str, ...] = ("40-49", "50-69")
    young_ages: tuple[int, int] = (10, 29)
    old_ages: tuple[int, int] = (40, 69)
    image_size: int = 128
    train_per_class: int = 9600
    eval_per_group: int = 250
    release_counts: tuple[tuple[str, int], ...] = (
        ("0.5pct/align", 19104), ("0.5pct/conflict", 96), ("valid", 1000), ("test", 1000),
    )


BFFHQ = BFFHQProtocol()
