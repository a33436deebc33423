"""BFFHQ: faces whose age (target) agrees with gender (bias) except in r% of training images.

Two sources (biasbench.sources.bffhq): the released BFFHQ folder, ingested
at 0.5 % with its pixels unchanged, or FFHQ images plus a label table, from
which all four ratios are built by the release's rule (rules and reasons:
biasbench.protocol.BFFHQProtocol). Every selection is a seeded hash rank of
the FFHQ image number, so a ratio's content does not depend on the other
ratios, the build order or the label table's row order. Each image is
decoded (and resized) once per run, however many splits and ratios use it,
in worker processes whose number does not change a byte.
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench.errors import UserError
from biasbench.generators.assign import rank_within_class
from biasbench.generators.base import Built, ExportLayout, source_provenance, unit_params
from biasbench.dataset_format import card
from biasbench.dataset_format.card import CardMeta, counts_table
from biasbench.dataset_format.folder import Config
from biasbench.dataset_format.parquet import SplitRows
from biasbench.dataset_format.png import encode_rgb
from biasbench.dataset_format.schema import Schema
from biasbench.parallel import ordered_map
from biasbench.progress import Reporter
from biasbench.protocol import BFFHQ, CANONICAL_SEED, BFFHQProtocol
from biasbench.ratios import config_name, count_for
from biasbench.sources.bffhq import BFFHQRelease, FFHQSource, resolve_bffhq

GENERATOR_VERSION = 1
CHUNK = 64  # images per worker task (a 128x128 face: ~1 ms to decode, ~2 ms to encode)
RELEASE_RATIO = Decimal("0.005")
PNG_FILTER = 2  # "Up": a quarter smaller than no filter on photos (biasbench.dataset_format.png)
GROUPS = ("young female", "young male", "old female", "old male")  # index = 2 x age + gender

LICENCE_NOTICE = (
    "FFHQ licence: the images were published on Flickr by their authors under Creative Commons BY 2.0, "
    "CC BY-NC 2.0, Public Domain Mark 1.0, CC0 1.0 or U.S. Government Works licences; the FFHQ dataset "
    "(NVIDIA, Karras et al. 2019) is licensed CC BY-NC-SA 4.0. BFFHQ is derived from it: non-commercial "
    "use only, share alike, credit FFHQ and the image authors."
)


def _load_chunk(task: tuple[list[str], int | None]) -> tuple[list[bytes], list[bytes], list[tuple], float, float]:
    """Decode (and resize) a chunk of image files; PNGs, pixel digests, shapes, stage times."""
    from PIL import Image, UnidentifiedImageError

    paths, size = task
    pngs, digests, shapes, t_read, t_png = [], [], [], 0.0, 0.0
    for path in paths:
        t0 = time.perf_counter()
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.LANCZOS)
                pixels = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise UserError(f"{path}: not a readable image ({type(exc).__name__})") from None
        t1 = time.perf_counter()
        pngs += encode_rgb(pixels[None], row_filter=PNG_FILTER)
        digests.append(hashlib.sha256(pixels.tobytes()).digest())
        shapes.append(pixels.shape)
        t_read += t1 - t0
        t_png += time.perf_counter() - t1
    return pngs, digests, shapes, t_read, t_png


class FFHQPlan:
    """Which FFHQ images go to test, valid and each ratio's train split (positions in the source, no pixels)."""

    def __init__(self, source: FFHQSource, seed: int, proto: BFFHQProtocol):
        im = source.images
        self.proto = proto
        self.group = im.age * 2 + im.gender
        e = proto.eval_per_group
        sizes = np.bincount(self.group, minlength=4)
        short = [f"{g}: {n}" for g, n in zip(GROUPS, sizes) if n < 2 * e]
        if short:
            raise UserError(f"valid and test take {e} images of each age-gender group, {2 * e} in all; the label "
                            f"table has only {', '.join(short)}")
        hold = rank_within_class(seed, "bffhq/holdout", im.ids, self.group)
        self.test = np.flatnonzero(hold < e)
        self.valid = np.flatnonzero((hold >= e) & (hold < 2 * e))
        self.pool = hold >= 2 * e
        pool = np.flatnonzero(self.pool)
        self.order = np.full(len(im.ids), -1, dtype=np.int64)
        self.order[pool] = rank_within_class(seed, "bffhq/train-order", im.ids[pool], self.group[pool])

    def train(self, ratio: Decimal) -> np.ndarray:
        """Class c: the first n - k aligned and the first k conflicting images in the shared order (nested)."""
        p = self.proto
        n = p.train_per_class
        chosen = np.zeros(len(self.group), dtype=bool)
        for c in (0, 1):
            k = count_for(n, ratio)
            for gender, need, kind in ((c, n - k, "bias-aligned"), (1 - c, k, "bias-conflicting")):
                members = self.pool & (self.group == 2 * c + gender)
                available = int(members.sum())
                if need > available:
                    raise UserError(
                        f"ratio {config_name(ratio)} needs {need} {kind} training images of class "
                        f"'{p.label_names[c]}' ({GROUPS[2 * c + gender]}), but only {available} are available "
                        f"after holding out valid and test ({n} per class; choose a smaller ratio or a larger "
                        "label table)"
                    )
                chosen |= members & (self.order < need)
        return np.flatnonzero(chosen)


