"""Networks and blocks the papers add to MONAI's."""

from .enet import ENet
from .sfrseg import SFRSegNet
from .wavelet import IEWADWTDown, haar_dwt2d

__all__ = ["ENet", "IEWADWTDown", "SFRSegNet", "haar_dwt2d"]
