from .preflight import ConfigCheckError, check_config

__all__ = ['ConfigCheckError', 'check_config']