class BiasedFFHQ:
    name = "bffhq"
    # DisEnt's release: one shared valid/ and test/, flat; LfF has no BFFHQ: BFFHQ-Skewed<r>, attrs (age, gender)
    export_layout = ExportLayout(valid_per_ratio=False, valid_by_class=False, test_by_class=False,
                                 lff_attr_names=("age", "gender"))
    fits_cpu = False

    def lff_tag(self, params: dict, ratio: Decimal) -> str:
        return f"BFFHQ-Skewed{ratio}"
    card_meta = CardMeta(
        pretty_name="BFFHQ (biasbench)",
        license="cc-by-nc-sa-4.0",
        tags=("spurious-correlations", "debiasing", "bffhq", "ffhq", "biasbench"),
        source_datasets=("extended|ffhq",),
    )
    licence_notice = LICENCE_NOTICE

    def __init__(self, proto: BFFHQProtocol = BFFHQ):
        self.proto = proto
        self.schema = Schema(label_names=proto.label_names, bias_names=proto.gender_names)
        self._last: tuple | None = None  # (source, seed, plan): params() and build() share one plan

    def load_sources(self, source_dir: Path | None, allow_unverified: bool) -> BFFHQRelease | FFHQSource:
        return resolve_bffhq(source_dir, allow_unverified, self.proto)

    def _plan(self, source: FFHQSource, seed: int) -> FFHQPlan:
        if self._last is None or self._last[0] is not source or self._last[1] != seed:
            self._last = (source, seed, FFHQPlan(source, seed, self.proto))
        return self._last[2]

    def params(self, source: BFFHQRelease | FFHQSource, seed: int, ratio: Decimal | None) -> dict:
        p = self.proto
        if source.kind == "release":
            if ratio is not None and ratio != RELEASE_RATIO:
                raise UserError(f"the BFFHQ release holds 0.5pct only, not {config_name(ratio)}: pass --ratio 0.5pct, "
                                "or build 1/2/5 % from FFHQ images and a label CSV")
            return unit_params(self.name, GENERATOR_VERSION, seed, ratio, source.files, source="release")
        plan = self._plan(source, seed)
        if ratio is not None:
            plan.train(ratio)  # an impossible ratio fails here, before anything is written
        return unit_params(self.name, GENERATOR_VERSION, seed, ratio, source.files, source="ffhq",
                           young_groups=list(p.young_groups), old_groups=list(p.old_groups),
                           young_ages=list(p.young_ages), old_ages=list(p.old_ages), image_size=p.image_size,
                           train_per_class=p.train_per_class, eval_per_group=p.eval_per_group)

    def provenance(self, source: BFFHQRelease | FFHQSource) -> dict:
        import PIL

        extra = {"source": source.kind, "pillow": PIL.__version__}
        if source.kind == "release":
            extra["release_counts"] = source.counts
        else:
            extra["label_table"] = source.table
        return source_provenance(source.files, **extra)

    def build(self, source: BFFHQRelease | FFHQSource, seed: int, ratios: list[Decimal], need_common: bool,
              workers: int, reporter: Reporter) -> Built:
        t0 = time.perf_counter()
        if source.kind == "release":
            parts = [source.splits[s] for s in ("train", "valid", "test")]
            offsets = np.cumsum([0] + [len(x) for x in parts])
            ids = np.concatenate([x.ids for x in parts])
            age = np.concatenate([x.age for x in parts])
            gender = np.concatenate([x.gender for x in parts])
            paths = [q for x in parts for q in x.paths]
            whole = {s: np.arange(offsets[i], offsets[i + 1]) for i, s in enumerate(("train", "valid", "test"))}
            outputs = {("train", r): whole["train"] for r in ratios}
            if need_common:
                outputs.update({("valid", None): whole["valid"], ("test", None): whole["test"]})
            size = None
        else:
            im = source.images
            ids, age, gender, paths = im.ids, im.age, im.gender, list(im.paths)
            plan = self._plan(source, seed)
            outputs = {("train", r): plan.train(r) for r in ratios}
            if need_common:
                outputs.update({("valid", None): plan.valid, ("test", None): plan.test})
            size = self.proto.image_size
        used = np.unique(np.concatenate(list(outputs.values()))) if outputs else np.zeros(0, np.int64)
        t1 = time.perf_counter()
        tasks = [([paths[i] for i in used[a : a + CHUNK]], size) for a in range(0, len(used), CHUNK)]
        pngs: list[bytes] = []
        digests: list[bytes] = []
        shapes: list[tuple] = []
        read_cpu = png_cpu = 0.0
        bar = reporter.bar(total=len(used), desc=f"read {self.name}", unit="img")
        for p, d, s, tr, tp in ordered_map(_load_chunk, tasks, workers):
            pngs += p
            digests += d
            shapes += s
            read_cpu += tr
            png_cpu += tp
            bar.update(len(p))
        bar.close()
        t2 = time.perf_counter()
        digest_array = np.array(digests, dtype="S32")
        shape_array = np.array(shapes, dtype=np.uint16).reshape(-1, 3)
        splits = {}
        for key, pos in outputs.items():
            at = np.searchsorted(used, pos)
            splits[key] = SplitRows(png=[pngs[i] for i in at], pixel_digests=digest_array[at], shapes=shape_array[at],
                                    label=age[pos].astype(np.int64), bias=gender[pos].astype(np.int64),
                                    aligned=age[pos] == gender[pos], source_index=ids[pos].astype(np.int64))
        common = {"valid": splits[("valid", None)], "test": splits[("test", None)]} if need_common else None
        return Built(
            common=common,
            ratios={r: {"train": splits[("train", r)]} for r in ratios},
            timings={"plan": t1 - t0, "render": t2 - t1, "read_cpu": read_cpu, "png_cpu": png_cpu,
                     "images_rendered": float(len(used))},
        )

    def card_body(self, configs: list[Config]) -> str:
        return card_body(self.proto, self.schema, configs)


