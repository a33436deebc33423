"""Dataset folders: `publish`, `export`, `verify`, `preview`."""

from __future__ import annotations

import argparse
from pathlib import Path

from biasbench.errors import UserError
from biasbench.cli.common import _dataset_folder, _ratio_names, add_data_dir


def _cmd_publish(args: argparse.Namespace) -> int:
    import tempfile

    from biasbench.dataset_format import card
    from biasbench.hub import publish
    from biasbench.hub.remote import hub_repo_id

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    if args.repo_id is None and args.dry_run is None:
        raise UserError("--repo-id OWNER/NAME is required (or --dry-run DIR to only write the upload tree)")
    if args.repo_id is not None and hub_repo_id(f"hf://{args.repo_id}") is None:
        raise UserError(f"--repo-id {args.repo_id!r} is not OWNER/NAME")
    configs = publish.choose_configs(folder, _ratio_names(args.ratio))
    message = publish.commit_message(gen.name, configs)
    if getattr(gen, "licence_notice", None):
        print(gen.licence_notice)
    if args.dry_run is not None:
        files = publish.stage(folder, gen, configs, Path(args.dry_run), args.repo_id)
        print(f"dry run: wrote the {len(files)} files that would be uploaded to {args.dry_run}")
        print(f"commit message: {message}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bb-publish-") as tmp:
        files = publish.stage(folder, gen, configs, Path(tmp) / "tree", args.repo_id)
        url = publish.publish(Path(tmp) / "tree", args.repo_id, message, args.private, args.revision)
    print(f"published {len(files)} files of {gen.name} ({', '.join(c.name for c in configs)}) to {args.repo_id}: {url}")
    print(f'load with: datasets.load_dataset("{args.repo_id}", "{card.default_config(configs)}")')
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from biasbench.export import export
    from biasbench.hub.publish import choose_configs

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    configs = choose_configs(folder, _ratio_names(args.ratio))
    report = export(folder, configs, args.format, Path(args.out))
    for piece, n in report.written.items():
        print(f"wrote {piece} ({n} images)")
    if report.skipped:
        print(f"already there with the same content: {', '.join(report.skipped)}")
    if args.format == "disent":
        print(f"DisEnt/REST: --data_dir {args.out} --dataset {gen.name} --percent {configs[0].name}")
    else:
        print(f"LfF: data_dir={args.out} (dataset_tag = the folder names above; LfF's 'valid' is our test split)")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from biasbench.dataset_format import verify
    from biasbench.hub.remote import fetch, hub_repo_id
    from biasbench.parallel import default_workers

    repo = hub_repo_id(args.source)
    path = fetch(repo, args.revision) if repo else Path(args.source)
    checks = verify.verify(path)
    if args.regenerate:
        from biasbench.generators.regenerate import verify_by_regenerating

        checks += verify_by_regenerating(path, Path(args.source_dir) if args.source_dir else None, default_workers())
    for check in checks:
        print(check.line())
    bad = [c for c in checks if not c.ok]
    print(f"{args.source}: {'MISMATCH in ' + str(len(bad)) + ' check(s)' if bad else 'all checks OK'}")
    return 1 if bad else 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from biasbench.dataset_format import preview
    from biasbench.dataset_format.read import read_arrays
    from biasbench.ratios import parse_ratio

    gen, folder = _dataset_folder(args.dataset, args.data_dir)
    sizes = (len(gen.schema.label_names), len(gen.schema.bias_names))
    train = read_arrays(folder, parse_ratio(args.ratio), "train", sizes=sizes)  # the content the manifest vouches for
    png = preview.render(lambda i: train.images[i], train.label, train.aligned, sizes[0])
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: per class, a row of aligned and a row of conflicting training images")
    return 0


