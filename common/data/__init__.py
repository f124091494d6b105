"""Dataset readers (each in the real dataset's own layout), sample generators and up-front file checks."""

from .acdc import ACDC_CLASS_NAMES, ACDC_LAYOUT, acdc_cases, acdc_subset_dir, acdc_volume_datalist, read_info_cfg
from .acdc_sample import write_acdc_sample
from .errors import DatasetError, DatasetLayoutError, ImageFileError
from .image_mask import IMAGE_MASK_LAYOUT, image_mask_datalist, image_mask_pairs
from .slice_dataset import SliceDataset, expand_slices
from .splits import split_groups
from .synovial_sample import write_synovial_sample
from .validation import check_datalist, check_image, read_image_array

__all__ = [
    "ACDC_CLASS_NAMES",
    "ACDC_LAYOUT",
    "IMAGE_MASK_LAYOUT",
    "DatasetError",
    "DatasetLayoutError",
    "ImageFileError",
    "SliceDataset",
    "acdc_cases",
    "acdc_subset_dir",
    "acdc_volume_datalist",
    "check_datalist",
    "check_image",
    "expand_slices",
    "image_mask_datalist",
    "image_mask_pairs",
    "read_image_array",
    "read_info_cfg",
    "split_groups",
    "write_acdc_sample",
    "write_synovial_sample",
]
