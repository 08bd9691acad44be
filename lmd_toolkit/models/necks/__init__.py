from .lmd_decoder import LMDDecoder

__all__ = ['LMDDecoder']