CITATIONS = """```bibtex
@inproceedings{karras2019style,
  title     = {A Style-Based Generator Architecture for Generative Adversarial Networks},
  author    = {Karras, Tero and Laine, Samuli and Aila, Timo},
  booktitle = {CVPR}, year = {2019}
}
@inproceedings{kim2021biaswap,
  title     = {BiaSwap: Removing Dataset Bias with Bias-Tailored Swapping Augmentation},
  author    = {Kim, Eungyeup and Lee, Jihyeon and Choo, Jaegul},
  booktitle = {ICCV}, year = {2021}
}
@inproceedings{lee2021learning,
  title     = {Learning Debiased Representation via Disentangled Feature Augmentation},
  author    = {Lee, Jungsoo and Kim, Eungyeup and Lee, Juyoung and Lee, Jihyeon and Choo, Jaegul},
  booktitle = {NeurIPS}, year = {2021}
}
@inproceedings{orel2020lifespan,
  title     = {Lifespan Age Transformation Synthesis},
  author    = {Or-El, Roy and Sengupta, Soumyadip and Fried, Ohad and Shechtman, Eli and Kemelmacher-Shlizerman, Ira},
  booktitle = {ECCV}, year = {2020}
}
```"""


def card_body(proto: BFFHQProtocol, schema: Schema, configs: list[Config]) -> str:
    """The card's prose: what it is, the licence, how it was built, counts, source digests, citations."""
    out = ["", f"# {BiasedFFHQ.card_meta.pretty_name}", "",
           "BFFHQ (biased FFHQ, BiaSwap, Kim et al. 2021; distributed with DisEnt, Lee et al. 2021) classifies "
           "faces by age (young / old) while gender is a shortcut: in the training split almost every young "
           "face is female and almost every old face is male. A fraction *r* of training images "
           "(bias-conflicting: young male, old female) break the shortcut. The headline metric is accuracy on "
           "the bias-conflicting test images (REST Table 2; DisEnt's test loader keeps only those).",
           "", "## Licence", "", LICENCE_NOTICE, ""]
    if not configs:
        return "\n".join(out + ["No complete config yet: run `biasbench generate bffhq --source-dir DIR`."]) + "\n"
    first = configs[0].unit
    params, prov = first["params"], first["provenance"]
    seed = params["seed"]
    if params.get("source") == "ffhq" and seed != CANONICAL_SEED:
        out += [f"> **Seed {seed}.** Not the canonical build (seed {CANONICAL_SEED}): other images in every split.", ""]
    if params.get("source") == "release" and not prov["verified"]:
        out += ["> **Unverified source.** The folder ingested does not have the release's file counts (built with "
                "`--allow-unverified`): not BFFHQ as published.", ""]
    out += card.usage(BiasedFFHQ.name, configs, prov.get("built_with", {}).get("biasbench"))
    out += ["## Structure", "",
            "| column | type | meaning |", "|---|---|---|",
            "| image | Image (PNG, RGB) | the face |",
            "| label | ClassLabel young, old | age (target) |",
            "| bias_label | ClassLabel female, male | gender (bias attribute) |",
            "| aligned | bool | young-female or old-male (label == bias_label) |",
            "| source_index | int64 | the FFHQ image number (release: the id in the file name) |", "",
            "| config | train | valid | test | fingerprint |", "|---|---|---|---|---|"]
    for c in configs:
        n = {s: i["num_examples"] for s, i in c.splits.items()}
        out.append(f"| {c.name} | {n['train']} | {n['valid']} | {n['test']} | `{c.fingerprint[:16]}` |")
    for c in configs:
        out += ["", f"**{c.name}** (aligned / conflicting per class)", "", counts_table(c, schema.label_names)]
    out += ["", "## How it was built", ""]
    if params.get("source") == "release":
        out += ["Ingested from the released BFFHQ folder (`0.5pct/align/<age>/`, `0.5pct/conflict/<age>/`, `valid/`, "
                "`test/`, files `<id>_<age>_<gender>.png`): every name parsed, each file checked against its class "
                "folder and aligned/conflict folder, counts compared with the release's, pixels stored unchanged "
                "(decoded and re-encoded as PNG). Train = align + conflict; valid and test as released.", ""]
    else:
        t = prov.get("label_table", {})
        cols = ", ".join(f"`{name}` ({role})" for role, name in t.get("columns", {}).items())
        out += [f"Built from FFHQ images and the label table `{t.get('file', '?')}` ({t.get('rows', '?')} rows, "
                f"{t.get('used', '?')} young or old; columns {cols}).",
                f"- young = age groups {', '.join(params['young_groups'])} (or ages {params['young_ages'][0]}-"
                f"{params['young_ages'][1]}); old = {', '.join(params['old_groups'])} (or ages "
                f"{params['old_ages'][0]}-{params['old_ages'][1]}).",
                f"- test, then valid: {params['eval_per_group']} images per (age, gender) group, held out by a "
                "seeded hash rank of the FFHQ image number; no image is in two splits.",
                f"- train: {params['train_per_class']:,} per class; round({params['train_per_class']:,} x r) "
                "bias-conflicting, the first ones in a seeded per-group order shared by all ratios (nested sets).",
                f"- images stored at {params['image_size']}x{params['image_size']} (Lanczos resize with Pillow "
                f"{prov.get('pillow', '?')} when the source has another size).", ""]
    out += ["## Source files", "",
            "Per entry, sha256 (and md5) of its `sha256sum` listing, `<sha256>  <name>` lines sorted bytewise; "
            "for a folder: `(cd ROOT && find FOLDER -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum`; "
            "for `images`, names are the 5-digit FFHQ numbers; a CSV is hashed as is.", "",
            "| entry | sha256 | md5 | release counts match |", "|---|---|---|---|"]
    counts = prov.get("release_counts", {})
    for f in prov["sources"]:
        extra = f" ({counts[f['file']]} files)" if f["file"] in counts else ""
        out.append(f"| {f['file']}{extra} | `{f['sha256']}` | `{f['md5']}` | {'yes' if f['verified'] else 'no'} |")
    out += ["", "## Bias, risks and limitations", "",
            "Age and gender labels are predictions and annotations of appearance, binary and imperfect; the "
            "dataset encodes a deliberate, artificial correlation and must not be used to build systems that "
            "infer age or gender of people.", "", "## Citation", ""]
    out += card.citation(BiasedFFHQ.name, BiasedFFHQ.card_meta.pretty_name, prov.get("built_with", {}).get("biasbench"))
    out += ["Sources and methods:", "", CITATIONS, ""]
    return "\n".join(out)


GENERATOR = BiasedFFHQ()
