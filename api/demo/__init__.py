"""The demo data of `coco seed`."""

from .data import DEMO_PREFIX
from .seed import SeedResult, build, seed

__all__ = ["DEMO_PREFIX", "SeedResult", "build", "seed"]
