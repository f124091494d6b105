"""Dataset readers (each in the real dataset's own layout), sample generators and up-front file checks."""

from .acdc import ACDC_CLASS_NAMES, ACDC_LAYOUT, acdc_cases, acdc_subset_dir, acdc_volume_datalist, read_info_cfg
from .acdc_sample import write_acdc_sample
from .anhir import ANHIR_LAYOUT, anhir_datalist, check_anhir_datalist, read_landmarks, write_landmarks
from .anhir_sample import random_histology_affine, write_anhir_sample
from .busi import (
    BUSI_CLASSES,
    BUSI_LAYOUT,
    OOD_LAYOUT,
    busi_cases,
    busi_datalist,
    check_image_datalist,
    class_weights,
    ood_datalists,
)
from .busi_sample import corrupt_ultrasound, write_busi_sample
from .errors import DatasetError, DatasetLayoutError, ImageFileError
from .image_mask import IMAGE_MASK_LAYOUT, image_mask_datalist, image_mask_pairs
from .isic import (
    ISIC_2020_DIAGNOSIS_TO_CLASS,
    ISIC_CLASSES,
    ISIC_LAYOUT,
    MELANOMA_INDEX,
    check_isic_datalist,
    isic_cases,
    isic_datalist,
)
from .oasis import (
    OASIS_FILES,
    OASIS_LAYOUT,
    OASIS_SPLITS,
    check_registration_datalist,
    oasis_pair_datalist,
    oasis_pairs,
    oasis_split,
    oasis_subjects,
)
from .oasis_sample import SAMPLE_LABELS, SEG4_OF_LABEL, template_labels, write_oasis_sample
from .skin_sample import (
    CUTANEOUS_CLASSES,
    clinical_image,
    dermoscopy_lesion,
    write_cutaneous_sample,
    write_isic_sample,
    write_skin_sample,
)
from .slice_dataset import SliceDataset, expand_slices
from .splits import split_groups
from .sr_tiles import SR_TILE_LAYOUT, check_sr_datalist, sr_tile_datalist, write_sr_tile_sample
from .synovial_sample import write_synovial_sample
from .thyroid_mpm import (
    MPM_CLASSES,
    MPM_LAYOUT,
    MPM_RAW_LAYOUT,
    POLARISATION_ANGLES,
    average_polarisation,
    check_mpm_datalist,
    convert_mpm_rois,
    mpm_datalist,
    mpm_regions,
    scale_modality,
)
from .thyroid_mpm_sample import mpm_phantom, write_mpm_sample
from .validation import check_datalist, check_image, read_image_array

__all__ = [
    "CUTANEOUS_CLASSES",
    "clinical_image",
    "dermoscopy_lesion",
    "write_cutaneous_sample",
    "write_isic_sample",
    "write_skin_sample",
    "ISIC_2020_DIAGNOSIS_TO_CLASS",
    "ISIC_CLASSES",
    "ISIC_LAYOUT",
    "MELANOMA_INDEX",
    "check_isic_datalist",
    "isic_cases",
    "isic_datalist",
    "MPM_CLASSES",
    "MPM_LAYOUT",
    "MPM_RAW_LAYOUT",
    "POLARISATION_ANGLES",
    "average_polarisation",
    "check_mpm_datalist",
    "convert_mpm_rois",
    "mpm_datalist",
    "mpm_regions",
    "scale_modality",
    "mpm_phantom",
    "write_mpm_sample",
    "ANHIR_LAYOUT",
    "anhir_datalist",
    "check_anhir_datalist",
    "read_landmarks",
    "write_landmarks",
    "random_histology_affine",
    "write_anhir_sample",
    "OASIS_FILES",
    "OASIS_LAYOUT",
    "OASIS_SPLITS",
    "SAMPLE_LABELS",
    "SEG4_OF_LABEL",
    "check_registration_datalist",
    "oasis_pair_datalist",
    "oasis_pairs",
    "oasis_split",
    "oasis_subjects",
    "template_labels",
    "write_oasis_sample",
    "BUSI_CLASSES",
    "BUSI_LAYOUT",
    "OOD_LAYOUT",
    "busi_cases",
    "busi_datalist",
    "check_image_datalist",
    "class_weights",
    "corrupt_ultrasound",
    "ood_datalists",
    "write_busi_sample",
    "SR_TILE_LAYOUT",
    "check_sr_datalist",
    "sr_tile_datalist",
    "write_sr_tile_sample",
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
