"""Colored MNIST: digits coloured by a colour that agrees with the digit except in r% of training images.

Construction rules and their sources are in biasbench.protocol.CMNISTProtocol;
which images conflict follows a named rule (generators.assign: LfF's source-order
rule, canonical, or a random draw). Every random draw is a counter-based hash
of (seed, stream, source index):

    valid hold-out  rank of hash(seed, "cmnist/valid-holdout", train index)
    conflict order  rank within class of hash(seed, "cmnist/conflict", train index)  (random rule)
    valid/test      rank within class of hash(seed, "cmnist/<split>-colour", index)   (random rule)
    colour noise    hash(seed, "cmnist/noise/<source split>", index)

so a ratio's output never depends on other ratios or on build order, and a
training image has the same pixels in every ratio where it has the same
colour. Images are rendered once per distinct (source image, colour) pair.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench import rng
from biasbench.dataset_format import card
from biasbench.dataset_format.card import CardMeta, counts_table
from biasbench.dataset_format.folder import Config
from biasbench.dataset_format.schema import Schema
from biasbench.progress import Reporter
from biasbench.protocol import CANONICAL_SEED, CMNIST, CMNISTProtocol
from biasbench.sources.mnist import MNIST, resolve_mnist
from biasbench.generators.assign import Assignment, card_lines
from biasbench.generators.base import Built, ExportLayout, source_provenance, unit_params
from biasbench.generators.render import assemble, distinct, encode_with_digests, render_chunks

GENERATOR_VERSION = 2  # bump when the construction changes; part of every unit's identity (2: conflict rules)
SOURCE_SPLITS = {"train": 0, "test": 1}
CHUNK = 2048  # images per worker task: large enough to amortise IPC, small enough to balance


class Plan(Assignment):
    """Which source image gets which colour in every split (no pixels yet)."""

    def __init__(self, mnist: MNIST, seed: int, proto: CMNISTProtocol = CMNIST):
        super().__init__(mnist.train_labels, mnist.test_labels, seed, "cmnist", proto.valid_size, "colour",
                         conflicts=proto.conflicts)
        self.proto = proto

    train_colours = Assignment.train_attributes
    unbiased_colours = Assignment.unbiased_attributes


def _render_chunk(task: tuple[np.ndarray, np.ndarray]) -> tuple[list[bytes], list[bytes], float, float]:
    """Colour and encode one chunk; returns PNGs, pixel digests and the time of each stage."""
    grey, colour = task
    t0 = time.perf_counter()
    # pixel = floor(colour x grey) takes one of 256 values per image and channel:
    # tabulate them once per image, then gather (4x faster than multiplying every pixel).
    k = len(grey)
    table = np.floor(colour[:, None, :] * np.arange(256, dtype=np.float64)[None, :, None]).astype(np.uint8)
    flat_index = np.arange(k, dtype=np.intp)[:, None, None] * 256 + grey
    images = np.take(table.reshape(k * 256, 3), flat_index, axis=0)
    t1 = time.perf_counter()
    pngs, digests = encode_with_digests(images)
    return pngs, digests, t1 - t0, time.perf_counter() - t1


class ColoredMNIST:
    name = "cmnist"
    # DisEnt's release: {pct}/valid flat, test/<c>/; LfF: ColoredMNIST-Skewed<r>-Severity<s>, attrs (digit, color)
    export_layout = ExportLayout(valid_per_ratio=True, valid_by_class=False, test_by_class=True,
                                 lff_attr_names=("digit", "color"))
    fits_cpu = True

    def lff_tag(self, params: dict, ratio: Decimal) -> str:
        return f"ColoredMNIST-Skewed{ratio}-Severity{params['severity']}"
    schema = Schema(label_names=CMNIST.label_names, bias_names=CMNIST.colour_names)
    card_meta = CardMeta(
        pretty_name="Colored MNIST (biasbench)",
        license="cc-by-sa-3.0",
        tags=("spurious-correlations", "debiasing", "colored-mnist", "biasbench"),
        source_datasets=("extended|mnist",),
    )

    def __init__(self, proto: CMNISTProtocol = CMNIST):
        self.proto = proto

    def load_sources(self, source_dir: Path | None, allow_unverified: bool) -> MNIST:
        return resolve_mnist(source_dir, allow_unverified)

    def params(self, source: MNIST, seed: int, ratio: Decimal | None) -> dict:
        p = self.proto
        return unit_params(self.name, GENERATOR_VERSION, seed, ratio, source.files, severity=p.severity,
                           sigma=p.sigma, colours=[list(c) for c in p.colours], valid_size=p.valid_size,
                           conflicts=p.conflicts)

    def provenance(self, source: MNIST) -> dict:
        return source_provenance(source.files)

    def build(
        self, source: MNIST, seed: int, ratios: list[Decimal], need_common: bool, workers: int, reporter: Reporter
    ) -> Built:
        t0 = time.perf_counter()
        outputs = Plan(source, seed, self.proto).outputs(ratios, need_common)
        src_split, src_idx, colour, where = distinct(outputs)
        base = np.asarray(self.proto.colours, dtype=np.float64)
        values = np.empty((len(src_idx), 3), dtype=np.float64)
        grey = np.empty((len(src_idx), 28, 28), dtype=np.uint8)
        for split_name, split_id in SOURCE_SPLITS.items():
            sel = src_split == split_id
            noise = rng.standard_normal(seed, f"cmnist/noise/{split_name}", src_idx[sel], 3)
            values[sel] = np.clip(base[colour[sel]] + self.proto.sigma * noise, 0.0, 1.0)
            grey[sel] = (source.train_images if split_id == 0 else source.test_images)[src_idx[sel]]
        t1 = time.perf_counter()
        tasks = [(grey[a : a + CHUNK], values[a : a + CHUNK]) for a in range(0, len(src_idx), CHUNK)]
        pngs, digests, (colour_cpu, png_cpu) = render_chunks(
            _render_chunk, tasks, workers, reporter, f"render {self.name}", len(src_idx)
        )
        t2 = time.perf_counter()
        splits = assemble(outputs, where, pngs, digests, self.proto.image_shape)
        common = {"valid": splits[("valid", None)], "test": splits[("test", None)]} if need_common else None
        return Built(
            common=common,
            ratios={r: {"train": splits[("train", r)]} for r in ratios},
            timings={
                "plan": t1 - t0,
                "render": t2 - t1,
                "colour_cpu": colour_cpu,
                "png_cpu": png_cpu,
                "images_rendered": float(len(src_idx)),
            },
        )

    def card_body(self, configs: list[Config]) -> str:
        return card_body(self.proto, self.schema, configs)


CITATIONS = """```bibtex
@article{lecun1998mnist,
  title   = {Gradient-based learning applied to document recognition},
  author  = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal = {Proceedings of the IEEE},
  volume  = {86}, number = {11}, pages = {2278--2324}, year = {1998}
}
@inproceedings{nam2020learning,
  title     = {Learning from Failure: De-biasing Classifier from Biased Classifier},
  author    = {Nam, Junhyun and Cha, Hyuntak and Ahn, Sungsoo and Lee, Jaeho and Shin, Jinwoo},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2020}
}
@inproceedings{lee2021learning,
  title     = {Learning Debiased Representation via Disentangled Feature Augmentation},
  author    = {Lee, Jungsoo and Kim, Eungyeup and Lee, Juyoung and Lee, Jihyeon and Choo, Jaegul},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2021}
}
```"""


def card_body(proto: CMNISTProtocol, schema: Schema, configs: list[Config]) -> str:
    """The card's prose: what it is, how it was built, counts, colours, sources, licence, citations."""
    out = ["", f"# {ColoredMNIST.card_meta.pretty_name}", ""]
    out.append(
        "Colored MNIST is MNIST with a shortcut: in the training split almost every digit is drawn in "
        "its own colour (digit *d* in colour *d*), so a classifier can reach high training accuracy by "
        "reading the colour instead of the shape. Only a small fraction *r* of training images "
        "(*bias-conflicting*) carry one of the other nine colours. The valid and test splits are "
        "unbiased (colour independent of digit), so they measure whether a model learned digits. It is "
        "the Colored MNIST of LfF (Nam et al., 2020) as used by DisEnt (Lee et al., 2021) and REST "
        "(Zhao et al., 2023), rebuilt deterministically by biasbench at the "
        "conflict ratios 0.5%, 1%, 2% and 5%."
    )
    if not configs:
        out += ["", "No complete config in this folder yet: run `biasbench generate cmnist`."]
        return "\n".join(out) + "\n"
    first = configs[0].unit
    seed = first["params"]["seed"]
    prov = first["provenance"]
    if seed != CANONICAL_SEED:
        out += ["", f"> **Seed {seed}.** This is *not* the canonical dataset (seed {CANONICAL_SEED}): "
                "its samples, conflict sets and noise differ. Report the seed with any number measured on it."]
    if not prov["verified"]:
        out += ["", "> **Unverified source.** The MNIST files it was built from do not match the official "
                "checksums (built with `--allow-unverified`); it is not Colored MNIST as published."]
    out += [""] + card.usage(ColoredMNIST.name, configs, prov["built_with"]["biasbench"])
    shown = configs[0].name
    out += ["## Preview", "",
            f"![aligned and conflicting training images of {shown}](data/{shown}/preview.png)", "",
            f"Config {shown}, per digit 0..9 from top: a row of the first 8 bias-aligned, then a row of the first 8 "
            "bias-conflicting training images (`biasbench preview cmnist --ratio R` draws it for any config; "
            "each config folder holds its own `preview.png`).", ""]
    out += ["## Structure", "",
            "| column | type | meaning |", "|---|---|---|",
            "| image | Image (PNG, 28x28 RGB) | the coloured digit |",
            "| label | ClassLabel '0'..'9' | the digit (target) |",
            "| bias_label | ClassLabel (10 colour names) | the colour (bias attribute) |",
            "| aligned | bool | colour index == digit (bias-aligned) |",
            "| source_index | int64 | index in the MNIST source split (train for train/valid, t10k for test) |",
            ""]
    out += ["| config | train | valid | test | fingerprint |", "|---|---|---|---|---|"]
    for c in configs:
        n = {s: i["num_examples"] for s, i in c.splits.items()}
        out.append(f"| {c.name} | {n['train']} | {n['valid']} | {n['test']} | `{c.fingerprint[:16]}` |")
    out += ["", "Counts per class, *aligned / conflicting*:", ""]
    for c in configs:
        out += [f"**{c.name}**", "", counts_table(c, schema.label_names), ""]
    out += ["## Colours", "", "LfF's mean colours (`alinlab/LfF:data/resource/colors.th`):", "",
            "| index | name | R | G | B | hex |", "|---|---|---|---|---|---|"]
    for i, (rgb, name) in enumerate(zip(proto.colours, proto.colour_names)):
        hexcode = "#" + "".join(f"{round(v * 255):02x}" for v in rgb)
        out.append(f"| {i} | {name} | {rgb[0]:.4f} | {rgb[1]:.4f} | {rgb[2]:.4f} | `{hexcode}` |")
    params = first["params"]
    rule = params.get("conflicts", "random")
    out += ["", "## How it was built", "",
            "- Source: MNIST (60,000 train + 10,000 test digits, official IDX files).",
            *card_lines(rule, params["valid_size"], "MNIST", 60000, "colour"),
            f"- Colouring (LfF): pixel = floor(clip(colour + noise, 0, 1) x grey) (LfF truncates the same "
            "way), background black; "
            f"noise ~ N(0, {params['sigma']}^2) per image and channel (LfF severity {params['severity']}), "
            "drawn as an Irwin-Hall sum from counter-based hashes so that every machine computes the same bits.",
            f"- Seed: {seed}. Every random choice (noise, the valid draw) is a hash of (seed, purpose, source index): "
            "the output of "
            "one ratio does not depend on which other ratios were built or in which order.",
            "- Files: PNG (zlib level 6, no row filter) in parquet; valid and test files are shared by all configs.",
            "- `manifest.json` lists the sha256 of every file and a content fingerprint per split and config "
            "(sha256 over decoded pixels and labels in row order), which does not depend on PNG, zlib or "
            "parquet versions.", ""]
    out += ["## Source files", "", "| file | md5 (decompressed) | sha256 | official |", "|---|---|---|---|"]
    for f in prov["sources"]:
        out.append(f"| {f['file']} | `{f['md5']}` | `{f['sha256'][:16]}...` | {'yes' if f['verified'] else 'NO'} |")
    versions = prov["built_with"]
    out += ["", "## Reproduce", "",
            "```bash",
            f"biasbench generate cmnist --ratio all --seed {seed}" + (" --conflicts random" if rule == "random" else ""),
            "```", "",
            f"(biasbench {versions['biasbench']}, installed as in Install above.) Same content fingerprints on any "
            "machine; byte-identical files with the same "
            f"pyarrow ({versions['pyarrow']}) and zlib ({versions['zlib']}) as this build "
            f"(numpy {versions['numpy']}, Python {versions['python']}).", ""]
    out += ["## Bias, risks and limitations", "",
            "The bias is synthetic and deliberately strong; results on Colored MNIST say little about "
            "natural images. Accuracy on the unbiased test split averages over all digit x colour groups "
            "(90% of test images are bias-conflicting). Our noise model approximates LfF's Gaussian (LfF's is "
            "unseeded, so only its distribution can match), so pixels differ from LfF's and DisEnt's files; "
            + ("which images conflict, and with which colour, is LfF's." if rule == "lff" else
               "this construction also picks other conflicting images than LfF's rule.") + "", ""]
    out += ["## Licence", "",
            "MNIST (LeCun, Cortes, Burges) is distributed under CC BY-SA 3.0; this derived dataset keeps "
            "that licence. The colour table comes from LfF's code (MIT licence).", ""]
    out += ["## Citation", ""] + card.citation(ColoredMNIST.name, ColoredMNIST.card_meta.pretty_name,
                                               versions["biasbench"]) + ["Sources and methods:", "", CITATIONS, ""]
    return "\n".join(out)


GENERATOR = ColoredMNIST()
