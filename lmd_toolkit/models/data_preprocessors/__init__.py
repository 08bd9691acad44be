from .lmd_data_preprocessor import LMDDataPreprocessor

__all__ = ['LMDDataPreprocessor']