def register(sub) -> None:
    pub = sub.add_parser(
        "publish",
        help="upload a generated dataset to the Hugging Face Hub (one commit)",
        description=(
            "Upload ROOT/DATASET (the chosen configs, their shards, previews, card and manifest) to a Hub "
            "dataset repo in one commit whose message names the biasbench version and content fingerprints. "
            "The token comes from HF_TOKEN or `hf auth login` and is never printed or written. "
            "Recommended repo names: biasbench/colored-mnist, biasbench/corrupted-cifar10, biasbench/bffhq."
        ),
        epilog="examples:\n  biasbench publish cmnist --repo-id me/colored-mnist\n"
               "  biasbench publish cmnist --ratio 1pct --dry-run ./upload   # write the tree, upload nothing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("dataset", metavar="DATASET")
    pub.add_argument("--ratio", metavar="R", help="config(s) to publish (default: all on disk)")
    pub.add_argument("--repo-id", metavar="OWNER/NAME", help="Hub dataset repo (created if missing)")
    pub.add_argument("--private", action="store_true", help="create the repo as private")
    pub.add_argument("--revision", metavar="BRANCH", help="branch to commit to (created if missing)")
    pub.add_argument("--dry-run", metavar="DIR", help="only write the tree that would be uploaded into DIR")
    add_data_dir(pub)
    pub.set_defaults(func=_cmd_publish)

    exp = sub.add_parser(
        "export",
        help="write a generated dataset in DisEnt/REST's folder layout or LfF's .npy layout",
        description=(
            "Write configs of ROOT/DATASET so that existing research code reads them unchanged. "
            "disent: OUT/DATASET/{pct}/align/<class>/<id>_<label>_<bias>.png, conflict/, valid/, and "
            "OUT/DATASET/test/ (DisEnt's and REST's --data_dir OUT). lff: OUT/<LfF dataset tag>/{train,valid}/"
            "images.npy + attrs.npy + attr_names.pkl, LfF's valid being our test split (our valid goes to "
            "valid_heldout/). Identical pieces already in OUT are skipped, different ones refused."
        ),
        epilog="examples:\n  biasbench export cmnist --ratio 1pct --format disent --out ./disent-data\n"
               "  biasbench export cifar10c --format lff --out ./lff-data   # all configs on disk",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exp.add_argument("dataset", metavar="DATASET")
    exp.add_argument("--ratio", metavar="R", help="config(s) to export (default: all on disk)")
    exp.add_argument("--format", required=True, choices=("disent", "lff"), help="target layout")
    exp.add_argument("--out", required=True, metavar="DIR", help="output folder (the reference code's data dir)")
    add_data_dir(exp)
    exp.set_defaults(func=_cmd_export)

    ver = sub.add_parser(
        "verify",
        help="check a dataset copy (folder or Hub repo) against its manifest",
        description=(
            "Recompute the sha256 of every file and the content fingerprint of every split of SOURCE and "
            "compare them with its manifest.json; one line per config, exit code 1 on any mismatch. SOURCE is "
            "a dataset folder or a Hub dataset id (OWNER/NAME or hf://OWNER/NAME). --regenerate also rebuilds "
            "the dataset from sources and compares fingerprints."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("source", metavar="SOURCE")
    ver.add_argument("--regenerate", action="store_true", help="also rebuild from sources and compare")
    ver.add_argument("--source-dir", metavar="DIR", help="sources for --regenerate (as for generate)")
    ver.add_argument("--revision", metavar="REV", help="Hub revision (branch, tag or commit)")
    ver.set_defaults(func=_cmd_verify)

    pre = sub.add_parser("preview", help="draw aligned and conflicting examples per class (PNG)",
                         description="Write the picture the card shows: per class, a row of the first 8 bias-aligned and "
                                     "a row of the first 8 bias-conflicting training images of one config.")
    pre.add_argument("dataset", metavar="DATASET")
    pre.add_argument("--ratio", required=True, metavar="R")
    pre.add_argument("--out", required=True, metavar="FILE.png")
    add_data_dir(pre)
    pre.set_defaults(func=_cmd_preview)
