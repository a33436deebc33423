"""Every number of the common protocol, with the reason it was chosen.

Sources are named as in ../shared/PROTOCOL.md (`owner/repo:path` or paper).
Where sources disagree the decision is written next to the value. This module
is data only: generators, the runner and the cards read it; nothing here
imports them.

Training profiles: `paper` (the REST paper's text), `rest-code` (REST's
released scripts), `disent` (DisEnt's released scripts, the protocol of the
LfF/DisEnt CMNIST tables) and `cpu` (the paper profile at a 2-core budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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


# ---------------------------------------------------------------------------
# Training protocol: one TrainProtocol per (profile, dataset).
# ---------------------------------------------------------------------------

CIFAR_NORM = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # DisEnt data/util.py


# Each method's own numbers (LfF's q, DisEnt's lambdas, ...) live beside the method, in its module under
# baselines/ (`Params`, `own_params`); the profiles here are what every method shares.

DISENT_REFERENCE_STEPS = 50_000  # DisEnt train.py --num_steps default (500 x 100); its scripts keep it


@dataclass(frozen=True)
class TrainProtocol:
    """Everything a run uses besides the method, the ratio and the seed.

    The budget is `steps` optimizer steps; profiles that sources give in
    epochs say so in `epochs` and the steps are derived from the train size
    at resolve time (ceil(n / batch) x epochs). Evaluation on valid and test
    every `eval_every` steps and at the last step; a checkpoint after every
    evaluation. Model selection picks the evaluation with the best valid
    `selection_metric`.
    """

    model: str
    width: int  # base width (ResNet: first stage channels; ignored by simple_cnn/mlp)
    image_size: int  # inputs are resized to this side if the data differ
    augment: tuple[str, ...]  # "crop4" (random crop, padding 4), "flip"
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None
    optimizer: str  # "adam" or "sgd"
    lr: float
    weight_decay: float
    momentum: float
    adam_betas: tuple[float, float]
    schedule: str  # "none" or "plateau" (ReduceLROnPlateau on valid loss, per evaluation)
    plateau_factor: float
    plateau_patience: int
    batch_size: int
    steps: int | None
    epochs: int | None
    eval_every: int | None  # None: once per epoch (REST's code evaluates per epoch)
    eval_batch_size: int
    selection_metric: str  # metric on valid used for model selection
    headline: str  # the metric a leaderboard leads with
    reweight: str  # "loss": per-sample weight beta on conflicting; "resample": draw them beta x as often
    beta: dict  # config name -> beta
    density: dict  # config name -> default sparse density (how it was chosen: density_rule)
    update_frequency: int  # sparse topology update interval (steps)
    seeds: tuple[int, ...]
    # Sparse training (biasbench/training/sparse.py has the decisions on what is masked).
    sparse_init: str = "erk"  # layer-wise densities: "erk" (RigL) or "uniform"
    sparse_growth: str = "gradient"  # "gradient" (RigL) or "random" (SET)
    drop_fraction: float = 0.3  # d0, cosine-decayed to drop_floor at the last update
    drop_floor: float = 0.0
    update_end: float = 0.75  # topology updates stop after this fraction of the steps
    # Inputs are scaled to [0, 1] and then divided by this: 255 reproduces LfF's and DisEnt's CMNIST MLP, which
    # divide ToTensor's [0, 1] output by 255 again (module/mlp.py in both); 1: no second scaling.
    input_divisor: float = 1.0
    # Sparse method -> its density chosen on validation under this profile (DENSITY_PRIOR's comment);
    # a method not here gets `density`, the prior. How a run's density was chosen is in its record.
    chosen_density: dict = field(default_factory=dict)


# The 14 densities of REST's scripts and Fig. 3 (`--density sweep`).
DENSITY_SWEEP = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# Sparse methods' default density. Never a published best (REST Table 2 picked
# its best density on test, in another setup): a profile's density is chosen on
# validation by a density sweep under that profile (`chosen_density`, rule
# "valid": biasbench/results/density.py, the density with the best mean
# best-valid score over seeds), and until one exists it is a prior (rule
# "prior"), RigL's headline 90 % sparsity (Evci et al. 2020), at every ratio.
DENSITY_PRIOR = 0.1
_PRIOR = {k: DENSITY_PRIOR for k in ("0.5pct", "1pct", "2pct", "5pct")}
# REST Table 2's best densities per ratio (PROTOCOL.md): a named variant for the
# reproduction cells only (`--density rest-published`), never a default.
REST_PUBLISHED_DENSITY = {
    "cmnist": {"0.5pct": 0.05, "1pct": 0.05, "2pct": 0.005, "5pct": 0.005},
    "cifar10c": {"0.5pct": 0.05, "1pct": 0.005, "2pct": 0.005, "5pct": 0.005},
    "bffhq": {k: 0.0005 for k in ("0.5pct", "1pct", "2pct", "5pct")},
}
_BETA = {"0.5pct": 10.0, "1pct": 30.0, "2pct": 50.0, "5pct": 80.0}  # REST §4.3
_BETA_BFFHQ = {"0.5pct": 80.0, "1pct": 80.0, "2pct": 80.0, "5pct": 80.0}  # REST §4.3: 80 for BFFHQ

# The REST paper's text (§4.3). What it leaves open is decided here:
# - batch 256 and 100 epochs: not in the text; taken from REST's scripts.
# - schedule: none (the text names none).
# - seeds: 41, 42, 43 as in REST's scripts (the text says "three seeds").
# - eval every 500 steps: DisEnt's interval; selection on the (unbiased)
#   valid split's unbiased accuracy (REST's code selects on valid accuracy).
# - lr 1e-3 for CIFAR-10-C and BFFHQ: the text says "CMNIST and BFFHQ", an
#   evident typo for "CIFAR-10-C and BFFHQ" (PROTOCOL.md).
# - sparse training: the text gives only the update frequency (1000) and
#   describes magnitude pruning with gradient growth, i.e. RigL, which its
#   Table 3 compares against; the rest is RigL's paper: ERK, drop fraction
#   0.3 with cosine decay, no updates in the last 25 % of training.
_PAPER_CMNIST = TrainProtocol(
    model="simple_cnn", width=64, image_size=28, augment=(), normalize=None,
    optimizer="adam", lr=1e-2, weight_decay=1e-4, momentum=0.0, adam_betas=(0.9, 0.999),
    schedule="none", plateau_factor=0.1, plateau_patience=5,
    batch_size=256, steps=None, epochs=100, eval_every=500, eval_batch_size=1024,
    selection_metric="unbiased", headline="unbiased", reweight="loss", beta=_BETA,
    density=_PRIOR, update_frequency=1000, seeds=(41, 42, 43),
)
_PAPER_CIFAR = replace(
    _PAPER_CMNIST, model="resnet18", width=64, image_size=32, augment=("crop4", "flip"),
    normalize=CIFAR_NORM, lr=1e-3,
)
# BFFHQ: REST's code resizes to 128 (PROTOCOL.md); the headline is accuracy on
# bias-conflicting test images (REST Table 2, DisEnt's test loader).
_PAPER_BFFHQ = replace(
    _PAPER_CIFAR, image_size=128, augment=("flip",), beta=_BETA_BFFHQ,
    headline="conflicting",
)

# What REST's released scripts do: SGD momentum 0.9, wd 0, ReduceLROnPlateau
# (factor 0.1, patience 5) on validation loss, batch 256, 100 epochs, seeds
# 41-43. The scripts' lr is not in PROTOCOL.md: we keep the paper's per-dataset
# lr. Reweighting in that code is resampling with weight 80 for conflicting
# samples whatever the ratio (`--lambda_upweight` is parsed but unused), so
# `reweight="resample"` with beta 80 everywhere. The scheduler steps once per
# evaluation, which we place once per epoch as REST's train.py does. Sparse
# training as its `sparselearning/core.py`: ERK, death rate 0.5 cosine-decayed
# to a floor of 0.005, updates until the end. (The released sparse scripts do
# not pass --reweight_groups, so "REST as released" is RigL; our `rest` keeps
# the reweighting, which is what the paper describes, and `rigl` is the other.)
def _rest_code(p: TrainProtocol) -> TrainProtocol:
    return replace(
        p, optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="plateau", eval_every=None,
        reweight="resample", beta={k: 80.0 for k in _BETA},
        drop_fraction=0.5, drop_floor=0.005, update_end=1.0,
    )


# cpu: the paper profile's data, model family, optimizer and rules, with a
# budget that fits a 2-core machine (a CMNIST run in about 1.5 minutes).
# ResNet-18 datasets use width 16 (recorded in every run's config). The sparse
# update interval shrinks with the budget so that a run still sees about as
# many topology updates as the paper's (100 epochs x 215 steps / 1000 = 21 on
# CMNIST; 600 / 25 = 24 here, 18 before the 75 % stop).
_CPU_CMNIST = replace(_PAPER_CMNIST, epochs=None, steps=600, eval_every=100, update_frequency=25)
_CPU_CIFAR = replace(_PAPER_CIFAR, width=16, epochs=None, steps=800, eval_every=200, update_frequency=40)
_CPU_BFFHQ = replace(_PAPER_BFFHQ, width=16, image_size=64, epochs=None, steps=400, eval_every=100,
                     update_frequency=20)
# (DisEnt's step counts under `cpu`: a share of the budget, baselines/disent.py `own_params`.)
# `cpu` CMNIST densities chosen on validation: the 1 % sweep in leaderboard/runs/cmnist-cpu (14 densities,
# seed 41; 0.05 with seeds 41-43), best mean valid unbiased accuracy: RigL 0.4 (56.3; next 0.2 at 53.1),
# REST 0.9 (89.5; next 0.4 at 89.2). `biasbench density --results leaderboard/runs/cmnist-cpu` re-derives
# them, and tests/test_density_choice.py checks that the committed records still choose them.
_CPU_CMNIST = replace(_CPU_CMNIST, chosen_density={"rigl": 0.4, "rest": 0.9})

# disent: DisEnt's released settings (kakaoenterprise/Learning-Debiased-Disentangled: train.py defaults,
# learner.py, data/util.py, module/mlp.py, scripts/*.sh), for every method alike: the protocol LfF's and
# DisEnt's CMNIST tables (and the papers that copy them: LC, DeNetDM) use. Decisions:
# - model: CMNIST `mlp_disent` = DisEnt's MLP, 3 x 28 x 28 -> 100 -> 100 -> 16 -> 10 (module/mlp.py `MLP`,
#   the vanilla model; its `MLP_DISENTANGLE` encoders are the same layers, so DisEnt's branches have 16-d
#   features and classifiers over 32). Not LfF's 100 -> 100 -> 100: DisEnt's table was made with its own.
#   CIFAR-10-C, BFFHQ: torchvision's ResNet-18 (get_model "ResNet18", not pretrained) = `resnet18`.
# - inputs: CMNIST ToTensor only, then the MLP divides by 255 again (input_divisor 255, as both LfF's and
#   DisEnt's models do); CIFAR-10-C RandomCrop(32, 4) + flip, BFFHQ Resize 224 + RandomCrop(224, 4) + flip,
#   both with CIFAR normalisation (data/util.py transforms_preprcs).
# - optimizer: Adam, wd 0 (train.py defaults); batch 256 (64 on BFFHQ: learner.py data2batch_size); lr 0.01
#   CMNIST, 0.001 CIFAR-10-C, 0.0001 BFFHQ (the vanilla and ours scripts), no schedule but DisEnt's own
#   StepLR (DisEntParams: it is only in the *_ours scripts, --use_lr_decay); DisEnt's lr 0.0005 at
#   CIFAR-10-C 0.5 % (its script) is its own number (DisEntParams.lr).
# - budget: 50,000 steps (train.py --num_steps), evaluation every 500 (--valid_freq). The reference
#   evaluates after updates 1, 501, ..., 49,501; here after 500, 1,000, ..., 50,000.
# - selection: DisEnt reports the best *test* accuracy (learner.py board_*_acc): the `oracle` rule, labelled
#   as such; the default rule stays best valid on biasbench's unbiased held-out valid split (DisEnt's valid
#   split has the train ratio).
# - seeds: DisEnt's scripts set none; 41-43 as every profile. Sparse methods: the paper profile's schedule
#   (update every 1,000 steps, stop at 75 %), density the prior until a sweep under `disent` exists.
# - DisEnt's step counts (curr_step 10,000, lr_decay_step 10,000) stay absolute: same steps and batches.
_DISENT_CMNIST = replace(
    _PAPER_CMNIST, model="mlp_disent", weight_decay=0.0, epochs=None, steps=DISENT_REFERENCE_STEPS,
    eval_every=500, input_divisor=255.0,
)
_DISENT_CIFAR = replace(_PAPER_CIFAR, weight_decay=0.0, epochs=None, steps=DISENT_REFERENCE_STEPS, eval_every=500)
_DISENT_BFFHQ = replace(
    _PAPER_BFFHQ, image_size=224, augment=("crop4", "flip"), lr=1e-4, weight_decay=0.0, batch_size=64,
    epochs=None, steps=DISENT_REFERENCE_STEPS, eval_every=500, eval_batch_size=256,
)

PROFILES: dict[str, dict[str, TrainProtocol]] = {
    "paper": {"cmnist": _PAPER_CMNIST, "cifar10c": _PAPER_CIFAR, "bffhq": _PAPER_BFFHQ},
    "rest-code": {
        "cmnist": _rest_code(_PAPER_CMNIST),
        "cifar10c": _rest_code(_PAPER_CIFAR),
        "bffhq": _rest_code(_PAPER_BFFHQ),
    },
    "cpu": {"cmnist": _CPU_CMNIST, "cifar10c": _CPU_CIFAR, "bffhq": _CPU_BFFHQ},
    "disent": {"cmnist": _DISENT_CMNIST, "cifar10c": _DISENT_CIFAR, "bffhq": _DISENT_BFFHQ},
}
# Profiles that train a reference's full budget (a verdict under one tests that reference's claim); the
# others reduce it (`cpu`).
FULL_BUDGET_PROFILES = {"paper": "the REST paper", "rest-code": "REST's released code",
                        "disent": "DisEnt's released code"}


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
    - splits: as Colored MNIST (generators/assign.py): 5,000 images held out
      of CIFAR-10 train as an unbiased valid split (DisEnt's CIFAR-10-C train
      has ~45k images, PROTOCOL.md), exact round(n_c x r) conflicting per class,
      nested across ratios; test = the 10,000 CIFAR-10 test images, unbiased.
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
