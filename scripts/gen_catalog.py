#!/usr/bin/env python3
"""Writes a synthetic, seeded catalog as multi-document catalog-info.yaml.

The same seed always gives the same catalog, so tests and benchmarks are repeatable.

    scripts/gen_catalog.py --components 20000 --groups 200 --seed 42 > catalog.yaml

Groups are named team-0000..; component N is owned by team (N mod groups), is named
svc-NNNNN, and depends on a few earlier components. `--prefix probe1 --no-groups` writes
other components (probe1-NNNNN) owned by the same groups, without the groups themselves:
more entities for a catalog that already holds those groups.
"""
import argparse
import random
import sys

WORDS = ("payments ledger search billing checkout identity catalog inventory shipping "
         "pricing orders reviews notify audit gateway metrics profile session storage").split()
LIFECYCLES = ("production", "experimental", "deprecated")
TYPES = ("service", "website", "library")
LANGS = ("rust", "python", "java", "go", "typescript")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--components", type=int, default=20000)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--prefix", default="svc", help="component names are <prefix>-NNNNN")
    ap.add_argument("--no-groups", action="store_true", help="leave the Group documents out")
    args = ap.parse_args()
    if args.groups < 1:
        ap.error("--groups must be at least 1")
    rng = random.Random(args.seed)
    out = sys.stdout
    write = out.write
    for g in range(0 if args.no_groups else args.groups):
        write(f"""---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-{g:04d}
  namespace: {args.namespace}
  title: Team {g:04d}
spec:
  type: team
  children: []
""")
    for c in range(args.components):
        owner = f"team-{c % args.groups:04d}"
        word = rng.choice(WORDS)
        deps = sorted({rng.randrange(c) for _ in range(rng.randrange(3))}) if c else []
        write(f"""---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {args.prefix}-{c:05d}
  namespace: {args.namespace}
  title: {word.capitalize()} service {c}
  description: Handles {word} for {owner} ({rng.choice(LANGS)})
  tags: [{rng.choice(LANGS)}, {word}]
  annotations:
    github.com/project-slug: acme/{args.prefix}-{c:05d}
spec:
  type: {rng.choice(TYPES)}
  lifecycle: {rng.choice(LIFECYCLES)}
  owner: {owner}
  dependsOn: [{", ".join(f"component:{args.prefix}-{d:05d}" for d in deps)}]
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
