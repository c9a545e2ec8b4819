from .margin import bn_margin

__all__ = ['bn_margin']
