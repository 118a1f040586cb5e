from .config_loading import build_runner, check_cfg_options, load_config

__all__ = ['build_runner', 'check_cfg_options', 'load_config']
