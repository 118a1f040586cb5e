from .config_loading import check_cfg_options, load_config

__all__ = ['check_cfg_options', 'load_config']
