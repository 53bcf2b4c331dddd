"""The demo data of `coco seed`."""

from api.ops.demo.data import DEMO_PREFIX
from api.ops.demo.seed import SeedResult, build, seed

__all__ = ["DEMO_PREFIX", "SeedResult", "build", "seed"]
