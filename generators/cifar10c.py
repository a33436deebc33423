"""Corrupted CIFAR-10: each class drawn with "its" corruption except in r% of training images.

Rules and sources: biasbench.protocol.CIFAR10CProtocol. Splits and conflicts
follow generators.assign (the Colored MNIST rules); each distinct (image,
corruption) pair is corrupted once, with numpy's global RNG seeded from
(seed, source split, source index, corruption), in worker processes whose
number does not change a byte.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from biasbench import rng
from biasbench.generators.assign import Assignment, card_lines
from biasbench.generators.base import Built, ExportLayout, source_provenance, unit_params
from biasbench.generators.render import assemble, distinct, encode_with_digests, render_chunks
from biasbench.dataset_format import card
from biasbench.dataset_format.card import CardMeta, counts_table
from biasbench.dataset_format.folder import Config
from biasbench.dataset_format.schema import Schema
from biasbench.progress import Reporter
from biasbench.protocol import CANONICAL_SEED, CIFAR10C, CIFAR10CProtocol
from biasbench.sources.cifar10 import CIFAR10, resolve_cifar10

GENERATOR_VERSION = 2  # 2: conflict rules (biasbench.protocol.CONFLICT_RULES)
CHUNK = 500
SOURCE_SPLITS = {"train": 0, "test": 1}


def _cache_frost_textures() -> None:
    """imagecorruptions' frost re-reads its texture file (cv2.imread) and rescales the whole texture
    (cv2.resize, bicubic) on every call, nearly all of its time at 32x32, though both depend only on
    which of its six textures it drew and on the image size. The corruptions module gets a cv2 whose
    imread, and whose resize of those textures, are memoised. Cached arrays are read-only, so a library
    change that wrote into them would fail loudly instead of altering later images."""
    import imagecorruptions.corruptions as corruptions

    if getattr(corruptions.cv2, "_biasbench_cached", False):
        return
    real = corruptions.cv2
    textures: dict[str, np.ndarray] = {}
    resized: dict[tuple, np.ndarray] = {}

    def frozen(array: np.ndarray) -> np.ndarray:
        array.flags.writeable = False
        return array

    class CachedCV2:
        _biasbench_cached = True

        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def imread(path, *args):
            if args:
                return real.imread(path, *args)
            key = str(path)
            if key not in textures:
                image = real.imread(key)
                if image is None:
                    return None
                textures[key] = frozen(image)
            return textures[key]

        @staticmethod
        def resize(src, *args, **kwargs):
            if not any(src is t for t in textures.values()):
                return real.resize(src, *args, **kwargs)
            key = (id(src), args, tuple(sorted(kwargs.items())))  # textures live as long as the cache
            if key not in resized:
                resized[key] = frozen(real.resize(src, *args, **kwargs))
            return resized[key]

    corruptions.cv2 = CachedCV2()


_SOURCE: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # set by _init_worker in the process that corrupts


def _init_worker(train_images: np.ndarray, test_images: np.ndarray) -> None:
    """Once per worker, before its first chunk: the source images, which tasks then name by (split, index)
    instead of carrying pixels (under fork they are inherited, not pickled: no 190 MB gather in the parent,
    no pickling per task), and the corruption library imported (scipy, scikit-image, cv2: ~0.4 s) with
    its frost textures cached."""
    _SOURCE["images"] = (train_images, test_images)
    import imagecorruptions  # noqa: F401

    _cache_frost_textures()


def _corrupt_chunk(task) -> tuple[list[bytes], list[bytes], float, float]:
    src_split, src_idx, names, seeds, severity = task
    from imagecorruptions import corrupt

    sources = _SOURCE["images"]
    images = np.empty((len(src_idx), *sources[0].shape[1:]), dtype=np.uint8)
    for split_id, pool in enumerate(sources):
        sel = src_split == split_id
        images[sel] = pool[src_idx[sel]]
    t0 = time.perf_counter()
    out = np.empty_like(images)
    for i, (image, name, seed) in enumerate(zip(images, names, seeds)):
        if name == "original":
            out[i] = image
            continue
        np.random.seed(int(seed))
        result = np.asarray(corrupt(image, corruption_name=name, severity=severity))
        out[i] = np.clip(result, 0, 255).astype(np.uint8).reshape(image.shape)
    t1 = time.perf_counter()
    pngs, digests = encode_with_digests(out)
    return pngs, digests, t1 - t0, time.perf_counter() - t1


class CorruptedCIFAR10:
    name = "cifar10c"
    # DisEnt's release: {pct}/valid/<c>/, test/<c>/; LfF: CorruptedCIFAR10-Type<k>-Skewed<r>-Severity<s - 1>
    export_layout = ExportLayout(valid_per_ratio=True, valid_by_class=True, test_by_class=True,
                                 lff_attr_names=("object", "corruption"))
    fits_cpu = False

    def lff_tag(self, params: dict, ratio: Decimal) -> str:
        kind = 0 if tuple(params["corruptions"]) == CIFAR10C.type0 else 1
        return f"CorruptedCIFAR10-Type{kind}-Skewed{ratio}-Severity{params['severity'] - 1}"  # LfF calls s + 1
    card_meta = CardMeta(
        pretty_name="Corrupted CIFAR-10 (biasbench)",
        license="other",
        tags=("spurious-correlations", "debiasing", "cifar10-c", "biasbench"),
        extra={"license_name": "cifar-10", "license_link": "https://www.cs.toronto.edu/~kriz/cifar.html"},
        source_datasets=("extended|cifar10",),
    )

    def __init__(self, proto: CIFAR10CProtocol = CIFAR10C):
        self.proto = proto
        self.schema = Schema(label_names=proto.label_names, bias_names=proto.corruptions)

    def load_sources(self, source_dir: Path | None, allow_unverified: bool) -> CIFAR10:
        return resolve_cifar10(source_dir, allow_unverified)

    def params(self, source: CIFAR10, seed: int, ratio: Decimal | None) -> dict:
        p = self.proto
        return unit_params(self.name, GENERATOR_VERSION, seed, ratio, source.files,
                           corruptions=list(p.corruptions), severity=p.severity, valid_size=p.valid_size,
                           conflicts=p.conflicts)

    def provenance(self, source: CIFAR10) -> dict:
        import importlib.metadata as md

        return source_provenance(source.files, imagecorruptions=md.version("imagecorruptions-imaug"))

    def build(self, source: CIFAR10, seed: int, ratios: list[Decimal], need_common: bool, workers: int,
              reporter: Reporter) -> Built:
        t0 = time.perf_counter()
        plan = Assignment(source.train_labels, source.test_labels, seed, self.name, self.proto.valid_size, "corruption",
                          conflicts=self.proto.conflicts)
        outputs = plan.outputs(ratios, need_common)
        src_split, src_idx, attr, where = distinct(outputs)
        names = np.asarray(self.proto.corruptions)[attr]
        seeds = np.zeros(len(src_idx), dtype=np.uint64)
        for split_name, split_id in SOURCE_SPLITS.items():
            for a, corruption in enumerate(self.proto.corruptions):
                sel = (src_split == split_id) & (attr == a)
                stream = f"{self.name}/corruption/{split_name}/{corruption}"
                seeds[sel] = rng.hash_keys(seed, stream, src_idx[sel]) & np.uint64(0xFFFFFFFF)
        t1 = time.perf_counter()
        assert list(SOURCE_SPLITS.values()) == [0, 1]  # _corrupt_chunk's order of (train, test) images
        tasks = [(src_split[a : a + CHUNK], src_idx[a : a + CHUNK], names[a : a + CHUNK].tolist(),
                  seeds[a : a + CHUNK], self.proto.severity) for a in range(0, len(src_idx), CHUNK)]
        try:
            pngs, digests, (corrupt_cpu, png_cpu) = render_chunks(
                _corrupt_chunk, tasks, workers, reporter, f"corrupt {self.name}", len(src_idx),
                initializer=_init_worker, initargs=(source.train_images, source.test_images),
            )
        finally:
            _SOURCE.clear()  # when this process did the work itself
        t2 = time.perf_counter()
        splits = assemble(outputs, where, pngs, digests, self.proto.image_shape)
        common = {"valid": splits[("valid", None)], "test": splits[("test", None)]} if need_common else None
        return Built(
            common=common,
            ratios={r: {"train": splits[("train", r)]} for r in ratios},
            timings={"plan": t1 - t0, "render": t2 - t1, "corrupt_cpu": corrupt_cpu, "png_cpu": png_cpu,
                     "images_rendered": float(len(src_idx))},
        )

    def card_body(self, configs: list[Config]) -> str:
        p = self.proto
        out = ["", f"# {self.card_meta.pretty_name}", "",
               "Corrupted CIFAR-10 pairs each CIFAR-10 class with one image corruption: in the training split "
               "almost every image of class *c* carries corruption *c*, so a classifier can predict the class "
               "from the corruption. A fraction *r* of training images (bias-conflicting) carry one of the other "
               "nine. Valid and test are unbiased. It follows LfF (Nam et al., 2020) as used by DisEnt "
               "(Lee et al., 2021) and REST (Zhao et al., 2023), rebuilt deterministically by biasbench."]
        if not configs:
            return "\n".join(out + ["", "No complete config yet: run `biasbench generate cifar10c`."]) + "\n"
        first = configs[0].unit
        seed, prov = first["params"]["seed"], first["provenance"]
        if seed != CANONICAL_SEED:
            out += ["", f"> **Seed {seed}.** Not the canonical dataset (seed {CANONICAL_SEED})."]
        if not prov["verified"]:
            out += ["", "> **Unverified source.** Built from files that are not the official CIFAR-10 release "
                    "(e.g. a JPEG re-encoding) with `--allow-unverified`: not for published numbers."]
        out += [""] + card.usage(self.name, configs, prov.get("built_with", {}).get("biasbench"))
        shown = configs[0].name
        out += ["## Preview", "", f"![aligned and conflicting training images of {shown}](data/{shown}/preview.png)",
                "", "## Corruptions", "", "| class | corruption (aligned) |", "|---|---|"]
        out += [f"| {c} | {k} |" for c, k in zip(p.label_names, p.corruptions)]
        out += ["", f"Severity {p.severity} of `imagecorruptions` {prov.get('imagecorruptions', '')} "
                "(LfF's \"Severity4\"); numpy's RNG seeded per (seed, split, source index, corruption).", "",
                "## Counts", "", "| config | train | valid | test | fingerprint |", "|---|---|---|---|---|"]
        for c in configs:
            n = {s: i["num_examples"] for s, i in c.splits.items()}
            out.append(f"| {c.name} | {n['train']} | {n['valid']} | {n['test']} | `{c.fingerprint[:16]}` |")
        for c in configs:
            out += ["", f"**{c.name}** (aligned / conflicting per class)", "", counts_table(c, p.label_names)]
        out += ["", "## How it was built", "",
                *card_lines(first["params"].get("conflicts", "random"), p.valid_size, "CIFAR-10", 50000, "corruption")]
        out += ["", "## Source files", "", "| file | md5 | official |", "|---|---|---|"]
        out += [f"| {f['file']} | `{f['md5']}` | {'yes' if f['verified'] else 'NO'} |" for f in prov["sources"]]
        out += ["", "## Licence and citation", "",
                "CIFAR-10 (Krizhevsky, 2009) is distributed by its authors at "
                "https://www.cs.toronto.edu/~kriz/cifar.html without a formal licence; cite the tech report. "
                "Corruptions: Hendrycks & Dietterich (ICLR 2019), implementation by Michaelis et al. (2019).", ""]
        out += card.citation(self.name, self.card_meta.pretty_name, prov.get("built_with", {}).get("biasbench"))
        return "\n".join(out) + "\n"


GENERATOR = CorruptedCIFAR10()
